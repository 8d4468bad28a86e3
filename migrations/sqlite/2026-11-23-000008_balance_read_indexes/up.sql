-- Balance reads: whether an account has entries after a moment (so its cached balance is
-- its balance then), and its entries still vesting, each found by an index range instead of
-- a walk over every entry of the account.
CREATE INDEX ledger_entries_account_created ON ledger_entries(network_id, account, created_at);
CREATE INDEX ledger_entries_account_vesting ON ledger_entries(network_id, account, vest_end)
    WHERE vest_end IS NOT NULL;
