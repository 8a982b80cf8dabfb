-- Search (the MDK's /paynow-search): a merchant's orders newest first, and the filters that narrow
-- them. Each index leads with the merchant and ends with (created_at, order_id), Search's order:
-- SQLite then finds the matching orders already sorted and stops at maxCount (without the tail it
-- prefers walking all of the merchant's orders by time, to save the sort). By order id: the
-- primary key.
CREATE INDEX orders_search_recent ON orders(merchant_ccid, created_at, order_id);
CREATE INDEX orders_search_state ON orders(merchant_ccid, state, created_at, order_id);
CREATE INDEX orders_search_consent ON orders(merchant_ccid, consent_state, created_at, order_id) WHERE consent_state IS NOT NULL;
CREATE INDEX orders_search_original ON orders(merchant_ccid, original_order_id, created_at, order_id) WHERE original_order_id IS NOT NULL;
CREATE INDEX orders_search_charge_permission ON orders(merchant_ccid, charge_permission_id, created_at, order_id) WHERE charge_permission_id IS NOT NULL;
CREATE INDEX orders_search_charge ON orders(merchant_ccid, charge_id, created_at, order_id) WHERE charge_id IS NOT NULL;
-- Transactions by time (txnDatetime), by command (and time), by amount, by result; by order:
-- order_history_by_order (0001).
CREATE INDEX order_history_search_at ON order_history(merchant_ccid, at);
CREATE INDEX order_history_search_command ON order_history(merchant_ccid, command, at);
CREATE INDEX order_history_search_amount ON order_history(merchant_ccid, amount) WHERE amount IS NOT NULL;
CREATE INDEX order_history_search_mstatus ON order_history(merchant_ccid, mstatus, at);
