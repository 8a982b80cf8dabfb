//! Charges: payment authorizations and their captures. An authorization is decided at once or
//! pending for a while; it is captured (later than a week after it: asynchronously), canceled,
//! or expires unused after 30 days.

use super::clock::{AUTHORIZATION_TTL, LATE_CAPTURE_AFTER, PENDING_SETTLES_AFTER, PERIOD};
use super::ids::{money, opt_money, ChargeId, MerchantId, PermissionId};
use super::permission::{periodic_limit, PermissionKind, PermissionState};
use super::{
    Action, AmountOf, Engine, EngineError, Environment, Kind, Merchant, Metadata, Object, Simulated,
};
use crate::buyers::Simulation;
use kessai_core::Money;
use serde::{Deserialize, Serialize};

/// Why an authorization was declined.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Decline {
    Soft,
    Hard,
    Rejected,
    ProcessingFailure,
    TimedOut,
}

impl Decline {
    pub const ALL: [Decline; 5] = [
        Decline::Soft,
        Decline::Hard,
        Decline::Rejected,
        Decline::ProcessingFailure,
        Decline::TimedOut,
    ];

    /// Amazon's name of the reason.
    pub fn name(self) -> &'static str {
        match self {
            Decline::Soft => "SoftDeclined",
            Decline::Hard => "HardDeclined",
            Decline::Rejected => "AmazonRejected",
            Decline::ProcessingFailure => "ProcessingFailure",
            Decline::TimedOut => "TransactionTimedOut",
        }
    }
}

/// Why a charge was canceled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ChargeCancel {
    /// 30 days passed without a capture.
    ExpiredUnused,
    /// The payment service provider marked it expired.
    MarkedExpired,
    /// The merchant canceled it (with its reason, if it gave one).
    Merchant(Option<String>),
    /// Its charge permission was closed with its pending charges.
    PermissionClosed,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ChargeState {
    /// Pending until `until`, then authorized (or declined with `decline`).
    AuthorizationInitiated {
        until: i64,
        decline: Option<Decline>,
    },
    Authorized,
    /// A late capture, completing at `until`.
    CaptureInitiated {
        until: i64,
    },
    Captured,
    Canceled(ChargeCancel),
    Declined(Decline),
}

impl ChargeState {
    pub fn name(&self) -> &'static str {
        match self {
            ChargeState::AuthorizationInitiated { .. } => "AuthorizationInitiated",
            ChargeState::Authorized => "Authorized",
            ChargeState::CaptureInitiated { .. } => "CaptureInitiated",
            ChargeState::Captured => "Captured",
            ChargeState::Canceled(_) => "Canceled",
            ChargeState::Declined(_) => "Declined",
        }
    }
}

/// How a new charge's authorization goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Outcome {
    /// Decided at once: authorized (or captured with capture now).
    Now,
    /// Pending, settling after 30 s as authorized, or declined with `decline`.
    Pending { decline: Option<Decline> },
}

impl Outcome {
    /// How the buyer's payment method behaves when charged.
    pub(super) fn of_instrument(simulation: Simulation) -> Outcome {
        match simulation {
            Simulation::PendingThenAuthorized => Outcome::Pending { decline: None },
            Simulation::PendingThenDeclined => Outcome::Pending {
                decline: Some(Decline::Hard),
            },
            _ => Outcome::Now,
        }
    }
}

