DROP TABLE departures;
DROP TABLE token_balances;
DROP TABLE ledger_entries;
DROP TABLE ledger_transactions;
DROP TABLE tokens;
