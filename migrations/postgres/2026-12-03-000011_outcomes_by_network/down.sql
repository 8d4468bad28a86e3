DROP INDEX contribution_outcomes_network;
ALTER TABLE contribution_outcomes DROP COLUMN network_id;