/// Create Charge.
#[derive(Debug, Clone)]
pub struct NewCharge {
    pub permission_id: PermissionId,
    pub amount: Money,
    pub capture_now: bool,
    pub can_handle_pending: bool,
    pub soft_descriptor: Option<String>,
    pub metadata: Metadata,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Charge {
    id: ChargeId,
    permission_id: PermissionId,
    merchant_id: MerchantId,
    created: i64,
    /// When an authorization expires unused.
    expires: i64,
    #[serde(with = "money")]
    amount: Money,
    #[serde(with = "opt_money")]
    captured: Option<Money>,
    #[serde(with = "opt_money")]
    refunded: Option<Money>,
    soft_descriptor: Option<String>,
    capture_now: bool,
    state: ChargeState,
    updated: i64,
    metadata: Metadata,
    environment: Option<Environment>,
}

impl Charge {
    pub fn id(&self) -> &ChargeId {
        &self.id
    }
    pub fn permission_id(&self) -> &PermissionId {
        &self.permission_id
    }
    pub fn merchant_id(&self) -> &MerchantId {
        &self.merchant_id
    }
    pub fn created(&self) -> i64 {
        self.created
    }
    pub fn expires(&self) -> i64 {
        self.expires
    }
    /// The amount authorized.
    pub fn amount(&self) -> Money {
        self.amount
    }
    pub fn captured(&self) -> Option<Money> {
        self.captured
    }
    /// What settled refunds gave back.
    pub fn refunded(&self) -> Option<Money> {
        self.refunded
    }
    pub fn soft_descriptor(&self) -> Option<&str> {
        self.soft_descriptor.as_deref()
    }
    pub fn state(&self) -> &ChargeState {
        &self.state
    }
    pub fn updated(&self) -> i64 {
        self.updated
    }
    pub fn metadata(&self) -> &Metadata {
        &self.metadata
    }
    pub fn environment(&self) -> Option<Environment> {
        self.environment
    }

    pub(super) fn deadline(&self) -> Option<i64> {
        match self.state {
            ChargeState::Authorized => Some(self.expires),
            ChargeState::AuthorizationInitiated { until, .. }
            | ChargeState::CaptureInitiated { until } => Some(until),
            _ => None,
        }
    }

    fn set(&mut self, state: ChargeState, now: i64) {
        self.state = state;
        self.updated = now;
    }

    pub(super) fn add_refunded(&mut self, amount: Money) {
        let before = self.refunded.map(|m| m.minor()).unwrap_or(0);
        self.refunded = Some(Money::new(before + amount.minor(), amount.currency()));
    }
}

impl Engine {
    fn charge_mut(
        &mut self,
        merchant: &Merchant,
        id: &ChargeId,
    ) -> Result<&mut Charge, EngineError> {
        self.charges
            .get_mut(id)
            .filter(|c| c.merchant_id() == merchant.id())
            .ok_or_else(|| EngineError::NotFound {
                object: Object::Charge,
                id: id.as_str().to_owned(),
            })
    }

    fn wrong_state(state: &ChargeState, action: Action) -> EngineError {
        EngineError::InvalidState {
            object: Object::Charge,
            state: state.name(),
            action,
        }
    }

