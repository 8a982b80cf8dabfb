CREATE TABLE merchants (
    ccid        TEXT PRIMARY KEY,
    secret_hex  TEXT NOT NULL,
    name        TEXT NOT NULL,
    created_at  TEXT NOT NULL
);

CREATE TABLE orders (
    merchant_ccid        TEXT NOT NULL REFERENCES merchants(ccid),
    order_id             TEXT NOT NULL,
    public_ref           TEXT NOT NULL UNIQUE,
    dummy                INTEGER NOT NULL,
    state                TEXT NOT NULL,
    amount               INTEGER NOT NULL,
    authorized           INTEGER NOT NULL,
    captured             INTEGER NOT NULL,
    refunded             INTEGER NOT NULL,
    with_capture         INTEGER NOT NULL,
    note_to_buyer        TEXT,
    success_url          TEXT,
    cancel_url           TEXT,
    error_url            TEXT,
    authorize_push_url   TEXT,
    capture_push_url     TEXT,
    cancel_push_url      TEXT,
    checkout_session_id  TEXT,
    charge_permission_id TEXT,
    charge_id            TEXT,
    version              INTEGER NOT NULL,
    created_at           TEXT NOT NULL,
    updated_at           TEXT NOT NULL,
    PRIMARY KEY (merchant_ccid, order_id),
    CHECK (captured <= authorized AND refunded <= captured)
);

-- Append-only: one row per command attempt on an order, successful or refused.
CREATE TABLE order_history (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    merchant_ccid TEXT NOT NULL,
    order_id      TEXT NOT NULL,
    command       TEXT NOT NULL,
    request       TEXT NOT NULL,
    mstatus       TEXT NOT NULL,
    v_result_code TEXT NOT NULL,
    message       TEXT NOT NULL,
    at            TEXT NOT NULL
);
CREATE INDEX order_history_by_order ON order_history(merchant_ccid, order_id, id);

CREATE TABLE refunds (
    merchant_ccid    TEXT NOT NULL,
    order_id         TEXT NOT NULL,
    seq              INTEGER NOT NULL,
    amazon_refund_id TEXT NOT NULL,
    amount           INTEGER NOT NULL,
    state            TEXT NOT NULL,
    created_at       TEXT NOT NULL,
    PRIMARY KEY (merchant_ccid, order_id, seq)
);

CREATE TABLE settings (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
