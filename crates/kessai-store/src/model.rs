use kessai_core::{
    Consent, ConsentState, Frequency, FrequencyUnit, Intent, MerchantCcid, OperationStatus, Order,
    OrderId, PushKind, PushStatus, Secret, Yen,
};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MerchantRecord {
    pub ccid: MerchantCcid,
    /// The hex secret key shared with the merchant (authHash, push signatures).
    pub secret_hex: Secret<String>,
    pub name: String,
    /// `consentAuthType` of a recurring Authorize that leaves it out: true "1" (consent and a
    /// first authorization), false "0" (consent only).
    pub consent_auth_default: bool,
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
    /// The idempotency key of the operation in flight on this order, if any.
    pub in_flight: Option<String>,
    /// A recurring (随時) order's consent; `None` for one-time orders and ReAuthorize charges.
    pub consent: Option<Consent>,
    /// A ReAuthorize charge: the recurring order whose consent it is charged against.
    pub original_order_id: Option<OrderId>,
    pub confirm_screen: ConfirmScreen,
    pub options: AmazonOptions,
    pub version: i64,
    pub created_at: String,
    pub updated_at: String,
}

impl OrderRecord {
    /// `accountingType`: 1 for a recurring consent order and for the charges against it.
    pub fn accounting_type(&self) -> u8 {
        u8::from(self.consent.is_some() || self.original_order_id.is_some())
    }
}

/// Where the buyer confirms the payment (`payConfirmScreenType`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum ConfirmScreen {
    /// "0": on Kessai's page.
    #[default]
    Gateway,
    /// "1": on the merchant's page at `url`; the order waits in `PreAuth`.
    Merchant { url: String },
}

impl ConfirmScreen {
    pub fn type_code(&self) -> u8 {
        match self {
            ConfirmScreen::Gateway => 0,
            ConfirmScreen::Merchant { .. } => 1,
        }
    }
}

/// Authorize's options that are passed through to Amazon Pay as given.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AmazonOptions {
    /// `addressRestrictions`: a JSON object.
    pub address_restrictions: Option<String>,
    pub suppress_shipping_address_view: Option<bool>,
    pub extend_expiration: bool,
    pub platform_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryEntry {
    pub command: String,
    /// The request as received (the `params` JSON, or a description of a browser step).
    pub request: String,
    pub mstatus: String,
    pub v_result_code: String,
    pub message: String,
    /// The amount the command was about, if any.
    pub amount: Option<Yen>,
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

/// One entry of the operation log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperationRecord {
    /// The idempotency key sent to Amazon Pay; unique, and the operation's id.
    pub key: String,
    pub merchant: MerchantCcid,
    pub order_id: OrderId,
    /// 1, 2, … per order.
    pub seq: i64,
    pub intent: Intent,
    pub status: OperationStatus,
    /// True once the merchant (or the buyer's browser) was told the outcome.
    pub reported: bool,
    /// The outcome as a `vResultCode` and message, once known.
    pub result_code: Option<String>,
    pub result_message: Option<String>,
    /// What Amazon Pay named the result (the refund id of a Refund).
    pub amazon_id: Option<String>,
    pub created_at: String,
    pub finished_at: Option<String>,
}

/// How an operation ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperationEnd {
    pub key: String,
    pub status: OperationStatus,
    pub result_code: String,
    pub result_message: String,
    pub amazon_id: Option<String>,
    /// The outcome reaches the caller in the answer this change is committed for.
    pub reported: bool,
    pub at: String,
}

/// One row written by a [`Unit`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Write {
    /// A new order; [`crate::StoreError::Duplicate`] if the merchant already has its id.
    InsertOrder(OrderRecord),
    /// The order after the change; its `version` must be one more than the stored one, or the
    /// unit fails with [`crate::StoreError::Conflict`].
    UpdateOrder(OrderRecord),
    History(HistoryEntry),
    Refund(RefundRecord),
    /// Records a pending operation (at most one per order).
    BeginOperation(OperationRecord),
    FinishOperation(OperationEnd),
    /// The outcome of a finished operation reached the merchant.
    MarkReported {
        key: String,
    },
    /// A step of a pending operation that a resolver must know about (its `note` is replaced).
    NoteOperation {
        key: String,
        note: String,
    },
    /// A result record for the merchant, delivered later by the push worker.
    Push(PushRecord),
    /// Amazon's state of one of the order's refunds.
    RefundState {
        amazon_refund_id: String,
        state: String,
    },
    /// An Amazon Pay notification was handled (a replay of it is ignored).
    IpnSeen {
        message_id: String,
        at: i64,
    },
}