    pub fn create_charge(
        &mut self,
        merchant: &Merchant,
        new: NewCharge,
        sim: Option<Simulated>,
        now: i64,
    ) -> Result<&Charge, EngineError> {
        let armed = self.armed.remove(&new.permission_id);
        let sim = sim.or(armed);
        let p = self.permission(merchant, &new.permission_id)?.clone();
        if p.state() != &PermissionState::Chargeable {
            return Err(EngineError::InvalidState {
                object: Object::ChargePermission,
                state: p.state().name(),
                action: Action::Charge,
            });
        }
        let currency = new.amount.currency();
        let live: Vec<&Charge> = self
            .charges_of(&new.permission_id)
            .filter(|c| Engine::counts(c.state()))
            .collect();
        if p.kind() == PermissionKind::Recurring {
            let used: i64 = live
                .iter()
                .filter(|c| now - c.created < PERIOD)
                .map(|c| c.amount.minor())
                .sum();
            let limit = periodic_limit(currency);
            if used + new.amount.minor() > limit {
                return Err(EngineError::PeriodExceeded {
                    used: Money::new(used, currency),
                    amount: new.amount,
                    limit: Money::new(limit, currency),
                });
            }
        } else {
            if self.charges_of(&new.permission_id).count() >= 25 {
                return Err(EngineError::CountExceeded);
            }
            let balance = p.balance().map(|m| m.minor()).unwrap_or(0);
            let pending: i64 = live
                .iter()
                .filter(|c| c.state != ChargeState::Captured)
                .map(|c| c.amount.minor())
                .sum();
            if new.amount.minor() > balance - pending {
                return Err(EngineError::BalanceExceeded {
                    amount: new.amount,
                    left: Money::new((balance - pending).max(0), currency),
                });
            }
        }
        let can_pend = new.can_handle_pending;
        let outcome = match sim {
            Some(Simulated::Decline(reason)) if can_pend => Outcome::Pending {
                decline: Some(reason),
            },
            Some(Simulated::Decline(reason)) => return Err(EngineError::Declined { reason }),
            Some(Simulated::Pending) => Outcome::Pending { decline: None },
            Some(other) => {
                return Err(EngineError::UnfitSimulation {
                    code: other.code().to_owned(),
                    action: Action::Charge,
                })
            }
            None => Outcome::of_instrument(
                crate::buyers::instrument(p.instrument_id())
                    .map(|i| i.simulation)
                    .unwrap_or(Simulation::Success),
            ),
        };
        if matches!(outcome, Outcome::Pending { .. }) && !can_pend {
            return Err(EngineError::PendingNotAccepted { intent: false });
        }
        let mut metadata = p.metadata().clone();
        metadata.merge(&new.metadata);
        let charge_id = self.new_charge(
            merchant,
            &new.permission_id,
            new.amount,
            new.capture_now,
            outcome,
            metadata,
            new.soft_descriptor,
            now,
        );
        self.charge(merchant, &charge_id)
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn new_charge(
        &mut self,
        merchant: &Merchant,
        cp_id: &PermissionId,
        amount: Money,
        capture_now: bool,
        outcome: Outcome,
        metadata: Metadata,
        soft_descriptor: Option<String>,
        now: i64,
    ) -> ChargeId {
        let environment = self.permissions.get(cp_id).map(|p| p.environment());
        let cp_digits = cp_id
            .as_str()
            .trim_start_matches("P01-")
            .trim_start_matches("B01-");
        let id = ChargeId::new(format!("S01-{cp_digits}-C{}", self.ids.digits(6)));
        let state = match outcome {
            Outcome::Pending { decline } => ChargeState::AuthorizationInitiated {
                until: now + PENDING_SETTLES_AFTER,
                decline,
            },
            Outcome::Now if capture_now => ChargeState::Captured,
            Outcome::Now => ChargeState::Authorized,
        };
        let captured = (state == ChargeState::Captured).then_some(amount);
        let charge = Charge {
            id: id.clone(),
            permission_id: cp_id.clone(),
            merchant_id: merchant.id().clone(),
            created: now,
            expires: now + AUTHORIZATION_TTL,
            amount,
            captured,
            refunded: None,
            soft_descriptor,
            capture_now,
            state,
            updated: now,
            metadata,
            environment,
        };
        if let Some(when) = charge.deadline() {
            self.schedule(when, Kind::Charge, id.as_str());
        }
        self.charges.insert(id.clone(), charge);
        if captured.is_some() {
            self.add_captured(cp_id, amount, now);
        }
        self.touch(Kind::Charge, id.as_str());
        id
    }

    pub fn capture(
        &mut self,
        merchant: &Merchant,
        id: &ChargeId,
        amount: Money,
        soft_descriptor: Option<String>,
        now: i64,
    ) -> Result<&Charge, EngineError> {
        let rec = self.charge_mut(merchant, id)?;
        if rec.state != ChargeState::Authorized {
            return Err(Engine::wrong_state(&rec.state, Action::Capture));
        }
        if amount.currency() != rec.amount.currency() {
            return Err(EngineError::CurrencyMismatch {
                of: AmountOf::Capture,
            });
        }
        if amount.minor() > rec.amount.minor() {
            return Err(EngineError::CaptureExceeded {
                amount,
                authorized: rec.amount,
            });
        }
        rec.captured = Some(amount);
        if soft_descriptor.is_some() {
            rec.soft_descriptor = soft_descriptor;
        }
        let cp_id = rec.permission_id.clone();
        // A capture more than 7 days after the authorization is processed asynchronously.
        if now - rec.created > LATE_CAPTURE_AFTER {
            let until = now + PENDING_SETTLES_AFTER;
            rec.set(ChargeState::CaptureInitiated { until }, now);
            self.schedule(until, Kind::Charge, id.as_str());
        } else {
            rec.set(ChargeState::Captured, now);
            self.add_captured(&cp_id, amount, now);
        }
        self.touch(Kind::Charge, id.as_str());
        self.charge(merchant, id)
    }

    pub fn cancel_charge(
        &mut self,
        merchant: &Merchant,
        id: &ChargeId,
        reason: Option<String>,
        now: i64,
    ) -> Result<&Charge, EngineError> {
        let rec = self.charge_mut(merchant, id)?;
        if !matches!(
            rec.state,
            ChargeState::Authorized | ChargeState::AuthorizationInitiated { .. }
        ) {
            return Err(Engine::wrong_state(&rec.state, Action::Cancel));
        }
        rec.set(ChargeState::Canceled(ChargeCancel::Merchant(reason)), now);
        self.touch(Kind::Charge, id.as_str());
        self.charge(merchant, id)
    }

    /// A payment service provider marks an authorization expired.
    pub fn mark_expired(
        &mut self,
        merchant: &Merchant,
        id: &ChargeId,
        now: i64,
    ) -> Result<&Charge, EngineError> {
        let rec = self.charge_mut(merchant, id)?;
        if rec.state != ChargeState::Authorized {
            return Err(Engine::wrong_state(&rec.state, Action::MarkExpired));
        }
        rec.set(ChargeState::Canceled(ChargeCancel::MarkedExpired), now);
        self.touch(Kind::Charge, id.as_str());
        self.charge(merchant, id)
    }

    /// Cancels the open authorizations of a permission that is being closed.
    pub(super) fn cancel_open_charges(&mut self, id: &PermissionId, now: i64) {
        let open: Vec<ChargeId> = self
            .charges_of(id)
            .filter(|c| {
                matches!(
                    c.state,
                    ChargeState::Authorized | ChargeState::AuthorizationInitiated { .. }
                )
            })
            .map(|c| c.id.clone())
            .collect();
        for cid in open {
            if let Some(c) = self.charges.get_mut(&cid) {
                c.set(ChargeState::Canceled(ChargeCancel::PermissionClosed), now);
            }
            self.touch(Kind::Charge, cid.as_str());
        }
    }

    /// Test helper: the next charge on `id` behaves as `sim` says.
    pub fn arm_simulation(&mut self, id: &PermissionId, sim: Simulated) -> Result<(), EngineError> {
        if !self.permissions.contains_key(id) {
            return Err(EngineError::NotFound {
                object: Object::ChargePermission,
                id: id.as_str().to_owned(),
            });
        }
        if !matches!(sim, Simulated::Decline(_) | Simulated::Pending) {
            return Err(EngineError::UnfitSimulation {
                code: sim.code().to_owned(),
                action: Action::Charge,
            });
        }
        self.armed.insert(id.clone(), sim);
        Ok(())
    }

    pub(super) fn settle_charge(&mut self, id: &ChargeId, when: i64) -> bool {
        let Some(rec) = self.charges.get_mut(id) else {
            return false;
        };
        match rec.state.clone() {
            ChargeState::AuthorizationInitiated { until, decline } if until <= when => {
                match decline {
                    None if rec.capture_now => {
                        rec.captured = Some(rec.amount);
                        rec.set(ChargeState::Captured, when);
                    }
                    None => {
                        rec.set(ChargeState::Authorized, when);
                        rec.expires = when + AUTHORIZATION_TTL;
                        let expires = rec.expires;
                        self.schedule(expires, Kind::Charge, id.as_str());
                    }
                    Some(reason) => rec.set(ChargeState::Declined(reason), when),
                }
                self.touch(Kind::Charge, id.as_str());
                true
            }
            ChargeState::CaptureInitiated { until } if until <= when => {
                rec.set(ChargeState::Captured, when);
                let cp_id = rec.permission_id.clone();
                let amount = rec.captured;
                self.touch(Kind::Charge, id.as_str());
                if let Some(amount) = amount {
                    self.add_captured(&cp_id, amount, when);
                }
                true
            }
            ChargeState::Authorized if rec.expires <= when => {
                rec.set(ChargeState::Canceled(ChargeCancel::ExpiredUnused), when);
                self.touch(Kind::Charge, id.as_str());
                true
            }
            _ => false,
        }
    }
}
