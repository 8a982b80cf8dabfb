//! The gateway's operation log, as values: what was asked of Amazon Pay, and how it ended.
//!
//! An operation is recorded as `Pending` (with its idempotency key) before the call that can move
//! money or change a checkout, and is finished in the same transaction as the order change it
//! causes. An operation whose answer was lost stays `Pending` until it is resolved.

use crate::money::Yen;

/// An Amazon Pay call that can move money or change a checkout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OperationKind {
    /// Complete Checkout Session: the buyer's authorization (and capture, with `withCapture`).
    CompleteCheckout,
    /// Capture Charge.
    Capture,
    /// Cancel Charge: void the authorization.
    CancelCharge,
    /// Create Refund.
    Refund,
    /// ReAuthorize: Create Charge on a recurring consent's charge permission, for a new order.
    ChargeConsent,
    /// UpdateAuthorize after authorization: release the old authorization and authorize the new
    /// amount on the same charge permission (the old amount again if the new one is declined).
    Reauthorize,
    /// Terminate: Close Charge Permission of a recurring consent.
    CloseConsent,
}

impl OperationKind {
    pub const ALL: [OperationKind; 7] = [
        OperationKind::CompleteCheckout,
        OperationKind::Capture,
        OperationKind::CancelCharge,
        OperationKind::Refund,
        OperationKind::ChargeConsent,
        OperationKind::Reauthorize,
        OperationKind::CloseConsent,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            OperationKind::CompleteCheckout => "CompleteCheckout",
            OperationKind::Capture => "Capture",
            OperationKind::CancelCharge => "CancelCharge",
            OperationKind::Refund => "Refund",
            OperationKind::ChargeConsent => "ChargeConsent",
            OperationKind::Reauthorize => "Reauthorize",
            OperationKind::CloseConsent => "CloseConsent",
        }
    }

    pub fn parse(text: &str) -> Option<OperationKind> {
        OperationKind::ALL.into_iter().find(|k| k.as_str() == text)
    }
}

/// Where an operation is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OperationStatus {
    /// Recorded before the call; Amazon may or may not have carried it out.
    Pending,
    /// Amazon carried it out; the order change it caused is stored.
    Done,
    /// Amazon refused it; nothing moved.
    Failed,
    /// Amazon did not carry it out and will not (e.g. the buyer had not confirmed yet).
    NotDone,
}

impl OperationStatus {
    pub const ALL: [OperationStatus; 4] = [
        OperationStatus::Pending,
        OperationStatus::Done,
        OperationStatus::Failed,
        OperationStatus::NotDone,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            OperationStatus::Pending => "Pending",
            OperationStatus::Done => "Done",
            OperationStatus::Failed => "Failed",
            OperationStatus::NotDone => "NotDone",
        }
    }

    pub fn parse(text: &str) -> Option<OperationStatus> {
        OperationStatus::ALL
            .into_iter()
            .find(|s| s.as_str() == text)
    }
}

/// What an operation asks for: enough to send exactly the same request again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Intent {
    pub kind: OperationKind,
    /// The amount it moves (the authorization's amount for `CompleteCheckout`, the voided
    /// amount for `CancelCharge`).
    pub amount: Yen,
    /// Free text sent along (the cancellation reason).
    pub note: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for k in OperationKind::ALL {
            assert_eq!(OperationKind::parse(k.as_str()), Some(k));
        }
        for s in OperationStatus::ALL {
            assert_eq!(OperationStatus::parse(s.as_str()), Some(s));
        }
        assert_eq!(OperationKind::parse("capture"), None);
    }
}
