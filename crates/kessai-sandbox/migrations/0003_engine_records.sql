-- The engine keeps its own records (typed, amounts as integers in minor units) instead of
-- Amazon Pay v2 wire objects. An emulator file written before this keeps its merchants, keys,
-- settings and notifications, but its objects are dropped, with the idempotent answers that
-- reported them (a fresh start for the emulator's objects; docs/sandbox.md).
DROP TABLE objects;
DELETE FROM idempotency;
CREATE TABLE records (
    kind        TEXT NOT NULL,
    id          TEXT NOT NULL,
    merchant_id TEXT NOT NULL,
    -- The object it belongs to: a charge's charge permission, a refund's charge.
    parent_id   TEXT,
    -- When Amazon would next change it on its own (unix seconds, emulator clock); NULL once
    -- nothing will.
    deadline    INTEGER,
    json        TEXT NOT NULL,
    PRIMARY KEY (kind, id)
);
CREATE INDEX records_parent ON records(kind, parent_id) WHERE parent_id IS NOT NULL;
CREATE INDEX records_deadline ON records(deadline) WHERE deadline IS NOT NULL;
