DROP TABLE checkpoints;
DROP TABLE journal_seals;
DROP TABLE journal_entries;
