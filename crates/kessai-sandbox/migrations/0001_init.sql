-- The emulator's own database. Objects are kept as the JSON of their records; the emulator
-- holds all of them in memory and writes every change here before it answers.
CREATE TABLE merchants (
    merchant_id TEXT PRIMARY KEY,
    store_id    TEXT NOT NULL,
    region      TEXT NOT NULL,
    ledger_currency TEXT NOT NULL,
    created_at  TEXT NOT NULL
);
CREATE TABLE public_keys (
    public_key_id TEXT PRIMARY KEY,
    merchant_id   TEXT NOT NULL REFERENCES merchants(merchant_id),
    pem           TEXT NOT NULL,
    fingerprint   TEXT NOT NULL UNIQUE,
    created_at    TEXT NOT NULL
);
CREATE TABLE objects (
    kind        TEXT NOT NULL,
    id          TEXT NOT NULL,
    merchant_id TEXT NOT NULL,
    json        TEXT NOT NULL,
    PRIMARY KEY (kind, id)
);
CREATE TABLE idempotency (
    merchant_id TEXT NOT NULL,
    key         TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    status      INTEGER NOT NULL,
    body        TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    PRIMARY KEY (merchant_id, key)
);
CREATE TABLE settings (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
