-- Instant payment notifications: where each merchant wants them, and an outbox of deliveries.
ALTER TABLE merchants ADD COLUMN notification_url TEXT;

CREATE TABLE notifications (
    id              TEXT PRIMARY KEY,
    merchant_id     TEXT NOT NULL,
    url             TEXT NOT NULL,
    object_type     TEXT NOT NULL,
    object_id       TEXT NOT NULL,
    body            TEXT NOT NULL,
    status          TEXT NOT NULL,          -- pending | delivered | failed
    attempts        INTEGER NOT NULL,
    next_attempt_at INTEGER NOT NULL,       -- unix seconds, wall clock
    last_error      TEXT,
    created_at      TEXT NOT NULL,
    delivered_at    TEXT
);
CREATE INDEX notifications_due ON notifications(status, next_attempt_at);
