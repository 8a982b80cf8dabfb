-- The push outbox: one row per result record for a merchant, written in the same transaction as
-- the order change it reports, delivered (possibly several records in one POST) by a worker.
CREATE TABLE push_records (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    merchant_ccid   TEXT NOT NULL,
    order_id        TEXT NOT NULL,
    kind            TEXT NOT NULL CHECK (kind IN ('Authorize', 'Capture', 'Cancel', 'Refund')),
    url             TEXT NOT NULL,
    dummy           INTEGER NOT NULL,
    -- The record's fields (orderId, vResultCode, …) as a JSON object of strings.
    fields          TEXT NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('Pending', 'Delivered', 'Failed', 'Refused')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    lease_until     INTEGER,
    push_id         TEXT,
    last_error      TEXT,
    created_at      INTEGER NOT NULL,
    delivered_at    INTEGER,
    FOREIGN KEY (merchant_ccid, order_id) REFERENCES orders(merchant_ccid, order_id)
);
CREATE INDEX push_records_due ON push_records(status, next_attempt_at) WHERE status = 'Pending';
CREATE INDEX push_records_by_order ON push_records(merchant_ccid, order_id, id);
