//! Checkout sessions: the merchant creates and updates one, the buyer signs in and confirms on
//! Amazon's pages, and completing it makes the charge permission (and the first charge).

use super::buyer::BuyerChoice;
use super::charge::Outcome;
use super::clock::{CHECKOUT_SESSION_TTL, EXTENDED_PERMISSION_TTL, ONE_TIME_PERMISSION_TTL};
use super::ids::{opt_money, ChargeId, MerchantId, PermissionId, SessionId};
use super::permission::{NewPermission, Permission, PermissionKind, Recurring};
use super::{
    Action, Engine, EngineError, Environment, Kind, Merchant, Metadata, Object, Simulated,
};
use crate::buyers::Simulation;
use kessai_core::Money;
use serde::{Deserialize, Serialize};

/// What the merchant means to do with the buyer's payment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Intent {
    /// Only the buyer's consent (no charge now).
    Confirm,
    Authorize,
    AuthorizeWithCapture,
}

/// The button's `productType`: with a shipping address, or a payment only (no address is
/// collected or reported). Sessions made by API are `PayAndShip`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum ProductType {
    #[default]
    PayAndShip,
    PayOnly,
}

impl ProductType {
    /// Amazon's name.
    pub fn name(self) -> &'static str {
        match self {
            ProductType::PayAndShip => "PayAndShip",
            ProductType::PayOnly => "PayOnly",
        }
    }

    /// Whether a shipping address is collected and reported.
    pub fn ships(self) -> bool {
        self == ProductType::PayAndShip
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CancelReason {
    BuyerCanceled,
    Expired,
    Declined,
    AmazonCanceled,
}

impl CancelReason {
    pub fn name(self) -> &'static str {
        match self {
            CancelReason::BuyerCanceled => "BuyerCanceled",
            CancelReason::Expired => "Expired",
            CancelReason::Declined => "Declined",
            CancelReason::AmazonCanceled => "AmazonCanceled",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SessionState {
    Open,
    Completed,
    /// `simulated`: asked for with a simulation code.
    Canceled {
        reason: CancelReason,
        simulated: bool,
    },
}

impl SessionState {
    pub fn name(self) -> &'static str {
        match self {
            SessionState::Open => "Open",
            SessionState::Completed => "Completed",
            SessionState::Canceled { .. } => "Canceled",
        }
    }
}

/// What is still missing before the buyer can be sent to pay.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Missing {
    Buyer,
    ResultUrl,
    ChargeAmount,
    Intent,
}

/// The payment the merchant asks for (also an update: unset fields keep their value).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payment {
    pub intent: Option<Intent>,
    pub can_handle_pending: Option<bool>,
    #[serde(with = "opt_money")]
    pub charge_amount: Option<Money>,
    #[serde(with = "opt_money")]
    pub total_order_amount: Option<Money>,
    pub soft_descriptor: Option<String>,
    pub presentment_currency: Option<String>,
    pub extend_expiration: Option<bool>,
}

impl Payment {
    fn merge(&mut self, u: &Payment) {
        if u.intent.is_some() {
            self.intent = u.intent;
        }
        if u.can_handle_pending.is_some() {
            self.can_handle_pending = u.can_handle_pending;
        }
        if u.charge_amount.is_some() {
            self.charge_amount = u.charge_amount;
        }
        if u.total_order_amount.is_some() {
            self.total_order_amount = u.total_order_amount;
        }
        if u.soft_descriptor.is_some() {
            self.soft_descriptor = u.soft_descriptor.clone();
        }
        if u.presentment_currency.is_some() {
            self.presentment_currency = u.presentment_currency.clone();
        }
        if u.extend_expiration.is_some() {
            self.extend_expiration = u.extend_expiration;
        }
    }
}

/// Where the buyer's browser goes back to the merchant.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReturnUrls {
    pub review: Option<String>,
    pub result: Option<String>,
    pub cancel: Option<String>,
}

/// Create Checkout Session.
#[derive(Debug, Clone)]
pub struct NewSession {
    pub urls: ReturnUrls,
    pub store_id: String,
    pub kind: Option<PermissionKind>,
    pub payment: Payment,
    pub metadata: Metadata,
    pub platform_id: Option<String>,
    pub recurring: Option<Recurring>,
    /// Delivery specifications, kept as given.
    pub delivery: Option<serde_json::Value>,
    pub environment: Environment,
    pub product: ProductType,
}

