-- PostgreSQL only (lz4 compression of large journal bodies and stored answers): SQLite
-- does not compress. This keeps the two backends' migration lists the same.
SELECT 1;
