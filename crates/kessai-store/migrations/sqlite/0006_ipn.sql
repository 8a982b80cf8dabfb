-- Amazon Pay notifications already handled, by SNS MessageId (a replay is ignored).
CREATE TABLE ipn_messages (
    message_id  TEXT PRIMARY KEY,
    received_at INTEGER NOT NULL
);
-- Notifications name the charge permission: the order is found by it.
CREATE INDEX orders_by_charge_permission ON orders(charge_permission_id);
