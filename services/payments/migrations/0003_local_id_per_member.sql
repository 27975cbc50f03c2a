-- A local_id is the phone's numbering (1, 2, 3…): unique per member, not per organisation.
DROP INDEX payments_local_id_key;
CREATE UNIQUE INDEX payments_local_id_key ON payments (organization_id, member_id, local_id) WHERE local_id IS NOT NULL;
