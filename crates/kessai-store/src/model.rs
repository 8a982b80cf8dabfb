use kessai_core::{MerchantCcid, Order, OrderId, Secret, Yen};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MerchantRecord {
    pub ccid: MerchantCcid,
    /// The hex secret key shared with the merchant (authHash, push signatures).
    pub secret_hex: Secret<String>,
    pub name: String,
    pub created_at: String,
}

/// A one-time order as stored: the domain [`Order`] plus what the gateway needs around it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderRecord {
    pub merchant: MerchantCcid,
    pub order_id: OrderId,
    /// Unguessable reference used in the buyer's URLs instead of the order id.
    pub public_ref: String,
    pub dummy: bool,
    pub order: Order,
    pub with_capture: bool,
    pub note_to_buyer: Option<String>,
    pub success_url: Option<String>,
    pub cancel_url: Option<String>,
    pub error_url: Option<String>,
    pub authorize_push_url: Option<String>,
    pub capture_push_url: Option<String>,
    pub cancel_push_url: Option<String>,
    pub checkout_session_id: Option<String>,
    pub charge_permission_id: Option<String>,
    pub charge_id: Option<String>,
    pub version: i64,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryEntry {
    pub command: String,
    /// The request as received (the `params` JSON, or a description of a browser step).
    pub request: String,
    pub mstatus: String,
    pub v_result_code: String,
    pub message: String,
    pub at: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundRecord {
    pub seq: i64,
    pub amazon_refund_id: String,
    pub amount: Yen,
    pub state: String,
    pub created_at: String,
}
