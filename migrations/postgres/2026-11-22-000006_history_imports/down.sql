DROP TABLE prior_payouts;
DROP TABLE member_aliases;
