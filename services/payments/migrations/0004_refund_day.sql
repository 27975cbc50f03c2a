-- A refund belongs to the day it happened (its own time in the organisation's time zone), not the sale's.
ALTER TABLE refunds ADD COLUMN local_date date;
UPDATE refunds r SET local_date = p.local_date FROM payments p WHERE p.id = r.payment_id;
ALTER TABLE refunds ALTER COLUMN local_date SET NOT NULL;
