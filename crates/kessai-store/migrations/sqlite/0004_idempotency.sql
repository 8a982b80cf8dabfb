-- Merchants' Idempotency-Key headers: the first request with a key runs, the answer is kept, and a
-- retry with the same key and body gets exactly that answer.
CREATE TABLE idempotency_keys (
    merchant_ccid TEXT NOT NULL,
    key           TEXT NOT NULL,
    fingerprint   TEXT NOT NULL,
    -- NULL while the first request is in flight.
    answer        TEXT,
    created_at    INTEGER NOT NULL,
    PRIMARY KEY (merchant_ccid, key)
);
CREATE INDEX idempotency_keys_by_age ON idempotency_keys(created_at);
