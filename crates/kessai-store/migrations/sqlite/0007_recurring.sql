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
CREATE INDEX orders_by_original ON orders(merchant_ccid, original_order_id) WHERE original_order_id IS NOT NULL;

ALTER TABLE order_history ADD COLUMN amount INTEGER;
