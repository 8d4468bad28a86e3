-- A computation reads a network's contributions page by page in id order, through the
-- `(network_id, id)` index, and every row it counts then cost a visit to the table for the
-- facts the computation needs. The index now carries those facts itself (INCLUDE: stored in
-- its leaf entries, not part of its key), so a page is an index-only scan wherever the table's
-- pages are marked all-visible, as (auto)vacuum leaves them. Same key, same order, same
-- uses: it replaces the index it copies. A 52-week preview among 10,000 members spent about a
-- fifth less of PostgreSQL's CPU reading its pages (bench/analysis.md). The index is about
-- twice as large (59 MB against 31 MB for 312,000 contributions), and each contribution written
-- places a larger entry in it (single writes 5-10% and batches 17% slower in alternated
-- rounds); contributions are never updated, so no entry is rewritten. Built while the
-- migration holds its lock: writes to contributions wait for it (under a second for those
-- 312,000 contributions).
CREATE INDEX contributions_network_facts ON contributions (network_id, id)
    INCLUDE (agent_id, kind, quantity, occurred_at, recorded_at, unit, skill);
DROP INDEX contributions_network;
