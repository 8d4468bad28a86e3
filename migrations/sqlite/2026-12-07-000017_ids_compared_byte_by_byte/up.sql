-- PostgreSQL only (text compared byte by byte whatever the database's collation): SQLite
-- compares text byte by byte (BINARY) already. This keeps the two backends' migration lists
-- the same.
SELECT 1;
