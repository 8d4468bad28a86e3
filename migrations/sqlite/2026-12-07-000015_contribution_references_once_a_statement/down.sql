DROP TRIGGER agents_id_kept;
DROP TRIGGER agents_kept;
DROP TRIGGER networks_id_kept;
DROP TRIGGER networks_kept;
