-- The MWS (Auto Pay) face: sellers with MWS keys, the billing-agreement objects (each the JSON
-- of its typed record, read on demand by id; `due_at` says when it changes on its own), the
-- reference ids sellers gave their authorizations, captures and refunds, and an outbox of
-- instant payment notifications written in the same transaction as the change they report.
CREATE TABLE mws_sellers (
    seller_id     TEXT PRIMARY KEY,
    access_key    TEXT NOT NULL UNIQUE,
    secret_key    TEXT NOT NULL,
    lwa_client_id TEXT NOT NULL,
    currency      TEXT NOT NULL,
    ipn_url       TEXT,
    created_at    INTEGER NOT NULL
);

CREATE TABLE mws_objects (
    kind      TEXT NOT NULL,          -- agreement | order_reference | authorization | capture | refund
    id        TEXT NOT NULL,
    seller_id TEXT NOT NULL,
    json      TEXT NOT NULL,
    due_at    INTEGER,                -- emulator clock, unix seconds
    PRIMARY KEY (kind, id)
);
CREATE INDEX mws_objects_due ON mws_objects(due_at) WHERE due_at IS NOT NULL;

CREATE TABLE mws_reference_ids (
    seller_id    TEXT NOT NULL,
    reference_id TEXT NOT NULL,
    kind         TEXT NOT NULL,       -- authorization | capture | refund
    object_id    TEXT NOT NULL,
    fingerprint  TEXT NOT NULL,
    PRIMARY KEY (seller_id, reference_id)
);

CREATE TABLE mws_outbox (
    id                TEXT PRIMARY KEY,
    seller_id         TEXT NOT NULL,
    url               TEXT NOT NULL,
    notification_type TEXT NOT NULL,
    object_id         TEXT NOT NULL,
    body              TEXT NOT NULL,
    status            TEXT NOT NULL,  -- pending | delivered | failed
    attempts          INTEGER NOT NULL,
    next_attempt_at   INTEGER NOT NULL, -- wall clock, unix seconds
    last_error        TEXT,
    created_at        INTEGER NOT NULL,
    delivered_at      INTEGER
);
CREATE INDEX mws_outbox_due ON mws_outbox(status, next_attempt_at);
