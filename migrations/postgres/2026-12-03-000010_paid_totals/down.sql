DROP TABLE paid_totals_state;
DROP TABLE paid_totals;
