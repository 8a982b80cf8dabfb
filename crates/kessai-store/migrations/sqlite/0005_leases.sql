-- (And orders by state, for the jobs that look for orders waiting on Amazon.)
-- Background jobs claim their turn with a lease, so several gateways on one database never run
-- the same job at once and a dead one's lease runs out.
CREATE TABLE leases (
    name   TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    until  INTEGER NOT NULL
);
CREATE INDEX orders_by_state ON orders(state, updated_at);
