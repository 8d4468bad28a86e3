CREATE INDEX contributions_network ON contributions (network_id, id);
DROP INDEX contributions_network_facts;