/// Update Checkout Session: unset fields keep their value.
#[derive(Debug, Clone, Default)]
pub struct SessionUpdate {
    pub urls: ReturnUrls,
    pub payment: Payment,
    pub metadata: Metadata,
    pub platform_id: Option<String>,
    pub recurring: Option<Recurring>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Session {
    id: SessionId,
    merchant_id: MerchantId,
    created: i64,
    expires: i64,
    state: SessionState,
    updated: i64,
    urls: ReturnUrls,
    payment: Payment,
    metadata: Metadata,
    kind: PermissionKind,
    recurring: Option<Recurring>,
    platform_id: Option<String>,
    delivery: Option<serde_json::Value>,
    store_id: String,
    environment: Environment,
    /// Records written before it existed read as `PayAndShip`.
    #[serde(default)]
    product: ProductType,
    choice: Option<BuyerChoice>,
    confirmed: bool,
    missing: Vec<Missing>,
    /// Whether the buyer may be sent to pay (nothing was missing at the last change).
    payable: bool,
    permission_id: Option<PermissionId>,
    charge_id: Option<ChargeId>,
}

impl Session {
    pub fn id(&self) -> &SessionId {
        &self.id
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
    pub fn state(&self) -> SessionState {
        self.state
    }
    /// When the state or the session last changed.
    pub fn updated(&self) -> i64 {
        self.updated
    }
    pub fn urls(&self) -> &ReturnUrls {
        &self.urls
    }
    pub fn payment(&self) -> &Payment {
        &self.payment
    }
    pub fn metadata(&self) -> &Metadata {
        &self.metadata
    }
    pub fn kind(&self) -> PermissionKind {
        self.kind
    }
    pub fn recurring(&self) -> Option<&Recurring> {
        self.recurring.as_ref()
    }
    pub fn platform_id(&self) -> Option<&str> {
        self.platform_id.as_deref()
    }
    pub fn delivery(&self) -> Option<&serde_json::Value> {
        self.delivery.as_ref()
    }
    pub fn store_id(&self) -> &str {
        &self.store_id
    }
    pub fn product(&self) -> ProductType {
        self.product
    }
    pub fn environment(&self) -> Environment {
        self.environment
    }
    /// The buyer's choices, once signed in.
    pub fn choice(&self) -> Option<&BuyerChoice> {
        self.choice.as_ref()
    }
    pub fn missing(&self) -> &[Missing] {
        &self.missing
    }
    pub fn payable(&self) -> bool {
        self.payable
    }
    pub fn permission_id(&self) -> Option<&PermissionId> {
        self.permission_id.as_ref()
    }
    pub fn charge_id(&self) -> Option<&ChargeId> {
        self.charge_id.as_ref()
    }

    pub(super) fn deadline(&self) -> Option<i64> {
        (self.state == SessionState::Open).then_some(self.expires)
    }

    /// `missing` lists what is needed before the buyer can be sent to pay.
    fn refresh(&mut self) {
        let mut m = Vec::new();
        if self.choice.is_none() {
            m.push(Missing::Buyer);
        }
        if self.urls.result.is_none() {
            m.push(Missing::ResultUrl);
        }
        if self.payment.charge_amount.is_none() {
            m.push(Missing::ChargeAmount);
        }
        if self.payment.intent.is_none() {
            m.push(Missing::Intent);
        }
        self.payable = m.is_empty() && self.state == SessionState::Open;
        self.missing = m;
    }

    fn cancel(&mut self, reason: CancelReason, simulated: bool, now: i64) {
        self.state = SessionState::Canceled { reason, simulated };
        self.updated = now;
        self.payable = false;
    }

    /// Errors for the buyer's pages unless the session is still `Open`.
    fn check_open(&self) -> Result<(), EngineError> {
        if self.state != SessionState::Open {
            return Err(EngineError::SessionUnusable {
                state: self.state.name(),
            });
        }
        Ok(())
    }
}

impl Engine {
    pub fn create_session(
        &mut self,
        merchant: &Merchant,
        new: NewSession,
        now: i64,
    ) -> Result<&Session, EngineError> {
        if new.store_id != merchant.store_id() {
            return Err(EngineError::WrongStore);
        }
        let id = SessionId::new(self.ids.uuid());
        let expires = now + CHECKOUT_SESSION_TTL;
        let mut rec = Session {
            id: id.clone(),
            merchant_id: merchant.id().clone(),
            created: now,
            expires,
            state: SessionState::Open,
            updated: now,
            urls: new.urls,
            payment: new.payment,
            metadata: new.metadata,
            kind: new.kind.unwrap_or(PermissionKind::OneTime),
            recurring: new.recurring,
            platform_id: new.platform_id,
            delivery: new.delivery,
            store_id: new.store_id,
            environment: new.environment,
            product: new.product,
            choice: None,
            confirmed: false,
            missing: Vec::new(),
            payable: false,
            permission_id: None,
            charge_id: None,
        };
        rec.refresh();
        self.schedule(expires, Kind::CheckoutSession, id.as_str());
        self.touch(Kind::CheckoutSession, id.as_str());
        Ok(self.sessions.entry(id).or_insert(rec))
    }

