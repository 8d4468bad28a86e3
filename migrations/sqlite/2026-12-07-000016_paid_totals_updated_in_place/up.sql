-- PostgreSQL only (room on each page for the kept sums' new versions): SQLite replaces a row
-- in place and reuses freed pages itself. This keeps the two backends' migration lists the
-- same.
SELECT 1;
