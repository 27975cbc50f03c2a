-- When Banking stored each balance transaction of a paid payout: Stripe's fees on them are booked
-- (FEC ST, Pennylane) on that day, not on the transaction's own `created` day, which has passed
-- (and may have been exported) by the time the payout that carries them is paid. Rows stored
-- before keep the day they were booked on until now.
ALTER TABLE payout_balance_transactions ADD COLUMN recorded_at timestamptz;
UPDATE payout_balance_transactions SET recorded_at = created;
ALTER TABLE payout_balance_transactions
    ALTER COLUMN recorded_at SET NOT NULL,
    ALTER COLUMN recorded_at SET DEFAULT now();
CREATE INDEX payout_balance_transactions_recorded_idx ON payout_balance_transactions (recorded_at);

-- A payout's transfer to the bank (FEC BQ) is booked once, when Banking records it paid, on its
-- arrival date or that moment if later (`paid_booked_at`, never moved afterwards), and undone on
-- the day Banking records it failed after that (`failed_booked_at`): a payout failing, or an
-- arrival date changing, never rewrites a day already exported. Payouts paid before keep their day.
ALTER TABLE payouts ADD COLUMN paid_booked_at timestamptz, ADD COLUMN failed_booked_at timestamptz;
UPDATE payouts SET paid_booked_at = arrival_date WHERE status = 'paid';
