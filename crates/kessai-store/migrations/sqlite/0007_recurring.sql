-- Recurring (随時) consents, ReAuthorize orders, the confirmation screen and the options passed
-- through to Amazon Pay; the amount of each history entry (Search's transactions).
ALTER TABLE orders ADD COLUMN accounting_type INTEGER NOT NULL DEFAULT 0 CHECK (accounting_type IN (0, 1));
ALTER TABLE orders ADD COLUMN consent_state TEXT;
ALTER TABLE orders ADD COLUMN consent_amount INTEGER;
ALTER TABLE orders ADD COLUMN frequency_unit TEXT;
ALTER TABLE orders ADD COLUMN frequency_value INTEGER;
ALTER TABLE orders ADD COLUMN consent_auth_type INTEGER;
ALTER TABLE orders ADD COLUMN original_order_id TEXT;
ALTER TABLE orders ADD COLUMN pay_confirm_screen_type INTEGER NOT NULL DEFAULT 0 CHECK (pay_confirm_screen_type IN (0, 1));
ALTER TABLE orders ADD COLUMN pay_confirm_screen_url TEXT;
ALTER TABLE orders ADD COLUMN address_restrictions TEXT;
ALTER TABLE orders ADD COLUMN suppress_shipping_address_view INTEGER;
ALTER TABLE orders ADD COLUMN extend_expiration INTEGER NOT NULL DEFAULT 0;
ALTER TABLE orders ADD COLUMN platform_id TEXT;
CREATE INDEX orders_by_charge ON orders(charge_id) WHERE charge_id IS NOT NULL;
CREATE INDEX refunds_by_amazon_id ON refunds(amazon_refund_id);
CREATE INDEX orders_by_original ON orders(merchant_ccid, original_order_id) WHERE original_order_id IS NOT NULL;

ALTER TABLE order_history ADD COLUMN amount INTEGER;

-- The new operation kinds (ReAuthorize's charge, UpdateAuthorize's re-authorization, Terminate)
-- and push kinds: SQLite cannot change a CHECK, so both tables are rebuilt with their rows.
CREATE TABLE operations_new (
    idempotency_key TEXT PRIMARY KEY,
    merchant_ccid   TEXT NOT NULL,
    order_id        TEXT NOT NULL,
    seq             INTEGER NOT NULL,
    kind            TEXT NOT NULL CHECK (kind IN ('CompleteCheckout', 'Capture', 'CancelCharge', 'Refund', 'ChargeConsent', 'Reauthorize', 'CloseConsent')),
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
INSERT INTO operations_new SELECT idempotency_key, merchant_ccid, order_id, seq, kind, amount, note, status, reported, result_code, result_message, amazon_id, created_at, finished_at FROM operations;
DROP TABLE operations;
ALTER TABLE operations_new RENAME TO operations;
CREATE UNIQUE INDEX operations_one_pending ON operations(merchant_ccid, order_id) WHERE status = 'Pending';

CREATE TABLE push_records_new (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    merchant_ccid   TEXT NOT NULL,
    order_id        TEXT NOT NULL,
    kind            TEXT NOT NULL CHECK (kind IN ('Authorize', 'Capture', 'Cancel', 'Refund', 'ReAuthorize', 'UpdateAuthorize', 'Terminate')),
    url             TEXT NOT NULL,
    dummy           INTEGER NOT NULL,
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
INSERT INTO push_records_new SELECT id, merchant_ccid, order_id, kind, url, dummy, fields, status, attempts, next_attempt_at, lease_until, push_id, last_error, created_at, delivered_at FROM push_records;
DROP TABLE push_records;
ALTER TABLE push_records_new RENAME TO push_records;
CREATE INDEX push_records_due ON push_records(status, next_attempt_at) WHERE status = 'Pending';
CREATE INDEX push_records_by_order ON push_records(merchant_ccid, order_id, id);
