-- The operation log: every Amazon Pay call that can move money or change a checkout is recorded
-- here (with its idempotency key) before it is made, and finished in the same transaction as the
-- order change it causes.
ALTER TABLE orders ADD COLUMN in_flight TEXT;

CREATE TABLE operations (
    idempotency_key TEXT PRIMARY KEY,
    merchant_ccid   TEXT NOT NULL,
    order_id        TEXT NOT NULL,
    seq             INTEGER NOT NULL,
    kind            TEXT NOT NULL CHECK (kind IN ('CompleteCheckout', 'Capture', 'CancelCharge', 'Refund')),
    amount          INTEGER NOT NULL CHECK (amount >= 0),
    note            TEXT,
    status          TEXT NOT NULL CHECK (status IN ('Pending', 'Done', 'Failed', 'NotDone')),
    reported        INTEGER NOT NULL DEFAULT 0,
    result_code     TEXT,
    result_message  TEXT,
    amazon_id       TEXT,
    created_at      TEXT NOT NULL,
    finished_at     TEXT,
    UNIQUE (merchant_ccid, order_id, seq),
    FOREIGN KEY (merchant_ccid, order_id) REFERENCES orders(merchant_ccid, order_id)
);
-- At most one operation in flight per order.
CREATE UNIQUE INDEX operations_one_pending ON operations(merchant_ccid, order_id) WHERE status = 'Pending';