    fn session_mut(
        &mut self,
        merchant: &Merchant,
        id: &SessionId,
    ) -> Result<&mut Session, EngineError> {
        self.sessions
            .get_mut(id)
            .filter(|s| s.merchant_id() == merchant.id())
            .ok_or_else(|| EngineError::NotFound {
                object: Object::CheckoutSession,
                id: id.as_str().to_owned(),
            })
    }

    /// The session a buyer acts on, which must still be `Open`.
    fn open_for_buyer(&mut self, id: &SessionId) -> Result<&mut Session, EngineError> {
        let rec = self
            .sessions
            .get_mut(id)
            .ok_or(EngineError::NoSuchSession)?;
        rec.check_open()?;
        Ok(rec)
    }

    pub fn update_session(
        &mut self,
        merchant: &Merchant,
        id: &SessionId,
        update: SessionUpdate,
        now: i64,
    ) -> Result<&Session, EngineError> {
        let rec = self.session_mut(merchant, id)?;
        if rec.state != SessionState::Open {
            return Err(EngineError::InvalidState {
                object: Object::CheckoutSession,
                state: rec.state.name(),
                action: Action::UpdateSession,
            });
        }
        if let Some(v) = update.urls.result {
            rec.urls.result = Some(v);
        }
        if let Some(v) = update.urls.review {
            rec.urls.review = Some(v);
        }
        if let Some(v) = update.urls.cancel {
            rec.urls.cancel = Some(v);
        }
        rec.payment.merge(&update.payment);
        rec.metadata.merge(&update.metadata);
        if let Some(v) = update.platform_id {
            rec.platform_id = Some(v);
        }
        if let Some(v) = update.recurring {
            rec.recurring = Some(v);
        }
        rec.updated = now;
        rec.refresh();
        self.touch(Kind::CheckoutSession, id.as_str());
        self.session(merchant, id)
    }

    /// The buyer signs in and picks buyer, address and payment method.
    pub fn sign_in(
        &mut self,
        id: &SessionId,
        choice: BuyerChoice,
        now: i64,
    ) -> Result<&Session, EngineError> {
        let rec = self.open_for_buyer(id)?;
        choice.resolve()?;
        rec.choice = Some(choice);
        rec.updated = now;
        rec.refresh();
        self.touch(Kind::CheckoutSession, id.as_str());
        self.sessions.get(id).ok_or(EngineError::NoSuchSession)
    }

    /// The buyer leaves without paying: the session is canceled (`BuyerCanceled`).
    pub fn buyer_cancel(&mut self, id: &SessionId, now: i64) -> Result<&Session, EngineError> {
        self.open_for_buyer(id)?
            .cancel(CancelReason::BuyerCanceled, false, now);
        self.touch(Kind::CheckoutSession, id.as_str());
        self.sessions.get(id).ok_or(EngineError::NoSuchSession)
    }

    /// The buyer confirms on Amazon's page. Amazon runs the checks of the chosen payment
    /// method now; the charge itself is made at Complete.
    pub fn confirm(&mut self, id: &SessionId, now: i64) -> Result<&Session, EngineError> {
        if !self.open_for_buyer(id)?.payable {
            return Err(EngineError::NotPayable);
        }
        self.confirm_unchecked(id, now)?;
        self.sessions.get(id).ok_or(EngineError::NoSuchSession)
    }

    /// The buyer's confirmation, without checking that the session was ready for it.
    fn confirm_unchecked(&mut self, id: &SessionId, now: i64) -> Result<(), EngineError> {
        let rec = self
            .sessions
            .get_mut(id)
            .ok_or(EngineError::NoSuchSession)?;
        let simulation = rec
            .choice
            .as_ref()
            .map(BuyerChoice::simulation)
            .unwrap_or(Simulation::Success);
        // A declined or canceled payment method cancels the session; the redirect URL the
        // merchant was given stays as it was (as before).
        match simulation {
            Simulation::BuyerCanceled => {
                rec.state = SessionState::Canceled {
                    reason: CancelReason::BuyerCanceled,
                    simulated: false,
                };
                rec.updated = now;
            }
            Simulation::Declined => {
                rec.state = SessionState::Canceled {
                    reason: CancelReason::Declined,
                    simulated: false,
                };
                rec.updated = now;
            }
            _ => {
                rec.confirmed = true;
                rec.updated = now;
            }
        }
        self.touch(Kind::CheckoutSession, id.as_str());
        Ok(())
    }

    pub(super) fn expire_session(&mut self, id: &SessionId, when: i64) -> bool {
        let Some(rec) = self.sessions.get_mut(id) else {
            return false;
        };
        if rec.state != SessionState::Open || rec.expires > when {
            return false;
        }
        rec.cancel(CancelReason::Expired, false, when);
        self.touch(Kind::CheckoutSession, id.as_str());
        true
    }

