-- Pennylane push: credit notes linked to the invoice they credit, and entries kept equal to the books
-- after their push (a digest of what was sent; a change is corrected by a reversal and a new revision).

-- The Pennylane id of the invoice a credit note is linked to (POST /customer_invoices/{id}/link_credit_note);
-- NULL while not linked (its invoice not at Pennylane yet, or never: a sale before the first day pushed).
ALTER TABLE pennylane_entries ADD COLUMN credited_id bigint;

-- sha256 of the book entry as pushed (pennylane_books.digest): the books rendered later are compared
-- with it. NULL for rows pushed before it was kept: adopted at their next run.
ALTER TABLE pennylane_entries ADD COLUMN digest text;

-- The body of a ledger entry as sent: what a reversal gives back when the books change after the push.
ALTER TABLE pennylane_entries ADD COLUMN body jsonb;

-- Corrections: rows `<reference>.x<n>` (the reversal of revision n) and `<reference>.v<n>` (revision n,
-- n >= 2) carry the reference they correct; the entry's own row carries the revision now at Pennylane.
ALTER TABLE pennylane_entries ADD COLUMN corrects text;
ALTER TABLE pennylane_entries ADD COLUMN revision integer NOT NULL DEFAULT 1;

CREATE INDEX pennylane_entries_by_day ON pennylane_entries (entity, day);