/// Everything one step of one order writes, applied in one transaction or not at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unit {
    pub merchant: MerchantCcid,
    pub order_id: OrderId,
    pub writes: Vec<Write>,
}

impl Unit {
    pub fn new(merchant: &MerchantCcid, order_id: &OrderId) -> Unit {
        Unit {
            merchant: merchant.clone(),
            order_id: order_id.clone(),
            writes: Vec::new(),
        }
    }

    pub fn with(mut self, write: Write) -> Unit {
        self.writes.push(write);
        self
    }

    /// True when the unit finishes an operation (a fault injector's hook).
    pub fn finishes_operation(&self) -> bool {
        self.writes
            .iter()
            .any(|w| matches!(w, Write::FinishOperation(_)))
    }
}

/// One result record for a merchant in the push outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushRecord {
    /// Assigned by the store (ignored when written).
    pub id: i64,
    pub merchant: MerchantCcid,
    pub order_id: OrderId,
    pub kind: PushKind,
    pub url: String,
    pub dummy: bool,
    /// The record's fields, in order, without the index suffix (`orderId`, `vResultCode`, …).
    pub fields: Vec<(String, String)>,
    pub status: PushStatus,
    pub attempts: u32,
    /// Unix seconds.
    pub next_attempt_at: i64,
    pub lease_until: Option<i64>,
    /// The `pushId` of the POST that delivered it.
    pub push_id: Option<String>,
    pub last_error: Option<String>,
    pub created_at: i64,
    pub delivered_at: Option<i64>,
}

/// How one delivery attempt of some records ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushEnd {
    Delivered {
        push_id: String,
        at: i64,
    },
    /// Try again at `next_attempt_at`.
    Retry {
        error: String,
        next_attempt_at: i64,
    },
    /// Given up after the retry window.
    Failed {
        error: String,
    },
    /// The target is not allowed; never sent.
    Refused {
        error: String,
    },
}

/// What a merchant's idempotency key found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyClaim {
    /// First use (or a takeover of one abandoned in flight): run the request.
    New,
    /// Used before with the same request: its answer.
    Replay(String),
    /// Used before with another request.
    Mismatch,
    /// The first request with this key is still running.
    InFlight,
}

/// Which push records to list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PushFilter {
    pub merchant: Option<MerchantCcid>,
    pub order_id: Option<OrderId>,
    pub status: Option<PushStatus>,
    pub limit: i64,
}

/// A consent from its stored columns (the same in every backend); `None` when the order has none.
pub(crate) fn consent_from_columns(
    state: Option<String>,
    unit: Option<String>,
    value: Option<i64>,
    amount: Option<i64>,
    with_authorization: Option<bool>,
) -> Result<Option<Consent>, crate::StoreError> {
    let Some(state) = state else {
        return Ok(None);
    };
    let corrupt = |what: &str| crate::StoreError::Corrupt(format!("consent: {what}"));
    let state = ConsentState::parse(&state).ok_or_else(|| corrupt("unknown state"))?;
    let unit = unit
        .as_deref()
        .and_then(FrequencyUnit::parse)
        .ok_or_else(|| corrupt("frequency unit"))?;
    let value = value
        .and_then(|v| u64::try_from(v).ok())
        .ok_or_else(|| corrupt("frequency value"))?;
    let frequency = Frequency::new(unit, value).map_err(|e| corrupt(&e.to_string()))?;
    let amount = amount
        .and_then(|v| u64::try_from(v).ok())
        .map(Yen::new)
        .ok_or_else(|| corrupt("amount"))?;
    Ok(Some(Consent {
        state,
        amount,
        frequency,
        with_authorization: with_authorization.unwrap_or(true),
    }))
}