    pub fn complete_session(
        &mut self,
        merchant: &Merchant,
        id: &SessionId,
        charge_amount: Money,
        sim: Option<Simulated>,
        now: i64,
    ) -> Result<&Session, EngineError> {
        let rec = self.session(merchant, id)?.clone();
        match rec.state {
            SessionState::Open => {}
            SessionState::Canceled { reason, .. } => {
                return Err(EngineError::SessionCanceled { reason })
            }
            other => {
                return Err(EngineError::InvalidState {
                    object: Object::CheckoutSession,
                    state: other.name(),
                    action: Action::CompleteSession,
                })
            }
        }
        if !rec.confirmed {
            return Err(EngineError::NotConfirmed);
        }
        if rec.payment.charge_amount != Some(charge_amount) {
            return Err(EngineError::AmountMismatch {
                given: charge_amount,
                expected: rec.payment.charge_amount,
            });
        }
        let choice = rec
            .choice
            .clone()
            .unwrap_or_else(BuyerChoice::default_choice);
        let intent = rec.payment.intent.unwrap_or(Intent::Confirm);
        let can_pend = rec.payment.can_handle_pending.unwrap_or(false);
        let outcome = match sim {
            Some(Simulated::Cancel(reason)) => {
                if let Some(session) = self.sessions.get_mut(id) {
                    session.cancel(reason, true, now);
                }
                self.touch(Kind::CheckoutSession, id.as_str());
                return Err(EngineError::SimulatedCancel { reason });
            }
            Some(Simulated::Pending) => Outcome::Pending { decline: None },
            Some(other) => {
                return Err(EngineError::UnfitSimulation {
                    code: other.code().to_owned(),
                    action: Action::CompleteSession,
                })
            }
            None => Outcome::of_instrument(choice.simulation()),
        };
        if matches!(outcome, Outcome::Pending { .. }) && (intent == Intent::Confirm || !can_pend) {
            return Err(EngineError::PendingNotAccepted { intent: true });
        }
        let recurring = rec.kind == PermissionKind::Recurring;
        let ttl = if rec.payment.extend_expiration == Some(true) {
            EXTENDED_PERMISSION_TTL
        } else {
            ONE_TIME_PERMISSION_TTL
        };
        let cp_id = PermissionId::new(format!("P01-{}-{}", self.ids.digits(7), self.ids.digits(7)));
        let permission = Permission::new(NewPermission {
            id: cp_id.clone(),
            merchant_id: merchant.id().clone(),
            created: now,
            expires: (!recurring).then_some(now + ttl),
            kind: rec.kind,
            reference_id: rec.metadata.reference_id.clone(),
            platform_id: rec.platform_id.clone(),
            choice: rec.choice.clone(),
            instrument_id: choice.instrument_id().to_owned(),
            metadata: rec.metadata.clone(),
            environment: rec.environment,
            product: rec.product,
            limit: (!recurring).then_some(charge_amount),
            recurring: rec.recurring.clone(),
            currency: charge_amount.currency(),
        });
        self.permissions.insert(cp_id.clone(), permission);
        self.touch(Kind::ChargePermission, cp_id.as_str());
        if !recurring {
            self.schedule(now + ttl, Kind::ChargePermission, cp_id.as_str());
        }
        let charge_id = if intent == Intent::Confirm {
            None
        } else {
            Some(self.new_charge(
                merchant,
                &cp_id,
                charge_amount,
                intent == Intent::AuthorizeWithCapture,
                outcome,
                rec.metadata.clone(),
                rec.payment.soft_descriptor.clone(),
                now,
            ))
        };
        let session = self.session_mut(merchant, id)?;
        session.state = SessionState::Completed;
        session.updated = now;
        session.permission_id = Some(cp_id);
        session.charge_id = charge_id;
        self.touch(Kind::CheckoutSession, id.as_str());
        self.session(merchant, id)
    }

    /// Finalize (Buy Now): the merchant supplies the payment details after the buyer signed in,
    /// and the session is completed in the same call.
    #[allow(clippy::too_many_arguments)]
    pub fn finalize_session(
        &mut self,
        merchant: &Merchant,
        id: &SessionId,
        intent: Intent,
        amount: Money,
        can_pend: Option<bool>,
        sim: Option<Simulated>,
        now: i64,
    ) -> Result<&Session, EngineError> {
        let rec = self.session_mut(merchant, id)?;
        if rec.state == SessionState::Open {
            if rec.choice.is_none() {
                return Err(EngineError::NotSignedIn);
            }
            rec.payment.intent = Some(intent);
            rec.payment.charge_amount = Some(amount);
            if can_pend.is_some() {
                rec.payment.can_handle_pending = can_pend;
            }
            self.confirm_unchecked(id, now)?;
        }
        self.complete_session(merchant, id, amount, sim, now)
    }
}
