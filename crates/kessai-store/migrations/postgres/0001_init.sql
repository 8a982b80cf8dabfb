-- The gateway's schema on PostgreSQL: the end state of the SQLite migrations 0001-0008 in one
-- step (no PostgreSQL database predates it). Money is bigint, instants the model keeps as RFC 3339
-- text are timestamptz (converted at the store's edge), flags are boolean; the instants the model
-- keeps as unix seconds (push outbox, idempotency keys, leases, notifications) stay bigint.
-- Identifiers use the "C" collation: they compare and sort by bytes, as in SQLite, and a LIKE
-- prefix can seek their index.

CREATE TABLE merchants (
    ccid                 text COLLATE "C" PRIMARY KEY,
    secret_hex           text NOT NULL,
    name                 text NOT NULL,
    -- consentAuthType when a recurring Authorize leaves it out: consent and authorization (true),
    -- consent only (false).
    consent_auth_default boolean NOT NULL DEFAULT true,
    created_at           timestamptz NOT NULL
);

CREATE TABLE orders (
    merchant_ccid                  text COLLATE "C" NOT NULL REFERENCES merchants(ccid),
    order_id                       text COLLATE "C" NOT NULL,
    public_ref                     text COLLATE "C" NOT NULL UNIQUE,
    dummy                          boolean NOT NULL,
    state                          text NOT NULL,
    amount                         bigint NOT NULL CHECK (amount >= 0),
    authorized                     bigint NOT NULL CHECK (authorized >= 0),
    captured                       bigint NOT NULL CHECK (captured >= 0),
    refunded                       bigint NOT NULL CHECK (refunded >= 0),
    with_capture                   boolean NOT NULL,
    note_to_buyer                  text,
    success_url                    text,
    cancel_url                     text,
    error_url                      text,
    authorize_push_url             text,
    capture_push_url               text,
    cancel_push_url                text,
    checkout_session_id            text,
    charge_permission_id           text COLLATE "C",
    charge_id                      text COLLATE "C",
    -- The idempotency key of the operation in flight, if any.
    in_flight                      text,
    version                        bigint NOT NULL,
    created_at                     timestamptz NOT NULL,
    updated_at                     timestamptz NOT NULL,
    accounting_type                smallint NOT NULL DEFAULT 0 CHECK (accounting_type IN (0, 1)),
    -- A recurring (随時) order's consent: all of its columns or none.
    consent_state                  text,
    consent_amount                 bigint CHECK (consent_amount >= 0),
    frequency_unit                 text,
    frequency_value                bigint,
    consent_with_authorization     boolean,
    original_order_id              text COLLATE "C",
    pay_confirm_screen_type        smallint NOT NULL DEFAULT 0 CHECK (pay_confirm_screen_type IN (0, 1)),
    pay_confirm_screen_url         text,
    address_restrictions           text,
    suppress_shipping_address_view boolean,
    extend_expiration              boolean NOT NULL DEFAULT false,
    platform_id                    text,
    PRIMARY KEY (merchant_ccid, order_id),
    CHECK (captured <= authorized AND refunded <= captured),
    CHECK (pay_confirm_screen_type = 0 OR pay_confirm_screen_url IS NOT NULL)
);
CREATE INDEX orders_by_state ON orders(state, updated_at);
CREATE INDEX orders_by_charge_permission ON orders(charge_permission_id);
CREATE INDEX orders_by_charge ON orders(charge_id) WHERE charge_id IS NOT NULL;
-- Search: a merchant's orders newest first, and the filters that narrow them; each index leads
-- with the merchant and ends with Search's order (created_at, order_id).
CREATE INDEX orders_search_recent ON orders(merchant_ccid, created_at, order_id);
CREATE INDEX orders_search_state ON orders(merchant_ccid, state, created_at, order_id);
CREATE INDEX orders_search_consent ON orders(merchant_ccid, consent_state, created_at, order_id) WHERE consent_state IS NOT NULL;
CREATE INDEX orders_search_original ON orders(merchant_ccid, original_order_id, created_at, order_id) WHERE original_order_id IS NOT NULL;
CREATE INDEX orders_search_charge_permission ON orders(merchant_ccid, charge_permission_id, created_at, order_id) WHERE charge_permission_id IS NOT NULL;
CREATE INDEX orders_search_charge ON orders(merchant_ccid, charge_id, created_at, order_id) WHERE charge_id IS NOT NULL;

-- Append-only: one row per command attempt on an order, successful or refused.
CREATE TABLE order_history (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    merchant_ccid text COLLATE "C" NOT NULL,
    order_id      text COLLATE "C" NOT NULL,
    command       text COLLATE "C" NOT NULL,
    request       text NOT NULL,
    mstatus       text NOT NULL,
    v_result_code text NOT NULL,
    message       text NOT NULL,
    amount        bigint CHECK (amount >= 0),
    at            timestamptz NOT NULL
);
CREATE INDEX order_history_by_order ON order_history(merchant_ccid, order_id, id);
CREATE INDEX order_history_search_at ON order_history(merchant_ccid, at);
CREATE INDEX order_history_search_command ON order_history(merchant_ccid, command, at);
CREATE INDEX order_history_search_amount ON order_history(merchant_ccid, amount) WHERE amount IS NOT NULL;
CREATE INDEX order_history_search_mstatus ON order_history(merchant_ccid, mstatus, at);

CREATE TABLE refunds (
    merchant_ccid    text COLLATE "C" NOT NULL,
    order_id         text COLLATE "C" NOT NULL,
    seq              bigint NOT NULL,
    amazon_refund_id text COLLATE "C" NOT NULL,
    amount           bigint NOT NULL CHECK (amount >= 0),
    state            text NOT NULL,
    created_at       timestamptz NOT NULL,
    PRIMARY KEY (merchant_ccid, order_id, seq)
);
CREATE INDEX refunds_by_amazon_id ON refunds(amazon_refund_id);

CREATE TABLE settings (
    name  text COLLATE "C" PRIMARY KEY,
    value text NOT NULL
);

-- The operation log: every Amazon Pay call that can move money or change a checkout is recorded
-- (with its idempotency key) before it is made, and finished in the same transaction as the order
-- change it causes.
CREATE TABLE operations (
    idempotency_key text COLLATE "C" PRIMARY KEY,
    merchant_ccid   text COLLATE "C" NOT NULL,
    order_id        text COLLATE "C" NOT NULL,
    seq             bigint NOT NULL,
    kind            text NOT NULL CHECK (kind IN ('CompleteCheckout', 'Capture', 'CancelCharge', 'Refund', 'ChargeConsent', 'Reauthorize', 'CloseConsent')),
    amount          bigint NOT NULL CHECK (amount >= 0),
    note            text,
    status          text NOT NULL CHECK (status IN ('Pending', 'Done', 'Failed', 'NotDone')),
    reported        boolean NOT NULL DEFAULT false,
    result_code     text,
    result_message  text,
    amazon_id       text,
    created_at      timestamptz NOT NULL,
    finished_at     timestamptz,
    UNIQUE (merchant_ccid, order_id, seq),
    FOREIGN KEY (merchant_ccid, order_id) REFERENCES orders(merchant_ccid, order_id)
);
-- At most one operation in flight per order.
CREATE UNIQUE INDEX operations_one_pending ON operations(merchant_ccid, order_id) WHERE status = 'Pending';
CREATE INDEX operations_pending ON operations(created_at, idempotency_key) WHERE status = 'Pending';

-- The push outbox: one row per result record for a merchant, written in the same transaction as
-- the order change it reports, delivered (possibly several records in one POST) by a worker.
CREATE TABLE push_records (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    merchant_ccid   text COLLATE "C" NOT NULL,
    order_id        text COLLATE "C" NOT NULL,
    kind            text NOT NULL CHECK (kind IN ('Authorize', 'Capture', 'Cancel', 'Refund', 'ReAuthorize', 'UpdateAuthorize', 'Terminate')),
    url             text NOT NULL,
    dummy           boolean NOT NULL,
    -- The record's fields (orderId, vResultCode, …), form-encoded in order.
    fields          text NOT NULL,
    status          text NOT NULL CHECK (status IN ('Pending', 'Delivered', 'Failed', 'Refused')),
    attempts        bigint NOT NULL DEFAULT 0,
    next_attempt_at bigint NOT NULL,
    lease_until     bigint,
    push_id         text,
    last_error      text,
    created_at      bigint NOT NULL,
    delivered_at    bigint,
    FOREIGN KEY (merchant_ccid, order_id) REFERENCES orders(merchant_ccid, order_id)
);
CREATE INDEX push_records_due ON push_records(next_attempt_at, id) WHERE status = 'Pending';
CREATE INDEX push_records_by_order ON push_records(merchant_ccid, order_id, id);

-- Merchants' Idempotency-Key headers: the first request with a key runs, the answer is kept, and a
-- retry with the same key and body gets exactly that answer.
CREATE TABLE idempotency_keys (
    merchant_ccid text COLLATE "C" NOT NULL,
    key           text COLLATE "C" NOT NULL,
    fingerprint   text NOT NULL,
    -- NULL while the first request is in flight.
    answer        text,
    created_at    bigint NOT NULL,
    PRIMARY KEY (merchant_ccid, key)
);
CREATE INDEX idempotency_keys_by_age ON idempotency_keys(created_at);

-- Background jobs claim their turn with a lease, so several gateways on one database never run
-- the same job at once and a dead one's lease runs out.
CREATE TABLE leases (
    name       text COLLATE "C" PRIMARY KEY,
    holder     text NOT NULL,
    held_until bigint NOT NULL
);

-- Amazon Pay notifications already handled, by SNS MessageId (a replay is ignored).
CREATE TABLE ipn_messages (
    message_id  text COLLATE "C" PRIMARY KEY,
    received_at bigint NOT NULL
);
