DROP TRIGGER agents_not_truncated ON agents;
DROP TRIGGER agents_id_kept ON agents;
DROP TRIGGER agents_kept ON agents;
DROP TRIGGER networks_not_truncated ON networks;
DROP TRIGGER networks_id_kept ON networks;
DROP TRIGGER networks_kept ON networks;
DROP FUNCTION holoptic_refuse_removal();
DROP TRIGGER contributions_references ON contributions;
DROP FUNCTION contributions_references();
ALTER TABLE contributions
    ADD CONSTRAINT contributions_network_id_fkey FOREIGN KEY (network_id) REFERENCES networks(id),
    ADD CONSTRAINT contributions_agent_id_fkey FOREIGN KEY (agent_id) REFERENCES agents(id),
    ADD CONSTRAINT contributions_recorded_by_fkey FOREIGN KEY (recorded_by) REFERENCES agents(id);
