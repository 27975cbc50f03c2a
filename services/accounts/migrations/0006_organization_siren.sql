-- The SIREN (9 digits) that names the organisation's own FEC export; NULL until declared.
ALTER TABLE organizations ADD COLUMN siren text CHECK (siren ~ '^[0-9]{9}$');
