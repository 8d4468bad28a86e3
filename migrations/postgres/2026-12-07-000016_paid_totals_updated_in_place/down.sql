ALTER TABLE paid_totals SET WITHOUT CLUSTER;
ALTER TABLE paid_totals RESET (fillfactor);
