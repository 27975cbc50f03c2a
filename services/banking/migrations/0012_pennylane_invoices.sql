-- The Pennylane push's customer invoices: how each entity's sales journal is pushed, and which
-- document (a ledger entry, or a customer invoice and its settling ledger entry) each row is.
-- Names are the proto enums' (`PennylaneSalesAs`, `PennylaneDocument`) as runtime.proto.EnumNames spells them.

ALTER TABLE pennylane_settings ADD COLUMN sales_as text NOT NULL DEFAULT 'ledger_entries';

-- A book entry pushed as a customer invoice has two rows under its reference: the invoice (its
-- external_reference) and the ledger entry settling the walk-in customer (its piece number).
ALTER TABLE pennylane_entries ADD COLUMN document text NOT NULL DEFAULT 'ledger_entry';
ALTER TABLE pennylane_entries DROP CONSTRAINT pennylane_entries_pkey;
ALTER TABLE pennylane_entries ADD PRIMARY KEY (entity, reference, document);
