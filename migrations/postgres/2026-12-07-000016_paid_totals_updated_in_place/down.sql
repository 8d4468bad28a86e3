ALTER TABLE paid_totals RESET (fillfactor);
