//! The refund: its states, reason code and how Amazon decides it.

use super::PROCESSING_DELAY;
use crate::engine::agreements::ids::{CaptureId, Environment, RefundId, SellerId};
use crate::engine::agreements::Timestamp;
use kessai_core::Money;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum RefundState {
    Pending,
    Completed,
    Declined,
}

impl RefundState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "Pending",
            Self::Completed => "Completed",
            Self::Declined => "Declined",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum RefundReason {
    AmazonRejected,
}

impl RefundReason {
    pub fn as_str(self) -> &'static str {
        "AmazonRejected"
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refund {
    id: RefundId,
    capture: CaptureId,
    seller: SellerId,
    environment: Environment,
    reference_id: String,
    #[serde(with = "crate::engine::agreements::stored::money")]
    amount: Money,
    note: Option<String>,
    soft_descriptor: Option<String>,
    state: RefundState,
    reason: Option<RefundReason>,
    created_at: Timestamp,
    updated_at: Timestamp,
    /// When it is decided, and whether it is declined then.
    decides: Option<(Timestamp, bool)>,
}

/// The fields of a new refund.
#[derive(Debug, Clone)]
pub struct NewRefund {
    pub id: RefundId,
    pub capture: CaptureId,
    pub seller: SellerId,
    pub environment: Environment,
    pub reference_id: String,
    pub amount: Money,
    pub note: Option<String>,
    pub soft_descriptor: Option<String>,
    pub declines: bool,
}

impl Refund {
    /// Always Pending at first; decided after [`PROCESSING_DELAY`].
    pub fn new(new: NewRefund, now: Timestamp) -> Refund {
        Refund {
            id: new.id,
            capture: new.capture,
            seller: new.seller,
            environment: new.environment,
            reference_id: new.reference_id,
            amount: new.amount,
            note: new.note,
            soft_descriptor: new.soft_descriptor,
            state: RefundState::Pending,
            reason: None,
            created_at: now,
            updated_at: now,
            decides: Some((now + PROCESSING_DELAY, new.declines)),
        }
    }

    pub fn id(&self) -> &RefundId {
        &self.id
    }
    pub fn capture(&self) -> &CaptureId {
        &self.capture
    }
    pub fn seller(&self) -> &SellerId {
        &self.seller
    }
    pub fn environment(&self) -> Environment {
        self.environment
    }
    pub fn reference_id(&self) -> &str {
        &self.reference_id
    }
    pub fn amount(&self) -> Money {
        self.amount
    }
    pub fn note(&self) -> Option<&str> {
        self.note.as_deref()
    }
    pub fn soft_descriptor(&self) -> Option<&str> {
        self.soft_descriptor.as_deref()
    }
    pub fn state(&self) -> RefundState {
        self.state
    }
    pub fn reason(&self) -> Option<RefundReason> {
        self.reason
    }
    pub fn created_at(&self) -> Timestamp {
        self.created_at
    }
    pub fn updated_at(&self) -> Timestamp {
        self.updated_at
    }

    pub fn due_at(&self) -> Option<Timestamp> {
        (self.state == RefundState::Pending)
            .then_some(self.decides.map(|(at, _)| at))
            .flatten()
    }

    pub fn fall_due(&self, now: Timestamp) -> Option<Refund> {
        let due = self.due_at().filter(|at| *at <= now)?;
        let declines = self.decides.is_some_and(|(_, d)| d);
        Some(Refund {
            state: if declines {
                RefundState::Declined
            } else {
                RefundState::Completed
            },
            reason: declines.then_some(RefundReason::AmazonRejected),
            decides: None,
            updated_at: due,
            ..self.clone()
        })
    }
}
