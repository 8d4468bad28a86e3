DROP TABLE journal_unsealed;
