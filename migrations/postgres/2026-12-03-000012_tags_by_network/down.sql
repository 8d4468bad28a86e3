DROP INDEX contribution_tags_network;
ALTER TABLE contribution_tags DROP COLUMN network_id;
