-- Each commit rewrites the kept sums of every agent it paid (paid_totals, one row per bucket
-- and agent). With PostgreSQL's default fillfactor of 100 the table's pages are full, so each
-- new version of a row went to another page, with a new primary-key entry, and the page it
-- left kept the dead version until a VACUUM: after 52 weekly commits among 10,000 members the
-- table was 56 MB for 10,000 live rows (about 1.2 MB of them), and the balanced preview's
-- read of one network's sums took 17 ms instead of 3. VACUUM marks the space free but does not
-- give it back, so the read stays that long. Half of each page is left free instead: a
-- commit's new versions fit on their own page (heap-only updates, no index entry), and the
-- dead ones are pruned when the page is next read once no transaction can still see them,
-- with or without autovacuum.
ALTER TABLE paid_totals SET (fillfactor = 50);
-- Rewrite the rows already there with the setting (and in key order, a network's together).
CLUSTER paid_totals USING paid_totals_pkey;
