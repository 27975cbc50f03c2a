-- The books' moves after a sale: each refund made or undone and each move of a dispute, written once
-- (services/payments/books.py `book`) in the transaction that records it, never updated. A move is
-- booked on the organisation's local day it was recorded (`day`), so a day's books never change
-- once read: a move made later (a transfer the sweeper retries, a refund Stripe fails afterwards)
-- is a new row on its own day instead of a change to an earlier day's entry.
CREATE TABLE book_moves (
    -- refund, refund_failed, dispute, dispute_reversal, dispute_won, dispute_return, dispute_lost,
    -- dispute_lost_reversal (domain.BOOK_MOVES).
    kind text NOT NULL,
    -- The refund's or the dispute's id: one move of a kind each.
    source_id uuid NOT NULL,
    payment_id uuid NOT NULL REFERENCES payments (id),
    organization_id text NOT NULL,
    currency text NOT NULL,
    amount bigint NOT NULL CHECK (amount >= 0),
    application_fee bigint NOT NULL DEFAULT 0 CHECK (application_fee >= 0),
    dispute_fee bigint NOT NULL DEFAULT 0 CHECK (dispute_fee >= 0),
    -- Destination charges: the part of the charge's transfer the move took from (or gave back to)
    -- the organisation; on a loss, the part taken before it.
    transfer_reversed bigint NOT NULL DEFAULT 0 CHECK (transfer_reversed >= 0),
    recorded_at timestamptz NOT NULL,
    -- The local day (the organisation's time zone when recorded); NULL only for the moves carried
    -- over below, which keep the day the books gave them until now (their moment, today's zone).
    day date,
    PRIMARY KEY (kind, source_id)
);

CREATE INDEX book_moves_recorded_idx ON book_moves (recorded_at);

-- Carried over as the books showed them: succeeded refunds on the day made, a dispute's transfer
-- reversal on its withdrawal's day and the give-back on its reinstatement's day.
INSERT INTO book_moves (kind, source_id, payment_id, organization_id, currency, amount, application_fee, recorded_at)
SELECT 'refund', r.id, r.payment_id, p.organization_id, r.currency, r.amount, r.application_fee_refunded, r.created_at
  FROM refunds r JOIN payments p ON p.id = r.payment_id
 WHERE r.status = 'succeeded';

INSERT INTO book_moves (kind, source_id, payment_id, organization_id, currency, amount, dispute_fee,
                        transfer_reversed, recorded_at)
SELECT m.kind, d.id, d.payment_id, d.organization_id, d.currency, m.amount, m.fee, m.reversed, m.at
  FROM disputes d
 CROSS JOIN LATERAL (VALUES
       ('dispute', d.withdrawn_at, d.withdrawn, d.dispute_fee, 0::bigint),
       ('dispute_reversal', CASE WHEN d.transfer_reversed > 0 THEN d.withdrawn_at END, d.transfer_reversed, 0::bigint,
        d.transfer_reversed),
       ('dispute_won', d.reinstated_at, d.reinstated, 0::bigint, 0::bigint),
       ('dispute_return', CASE WHEN d.transfer_returned > 0 THEN d.reinstated_at END, d.transfer_returned, 0::bigint,
        d.transfer_returned),
       ('dispute_lost', CASE WHEN d.status = 'lost' THEN d.closed_at END, d.amount, 0::bigint, d.transfer_reversed))
       AS m (kind, at, amount, fee, reversed)
 WHERE m.at IS NOT NULL;
