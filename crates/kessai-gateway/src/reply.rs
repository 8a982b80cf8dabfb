//! A command's answer as typed values. [`crate::mdk::render`] turns it into the MDK envelope; no
//! other code writes MDK keys.

use kessai_core::{OrderId, ResultCode, Yen};
use time::OffsetDateTime;

/// What a command answers: its result, the order it is about, and its own fields.
#[derive(Debug, Clone)]
pub struct Answer {
    pub result: ResultCode,
    /// The order id as the merchant sent it (kept even when it is not a valid id).
    pub order_id: Option<String>,
    pub reply: Reply,
    /// The operation whose outcome this answer carries: marked as reported once the answer is
    /// rendered, so a merchant whose answer was lost (a crash before it was sent) still gets the
    /// outcome on retry.
    pub reports: Option<Reported>,
    /// A refusal whose attempt is still to be appended to the order's history: the pipeline does
    /// that after releasing the order's lock, before the answer leaves, so a burst of refused
    /// retries on one order shares commits instead of queuing for one each.
    pub refusal_unrecorded: bool,
}

/// An operation of the log, by order and idempotency key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reported {
    pub merchant: kessai_core::MerchantCcid,
    pub order_id: OrderId,
    pub key: String,
}

impl Answer {
    pub fn failure(result: ResultCode, order_id: Option<String>) -> Answer {
        Answer {
            result,
            order_id,
            reply: Reply::Nothing,
            reports: None,
            refusal_unrecorded: false,
        }
    }

    /// Marks the answer as the report of an operation.
    pub fn reporting(mut self, op: &kessai_store::OperationRecord) -> Answer {
        self.reports = Some(Reported {
            merchant: op.merchant.clone(),
            order_id: op.order_id.clone(),
            key: op.key.clone(),
        });
        self
    }

    pub fn about(order_id: &OrderId, result: ResultCode, reply: Reply) -> Answer {
        Answer {
            result,
            order_id: Some(order_id.to_string()),
            reply,
            reports: None,
            refusal_unrecorded: false,
        }
    }

    /// A refusal whose attempt the pipeline appends to the history once the order is unlocked.
    pub fn refusal_to_record(mut self) -> Answer {
        self.refusal_unrecorded = true;
        self
    }
}

/// The command-specific part of an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    Nothing,
    /// Authorize: the page that sends the buyer to Amazon Pay.
    BuyerPage {
        html: String,
    },
    /// Capture, Cancel: Amazon's ids of the order and the transaction.
    Center(Center),
    /// Refund: Amazon's ids (the transaction is the refund) and what is left to refund.
    Refunded {
        center: Center,
        refundable: Yen,
    },
    /// A refused Refund still tells what is left to refund.
    Refundable(Yen),
    /// GetAddress.
    Address(Box<AddressReply>),
    /// UpdateAuthorize before the buyer confirmed: where the merchant sends the buyer now.
    PayRedirect {
        center: Center,
        pay_redirect_url: String,
    },
}

/// `centerResponseDatetime`, `centerOrderId`, `centerTransactionId`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Center {
    pub at: OffsetDateTime,
    pub order_id: Option<String>,
    pub transaction_id: Option<String>,
}

/// A postal address split the way the MDK reports it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PostalAddress {
    pub name: Option<String>,
    pub phone: Option<String>,
    pub line1: Option<String>,
    pub line2: Option<String>,
    pub line3: Option<String>,
    pub prefecture: Option<String>,
    pub postal_code: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddressReply {
    pub at: OffsetDateTime,
    pub shipping: PostalAddress,
    pub buyer_id: Option<String>,
    pub buyer_email: Option<String>,
    /// With `addInfoRespFlag=1`.
    pub extended: Option<ExtendedBuyer>,
    /// While the order waits for the buyer's confirmation (PreAuth).
    pub pre_auth: Option<PreAuthLinks>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtendedBuyer {
    pub name: Option<String>,
    pub phone: Option<String>,
    pub payment_descriptor: Option<String>,
    pub billing: PostalAddress,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreAuthLinks {
    pub pay_redirect_url: String,
    pub checkout_session_id: Option<String>,
}
