//! The emulator's state and Amazon Pay's rules over it.
//!
//! All objects live in memory; each operation returns the records it changed so the caller can
//! write them to SQLite before it answers. Time is always passed in (the emulator's clock), and
//! [`World::settle`] makes every transition that Amazon makes on its own once its time has come.

use crate::buyers::{self, Simulation};
use crate::error::ApiError;
use kessai_amazonpay::wire::*;
use kessai_core::IdSource;
use kessai_core::{Currency, Money};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

pub const CHECKOUT_SESSION_TTL: i64 = 24 * 3600;
pub const AUTHORIZATION_TTL: i64 = 30 * 24 * 3600;
pub const ONE_TIME_PERMISSION_TTL: i64 = 180 * 24 * 3600;
/// A one-time charge permission asked for with `extendExpiration` (its length is not documented;
/// `docs/decisions.md`).
pub const EXTENDED_PERMISSION_TTL: i64 = 2 * ONE_TIME_PERMISSION_TTL;
pub const PENDING_SETTLES_AFTER: i64 = 30;
pub const REFUND_SETTLES_AFTER: i64 = 30;
/// Captures later than this after the authorization come back `CaptureInitiated`.
pub const LATE_CAPTURE_AFTER: i64 = 7 * 24 * 3600;

/// Formats emulator time as Amazon does: `20190714T155300Z`.
pub fn timestamp(unix: i64) -> String {
    let t =
        time::OffsetDateTime::from_unix_timestamp(unix).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    t.format(time::macros::format_description!(
        "[year][month][day]T[hour][minute][second]Z"
    ))
    .unwrap_or_default()
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Merchant {
    pub merchant_id: String,
    pub store_id: String,
    pub region: String,
    pub ledger_currency: String,
}

impl Merchant {
    pub fn currency(&self) -> Currency {
        Currency::parse(&self.ledger_currency).unwrap_or(Currency::Jpy)
    }
}

/// The buyer's choices on the sign-in page.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct BuyerChoice {
    pub buyer_id: String,
    pub address_id: String,
    pub instrument_id: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SessionRec {
    pub merchant_id: String,
    pub created: i64,
    pub expires: i64,
    pub choice: Option<BuyerChoice>,
    pub confirmed: bool,
    pub cs: CheckoutSession,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PermissionRec {
    pub merchant_id: String,
    pub created: i64,
    pub expires: i64,
    pub instrument_id: String,
    pub cp: ChargePermission,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChargeRec {
    pub merchant_id: String,
    pub created: i64,
    pub expires: i64,
    /// For `AuthorizationInitiated`: when it settles, and whether it settles as authorized.
    pub pending_until: Option<i64>,
    pub pending_succeeds: bool,
    /// The decline reason a failing pending authorization settles with.
    #[serde(default)]
    pub pending_reason: Option<ReasonCode>,
    pub capture_now: bool,
    pub charge: Charge,
}

/// How a new charge's authorization goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChargeOutcome {
    /// Decided at once: `Authorized` (or `Captured` with capture now).
    Now,
    /// `AuthorizationInitiated`, settling after 30 s as authorized, or declined with `decline`.
    Pending { decline: Option<ReasonCode> },
}

/// A decline Create Charge can simulate: its reason, and the error (with HTTP status) it answers
/// when the merchant cannot handle a pending authorization.
pub fn simulated_decline(code: &str) -> Option<(ReasonCode, ErrorCode, u16)> {
    let found = match ReasonCode::parse(code) {
        ReasonCode::SoftDeclined => (ErrorCode::SoftDeclined, 422),
        ReasonCode::HardDeclined => (ErrorCode::HardDeclined, 422),
        ReasonCode::AmazonRejected => (ErrorCode::AmazonRejected, 422),
        ReasonCode::TransactionTimedOut => (ErrorCode::TransactionTimedOut, 422),
        ReasonCode::ProcessingFailure => (ErrorCode::ProcessingFailure, 500),
        _ => return None,
    };
    Some((ReasonCode::parse(code), found.0, found.1))
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RefundRec {
    pub merchant_id: String,
    pub created: i64,
    pub settles: i64,
    /// Simulated: the refund settles as `Declined`.
    #[serde(default)]
    pub declines: bool,
    pub refund: Refund,
}

/// Which kind of object a record is (the `objects.kind` column).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    CheckoutSession,
    ChargePermission,
    Charge,
    Refund,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::CheckoutSession => "checkoutSession",
            Kind::ChargePermission => "chargePermission",
            Kind::Charge => "charge",
            Kind::Refund => "refund",
        }
    }

    pub fn parse(text: &str) -> Option<Kind> {
        [
            Kind::CheckoutSession,
            Kind::ChargePermission,
            Kind::Charge,
            Kind::Refund,
        ]
        .into_iter()
        .find(|k| k.as_str() == text)
    }
}

/// A changed record, to be written before the answer is sent.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Changed {
    pub kind: Kind,
    pub id: String,
}

#[derive(Debug)]
pub struct World {
    /// Where every new id comes from (seeded in tests, so runs repeat).
    ids: Arc<dyn IdSource>,
    /// Where the buyer pages are served (for `amazonPayRedirectUrl`).
    pub base_url: String,
    pub merchants: HashMap<String, Merchant>,
    pub sessions: HashMap<String, SessionRec>,
    pub permissions: HashMap<String, PermissionRec>,
    pub charges: HashMap<String, ChargeRec>,
    pub refunds: HashMap<String, RefundRec>,
    /// `(when, kind, id)` of every future transition Amazon makes on its own.
    deadlines: BTreeSet<(i64, Kind, String)>,
    changed: BTreeSet<Changed>,
    /// Objects that changed on their own since the last [`World::take_fired`] (for notifications).
    fired: Vec<Changed>,
    /// Test helper: a simulation code for the next Create Charge on a charge permission (for a
    /// caller that cannot send the simulation header itself). Kept in memory only.
    armed: HashMap<String, String>,
}

fn status<S>(
    state: S,
    reason: Option<ReasonCode>,
    description: Option<&str>,
    now: i64,
) -> StatusDetails<S> {
    StatusDetails {
        state,
        reason_code: reason,
        reason_description: description.map(str::to_owned),
        last_updated_timestamp: Some(timestamp(now)),
    }
}

fn money_of(price: &Option<Price>) -> Option<Money> {
    price.as_ref().and_then(|p| p.to_money().ok())
}

/// A test address as Amazon writes addresses.
pub fn address_of(a: &buyers::TestAddress) -> Address {
    to_address(a)
}

fn to_address(a: &buyers::TestAddress) -> Address {
    Address {
        name: Some(a.name.to_owned()),
        address_line1: Some(a.line1.to_owned()),
        address_line2: (!a.line2.is_empty()).then(|| a.line2.to_owned()),
        address_line3: None,
        city: Some(a.city.to_owned()),
        county: None,
        district: None,
        state_or_region: Some(a.state_or_region.to_owned()),
        postal_code: Some(a.postal_code.to_owned()),
        country_code: Some("JP".to_owned()),
        phone_number: Some(a.phone.to_owned()),
    }
}

/// Parsed fields of Create Checkout Session.
#[derive(Debug, Clone, Default)]
pub struct NewSession {
    pub review_return_url: String,
    pub result_return_url: Option<String>,
    pub cancel_url: Option<String>,
    pub store_id: String,
    pub charge_permission_type: Option<ChargePermissionType>,
    pub payment: PaymentUpdate,
    pub metadata: MetadataUpdate,
    pub platform_id: Option<String>,
    pub recurring: Option<RecurringMetadata>,
    /// `deliverySpecifications`, kept as given.
    pub delivery: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Default)]
pub struct PaymentUpdate {
    pub payment_intent: Option<PaymentIntent>,
    pub can_handle_pending_authorization: Option<bool>,
    pub charge_amount: Option<Money>,
    pub total_order_amount: Option<Money>,
    pub soft_descriptor: Option<String>,
    pub presentment_currency: Option<String>,
    pub extend_expiration: Option<bool>,
}

#[derive(Debug, Clone, Default)]
pub struct MetadataUpdate {
    pub merchant_reference_id: Option<String>,
    pub merchant_store_name: Option<String>,
    pub note_to_buyer: Option<String>,
    pub custom_information: Option<String>,
}

impl MetadataUpdate {
    fn apply(&self, m: &mut MerchantMetadata) {
        if let Some(v) = &self.merchant_reference_id {
            m.merchant_reference_id = Some(v.clone());
        }
        if let Some(v) = &self.merchant_store_name {
            m.merchant_store_name = Some(v.clone());
        }
        if let Some(v) = &self.note_to_buyer {
            m.note_to_buyer = Some(v.clone());
        }
        if let Some(v) = &self.custom_information {
            m.custom_information = Some(v.clone());
        }
    }
}

impl PaymentUpdate {
    fn apply(&self, p: &mut PaymentDetails) {
        if let Some(v) = &self.payment_intent {
            p.payment_intent = Some(v.clone());
        }
        if let Some(v) = self.can_handle_pending_authorization {
            p.can_handle_pending_authorization = Some(v);
        }
        if let Some(v) = self.charge_amount {
            p.charge_amount = Some(Price::from_money(v));
        }
        if let Some(v) = self.total_order_amount {
            p.total_order_amount = Some(Price::from_money(v));
        }
        if let Some(v) = &self.soft_descriptor {
            p.soft_descriptor = Some(v.clone());
        }
        if let Some(v) = &self.presentment_currency {
            p.presentment_currency = Some(v.clone());
        }
        if let Some(v) = self.extend_expiration {
            p.extend_expiration = Some(v);
        }
    }
}

/// Fields of Update Checkout Session.
#[derive(Debug, Clone, Default)]
pub struct SessionUpdate {
    pub result_return_url: Option<String>,
    pub review_return_url: Option<String>,
    pub cancel_url: Option<String>,
    pub payment: PaymentUpdate,
    pub metadata: MetadataUpdate,
    pub platform_id: Option<String>,
    pub recurring: Option<RecurringMetadata>,
}

/// Fields of Create Charge.
#[derive(Debug, Clone)]
pub struct NewCharge {
    pub charge_permission_id: String,
    pub amount: Money,
    pub capture_now: bool,
    pub can_handle_pending_authorization: bool,
    pub soft_descriptor: Option<String>,
    pub metadata: MetadataUpdate,
}

/// The most a recurring charge permission may charge in 30 days (JP: 100,000 JPY a month).
pub fn periodic_limit(currency: Currency) -> i64 {
    match currency {
        Currency::Jpy => 100_000,
        Currency::Usd | Currency::Eur | Currency::Gbp => 150_000,
    }
}

pub const PERIOD: i64 = 30 * 24 * 3600;

/// What the buyer did on Amazon's confirmation page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BuyerAction {
    Continue,
    Cancel,
}

impl World {
    pub fn new(base_url: String, ids: Arc<dyn IdSource>) -> World {
        World {
            ids,
            base_url,
            merchants: HashMap::new(),
            sessions: HashMap::new(),
            permissions: HashMap::new(),
            charges: HashMap::new(),
            armed: HashMap::new(),
            refunds: HashMap::new(),
            deadlines: BTreeSet::new(),
            changed: BTreeSet::new(),
            fired: Vec::new(),
        }
    }

    pub fn take_changed(&mut self) -> Vec<Changed> {
        std::mem::take(&mut self.changed).into_iter().collect()
    }

    fn touch(&mut self, kind: Kind, id: &str) {
        self.changed.insert(Changed {
            kind,
            id: id.to_owned(),
        });
    }

    fn schedule(&mut self, when: i64, kind: Kind, id: &str) {
        self.deadlines.insert((when, kind, id.to_owned()));
    }

    /// When Amazon would next change the object on its own, if ever.
    fn deadline_of(&self, kind: Kind, id: &str) -> Option<i64> {
        match kind {
            Kind::CheckoutSession => self
                .sessions
                .get(id)
                .filter(|s| s.cs.status_details.state == CheckoutSessionState::Open)
                .map(|s| s.expires),
            Kind::Charge => {
                let c = self.charges.get(id)?;
                match c.charge.status_details.state {
                    ChargeState::Authorized => Some(c.expires),
                    ChargeState::AuthorizationInitiated | ChargeState::CaptureInitiated => {
                        Some(c.pending_until.unwrap_or(c.created))
                    }
                    _ => None,
                }
            }
            Kind::ChargePermission => self
                .permissions
                .get(id)
                .filter(|p| p.cp.status_details.state != ChargePermissionState::Closed)
                .filter(|p| p.expires < i64::MAX)
                .map(|p| p.expires),
            Kind::Refund => self
                .refunds
                .get(id)
                .filter(|r| r.refund.status_details.state == RefundState::RefundInitiated)
                .map(|r| r.settles),
        }
    }

    /// Registers the deadlines of every record (after loading them from the database).
    pub fn restore_deadlines(&mut self) {
        let all: Vec<Changed> = self
            .sessions
            .keys()
            .map(|id| (Kind::CheckoutSession, id))
            .chain(self.charges.keys().map(|id| (Kind::Charge, id)))
            .chain(
                self.permissions
                    .keys()
                    .map(|id| (Kind::ChargePermission, id)),
            )
            .chain(self.refunds.keys().map(|id| (Kind::Refund, id)))
            .map(|(kind, id)| Changed {
                kind,
                id: id.clone(),
            })
            .collect();
        self.restore_deadlines_of(&all);
    }

    /// Registers the deadlines of the given records (after reloading them).
    pub fn restore_deadlines_of(&mut self, records: &[Changed]) {
        for r in records {
            if let Some(when) = self.deadline_of(r.kind, &r.id) {
                self.schedule(when, r.kind, &r.id);
            }
        }
    }

    /// Forgets what changed and fired since the last commit (the changes are being undone).
    pub fn discard_pending(&mut self) {
        self.changed.clear();
        self.fired.clear();
    }

    /// Makes every transition whose time has come: session expiry, pending authorizations,
    /// authorization expiry, refund settlement. Returns the objects that changed on their own
    /// (for notifications).
    pub fn settle(&mut self, now: i64) -> Vec<Changed> {
        let mut fired = Vec::new();
        while let Some(first) = self.deadlines.first().cloned() {
            if first.0 > now {
                break;
            }
            self.deadlines.remove(&first);
            let (when, kind, id) = first;
            let changed = match kind {
                Kind::CheckoutSession => self.expire_session(&id, when),
                Kind::Charge => self.settle_charge(&id, when),
                Kind::Refund => self.settle_refund(&id, when),
                Kind::ChargePermission => self.expire_permission(&id, when),
            };
            if changed {
                fired.push(Changed { kind, id });
            }
        }
        self.fired.extend(fired.iter().cloned());
        fired
    }

    pub fn take_fired(&mut self) -> Vec<Changed> {
        std::mem::take(&mut self.fired)
    }

    fn expire_session(&mut self, id: &str, when: i64) -> bool {
        let Some(rec) = self.sessions.get_mut(id) else {
            return false;
        };
        if rec.cs.status_details.state != CheckoutSessionState::Open || rec.expires > when {
            return false;
        }
        rec.cs.status_details = status(
            CheckoutSessionState::Canceled,
            Some(ReasonCode::Expired),
            Some("The checkout session expired 24 hours after it was created."),
            when,
        );
        rec.cs.web_checkout_details.amazon_pay_redirect_url = None;
        self.touch(Kind::CheckoutSession, id);
        true
    }

    fn settle_charge(&mut self, id: &str, when: i64) -> bool {
        let Some(rec) = self.charges.get_mut(id) else {
            return false;
        };
        match rec.charge.status_details.state {
            ChargeState::AuthorizationInitiated if rec.pending_until.is_some_and(|t| t <= when) => {
                rec.pending_until = None;
                if rec.pending_succeeds {
                    if rec.capture_now {
                        rec.charge.capture_amount = Some(rec.charge.charge_amount.clone());
                        rec.charge.status_details = status(ChargeState::Captured, None, None, when);
                    } else {
                        rec.charge.status_details =
                            status(ChargeState::Authorized, None, None, when);
                        rec.expires = when + AUTHORIZATION_TTL;
                        let expires = rec.expires;
                        rec.charge.expiration_timestamp = Some(timestamp(expires));
                        self.schedule(expires, Kind::Charge, id);
                    }
                } else {
                    let reason = rec
                        .pending_reason
                        .clone()
                        .unwrap_or(ReasonCode::HardDeclined);
                    rec.charge.status_details = status(
                        ChargeState::Declined,
                        Some(reason),
                        Some("The authorization was declined."),
                        when,
                    );
                }
                self.touch(Kind::Charge, id);
                true
            }
            ChargeState::CaptureInitiated if rec.pending_until.is_some_and(|t| t <= when) => {
                rec.pending_until = None;
                rec.charge.status_details = status(ChargeState::Captured, None, None, when);
                let cp_id = rec.charge.charge_permission_id.clone();
                let amount = money_of(&rec.charge.capture_amount);
                self.touch(Kind::Charge, id);
                if let Some(amount) = amount {
                    self.add_captured(&cp_id, amount, when);
                }
                true
            }
            ChargeState::Authorized if rec.expires <= when => {
                rec.charge.status_details = status(
                    ChargeState::Canceled,
                    Some(ReasonCode::ExpiredUnused),
                    Some("The authorization expired unused after 30 days."),
                    when,
                );
                self.touch(Kind::Charge, id);
                true
            }
            _ => false,
        }
    }

    fn expire_permission(&mut self, id: &str, when: i64) -> bool {
        let Some(p) = self.permissions.get_mut(id) else {
            return false;
        };
        if p.cp.status_details.state == ChargePermissionState::Closed || p.expires > when {
            return false;
        }
        p.cp.status_details = ChargePermissionStatus {
            state: ChargePermissionState::Closed,
            reasons: Some(vec![Reason {
                reason_code: ReasonCode::Expired,
                reason_description: Some("The charge permission expired after 180 days.".into()),
            }]),
            last_updated_timestamp: Some(timestamp(when)),
        };
        self.touch(Kind::ChargePermission, id);
        true
    }

    fn settle_refund(&mut self, id: &str, when: i64) -> bool {
        let Some(rec) = self.refunds.get_mut(id) else {
            return false;
        };
        if rec.refund.status_details.state != RefundState::RefundInitiated || rec.settles > when {
            return false;
        }
        if rec.declines {
            rec.refund.status_details = status(
                RefundState::Declined,
                Some(ReasonCode::AmazonRejected),
                Some("The refund was declined (simulated)."),
                when,
            );
            self.touch(Kind::Refund, id);
            return true;
        }
        rec.refund.status_details = status(RefundState::Refunded, None, None, when);
        let charge_id = rec.refund.charge_id.clone();
        let amount = money_of(&Some(rec.refund.refund_amount.clone()));
        self.touch(Kind::Refund, id);
        if let (Some(charge), Some(amount)) = (self.charges.get_mut(&charge_id), amount) {
            let before = money_of(&charge.charge.refunded_amount)
                .map(|m| m.minor())
                .unwrap_or(0);
            charge.charge.refunded_amount = Some(Price::from_money(Money::new(
                before + amount.minor(),
                amount.currency(),
            )));
            self.touch(Kind::Charge, &charge_id);
        }
        true
    }

    // ---- checkout sessions ----

    pub fn session(&self, merchant: &Merchant, id: &str) -> Result<&SessionRec, ApiError> {
        self.sessions
            .get(id)
            .filter(|s| s.merchant_id == merchant.merchant_id)
            .ok_or_else(|| ApiError::not_found("CheckoutSession", id))
    }

    pub fn create_session(
        &mut self,
        merchant: &Merchant,
        new: NewSession,
        release_environment: &str,
        now: i64,
    ) -> Result<CheckoutSession, ApiError> {
        if new.store_id != merchant.store_id {
            return Err(ApiError::invalid(
                "storeId",
                "it is not the store id of this merchant.",
            ));
        }
        let id = self.ids.uuid();
        let mut payment = PaymentDetails::default();
        new.payment.apply(&mut payment);
        let mut metadata = MerchantMetadata::default();
        new.metadata.apply(&mut metadata);
        let expires = now + CHECKOUT_SESSION_TTL;
        let cs = CheckoutSession {
            checkout_session_id: id.clone(),
            web_checkout_details: WebCheckoutDetails {
                checkout_review_return_url: Some(new.review_return_url),
                checkout_result_return_url: new.result_return_url,
                amazon_pay_redirect_url: None,
                checkout_cancel_url: new.cancel_url,
                checkout_mode: None,
            },
            product_type: Some("PayAndShip".to_owned()),
            payment_details: payment,
            charge_permission_type: Some(
                new.charge_permission_type
                    .unwrap_or(ChargePermissionType::OneTime),
            ),
            order_type: None,
            recurring_metadata: new.recurring,
            payment_method_on_file_metadata: None,
            merchant_details: None,
            merchant_metadata: metadata,
            supplementary_data: None,
            buyer: None,
            billing_address: None,
            payment_preferences: None,
            status_details: status(CheckoutSessionState::Open, None, None, now),
            shipping_address: None,
            platform_id: new.platform_id,
            charge_permission_id: None,
            charge_id: None,
            constraints: Some(Vec::new()),
            creation_timestamp: Some(timestamp(now)),
            expiration_timestamp: Some(timestamp(expires)),
            store_id: Some(new.store_id),
            provider_metadata: None,
            release_environment: Some(release_environment.to_owned()),
            checkout_button_text: None,
            delivery_specifications: new.delivery,
            tokens: None,
        };
        let mut rec = SessionRec {
            merchant_id: merchant.merchant_id.clone(),
            created: now,
            expires,
            choice: None,
            confirmed: false,
            cs,
        };
        refresh_constraints(&mut rec, &self.base_url);
        let out = rec.cs.clone();
        self.sessions.insert(id.clone(), rec);
        self.schedule(expires, Kind::CheckoutSession, &id);
        self.touch(Kind::CheckoutSession, &id);
        Ok(out)
    }

    pub fn update_session(
        &mut self,
        merchant: &Merchant,
        id: &str,
        update: SessionUpdate,
        now: i64,
    ) -> Result<CheckoutSession, ApiError> {
        self.session(merchant, id)?;
        let Some(rec) = self.sessions.get_mut(id) else {
            return Err(ApiError::not_found("CheckoutSession", id));
        };
        if rec.cs.status_details.state != CheckoutSessionState::Open {
            return Err(ApiError::unprocessable(
                ErrorCode::InvalidCheckoutSessionStatus,
                format!(
                    "The checkout session is {}; it can be updated only while Open.",
                    rec.cs.status_details.state
                ),
            ));
        }
        let w = &mut rec.cs.web_checkout_details;
        if let Some(v) = update.result_return_url {
            w.checkout_result_return_url = Some(v);
        }
        if let Some(v) = update.review_return_url {
            w.checkout_review_return_url = Some(v);
        }
        if let Some(v) = update.cancel_url {
            w.checkout_cancel_url = Some(v);
        }
        update.payment.apply(&mut rec.cs.payment_details);
        update.metadata.apply(&mut rec.cs.merchant_metadata);
        if let Some(v) = update.platform_id {
            rec.cs.platform_id = Some(v);
        }
        if let Some(v) = update.recurring {
            rec.cs.recurring_metadata = Some(v);
        }
        rec.cs.status_details.last_updated_timestamp = Some(timestamp(now));
        refresh_constraints(rec, &self.base_url);
        let out = rec.cs.clone();
        self.touch(Kind::CheckoutSession, id);
        Ok(out)
    }

    /// The buyer signs in and picks buyer, address and payment method.
    pub fn sign_in(&mut self, id: &str, choice: BuyerChoice, now: i64) -> Result<(), String> {
        let rec = open_session_mut(&mut self.sessions, id)?;
        let buyer = buyers::buyer(&choice.buyer_id).ok_or("Unknown test buyer.")?;
        let address = buyer
            .addresses
            .iter()
            .find(|a| a.id == choice.address_id)
            .ok_or("That address is not one of this buyer's.")?;
        let instrument =
            buyers::instrument(&choice.instrument_id).ok_or("Unknown payment method.")?;
        rec.cs.buyer = Some(Buyer {
            buyer_id: Some(buyer.id.to_owned()),
            name: Some(buyer.name.to_owned()),
            email: Some(buyer.email.to_owned()),
            phone_number: Some(buyer.phone.to_owned()),
            prime_membership_types: None,
        });
        rec.cs.shipping_address = Some(to_address(address));
        rec.cs.billing_address = Some(to_address(&buyer.addresses[0]));
        rec.cs.payment_preferences = Some(vec![PaymentPreference {
            payment_descriptor: Some(instrument.descriptor.to_owned()),
        }]);
        rec.cs.status_details.last_updated_timestamp = Some(timestamp(now));
        rec.choice = Some(choice);
        refresh_constraints(rec, &self.base_url);
        self.touch(Kind::CheckoutSession, id);
        Ok(())
    }

    /// The buyer leaves without paying: the session is canceled (`BuyerCanceled`).
    pub fn buyer_cancel(&mut self, id: &str, now: i64) -> Result<(), String> {
        let rec = open_session_mut(&mut self.sessions, id)?;
        rec.cs.status_details = status(
            CheckoutSessionState::Canceled,
            Some(ReasonCode::BuyerCanceled),
            Some("The buyer canceled the checkout."),
            now,
        );
        rec.cs.web_checkout_details.amazon_pay_redirect_url = None;
        self.touch(Kind::CheckoutSession, id);
        Ok(())
    }

    /// The buyer confirms on Amazon's page (the `amazonPayRedirectUrl`). Amazon runs the
    /// checks of the chosen payment method now; the charge itself is made at Complete.
    pub fn confirm(&mut self, id: &str, now: i64) -> Result<(), String> {
        let rec = open_session_mut(&mut self.sessions, id)?;
        if rec
            .cs
            .web_checkout_details
            .amazon_pay_redirect_url
            .is_none()
        {
            return Err("The merchant has not finished the checkout session yet (no payment details or return URL).".into());
        }
        self.confirm_unchecked(id, now)
    }

    /// The buyer's confirmation, without checking that the redirect URL was reached.
    fn confirm_unchecked(&mut self, id: &str, now: i64) -> Result<(), String> {
        let Some(rec) = self.sessions.get_mut(id) else {
            return Err("This checkout session does not exist.".into());
        };
        let simulation = rec
            .choice
            .as_ref()
            .and_then(|c| buyers::instrument(&c.instrument_id))
            .map(|i| i.simulation)
            .unwrap_or(Simulation::Success);
        match simulation {
            Simulation::BuyerCanceled => {
                rec.cs.status_details = status(
                    CheckoutSessionState::Canceled,
                    Some(ReasonCode::BuyerCanceled),
                    Some("The buyer canceled the checkout."),
                    now,
                );
            }
            Simulation::Declined => {
                rec.cs.status_details = status(
                    CheckoutSessionState::Canceled,
                    Some(ReasonCode::Declined),
                    Some("The payment was declined."),
                    now,
                );
            }
            _ => {
                rec.confirmed = true;
                rec.cs.status_details.last_updated_timestamp = Some(timestamp(now));
            }
        }
        self.touch(Kind::CheckoutSession, id);
        Ok(())
    }

    pub fn complete_session(
        &mut self,
        merchant: &Merchant,
        id: &str,
        charge_amount: Money,
        sim: Option<&str>,
        now: i64,
    ) -> Result<CheckoutSession, ApiError> {
        let rec = self.session(merchant, id)?.clone();
        match &rec.cs.status_details.state {
            CheckoutSessionState::Open => {}
            CheckoutSessionState::Canceled => {
                return Err(ApiError::unprocessable(
                    ErrorCode::CheckoutSessionCanceled,
                    format!(
                        "The checkout session was canceled ({}); start a new checkout.",
                        rec.cs
                            .status_details
                            .reason_code
                            .as_ref()
                            .map_or("Canceled", ReasonCode::as_str)
                    ),
                ))
            }
            other => {
                return Err(ApiError::unprocessable(
                    ErrorCode::InvalidCheckoutSessionStatus,
                    format!(
                        "The checkout session is {other}; only an Open session can be completed."
                    ),
                ))
            }
        }
        if !rec.confirmed {
            return Err(ApiError::unprocessable(
                ErrorCode::InvalidCheckoutSessionStatus,
                "The buyer has not confirmed the checkout on Amazon Pay yet.",
            ));
        }
        let expected = money_of(&rec.cs.payment_details.charge_amount);
        if expected != Some(charge_amount) {
            return Err(ApiError::new(
                axum::http::StatusCode::CONFLICT,
                ErrorCode::AmountMismatch,
                format!(
                    "chargeAmount {} does not match the checkout session's chargeAmount {}.",
                    charge_amount.to_decimal_string(),
                    expected.map(|m| m.to_decimal_string()).unwrap_or_default()
                ),
            ));
        }
        let choice = rec.choice.clone().unwrap_or_else(|| {
            let (b, a, i) = buyers::default_choice();
            BuyerChoice {
                buyer_id: b.id.into(),
                address_id: a.id.into(),
                instrument_id: i.id.into(),
            }
        });
        let intent = rec
            .cs
            .payment_details
            .payment_intent
            .clone()
            .unwrap_or(PaymentIntent::Confirm);
        let can_pend = rec
            .cs
            .payment_details
            .can_handle_pending_authorization
            .unwrap_or(false);
        let outcome = match sim.map(|code| (code, ReasonCode::parse(code))) {
            Some((
                code,
                reason @ (ReasonCode::BuyerCanceled
                | ReasonCode::AmazonCanceled
                | ReasonCode::Declined),
            )) => {
                if let Some(session) = self.sessions.get_mut(id) {
                    session.cs.status_details = status(
                        CheckoutSessionState::Canceled,
                        Some(reason),
                        Some("Simulated by x-amz-pay-simulation-code."),
                        now,
                    );
                    session.cs.web_checkout_details.amazon_pay_redirect_url = None;
                }
                self.touch(Kind::CheckoutSession, id);
                return Err(ApiError::unprocessable(
                    ErrorCode::CheckoutSessionCanceled,
                    format!("The checkout session was canceled ({code}); start a new checkout."),
                ));
            }
            Some((code, _)) if code == ChargeState::AuthorizationInitiated.as_str() => {
                ChargeOutcome::Pending { decline: None }
            }
            Some((other, _)) => return Err(unfit_simulation(other, "Complete Checkout Session")),
            None => match buyers::instrument(&choice.instrument_id).map(|i| i.simulation) {
                Some(Simulation::PendingThenAuthorized) => ChargeOutcome::Pending { decline: None },
                Some(Simulation::PendingThenDeclined) => ChargeOutcome::Pending {
                    decline: Some(ReasonCode::HardDeclined),
                },
                _ => ChargeOutcome::Now,
            },
        };
        if matches!(outcome, ChargeOutcome::Pending { .. })
            && (intent == PaymentIntent::Confirm || !can_pend)
        {
            return Err(ApiError::bad_request(
                ErrorCode::InvalidSandboxSimulationSpecified,
                "A pending authorization is simulated; it needs paymentIntent Authorize or AuthorizeWithCapture and canHandlePendingAuthorization true.",
            ));
        }
        let recurring = rec.cs.charge_permission_type == Some(ChargePermissionType::Recurring);
        let one_time_ttl = if rec.cs.payment_details.extend_expiration == Some(true) {
            EXTENDED_PERMISSION_TTL
        } else {
            ONE_TIME_PERMISSION_TTL
        };
        let cp_id = format!("P01-{}-{}", self.ids.digits(7), self.ids.digits(7));
        let cp = ChargePermission {
            charge_permission_id: cp_id.clone(),
            charge_permission_reference_id: rec.cs.merchant_metadata.merchant_reference_id.clone(),
            platform_id: rec.cs.platform_id.clone(),
            buyer: rec.cs.buyer.clone(),
            shipping_address: rec.cs.shipping_address.clone(),
            billing_address: rec.cs.billing_address.clone(),
            payment_preferences: rec.cs.payment_preferences.clone(),
            status_details: ChargePermissionStatus {
                state: ChargePermissionState::Chargeable,
                reasons: None,
                last_updated_timestamp: Some(timestamp(now)),
            },
            creation_timestamp: Some(timestamp(now)),
            expiration_timestamp: (!recurring).then(|| timestamp(now + one_time_ttl)),
            merchant_metadata: Some(rec.cs.merchant_metadata.clone()),
            release_environment: rec.cs.release_environment.clone(),
            limits: (!recurring).then(|| Limits {
                amount_limit: Some(Price::from_money(charge_amount)),
                amount_balance: Some(Price::from_money(charge_amount)),
            }),
            charge_permission_type: rec.cs.charge_permission_type.clone(),
            recurring_metadata: rec.cs.recurring_metadata.clone(),
            presentment_currency: Some(charge_amount.currency().code().to_owned()),
        };
        self.permissions.insert(
            cp_id.clone(),
            PermissionRec {
                merchant_id: merchant.merchant_id.clone(),
                created: now,
                expires: if recurring {
                    i64::MAX
                } else {
                    now + one_time_ttl
                },
                instrument_id: choice.instrument_id.clone(),
                cp,
            },
        );
        self.touch(Kind::ChargePermission, &cp_id);
        if !recurring {
            self.schedule(now + one_time_ttl, Kind::ChargePermission, &cp_id);
        }
        let charge_id = if intent == PaymentIntent::Confirm {
            None
        } else {
            let capture_now = intent == PaymentIntent::AuthorizeWithCapture;
            let charge = self.new_charge(
                merchant,
                &cp_id,
                charge_amount,
                capture_now,
                outcome,
                rec.cs.merchant_metadata.clone(),
                rec.cs.payment_details.soft_descriptor.clone(),
                now,
            );
            Some(charge)
        };
        let Some(session) = self.sessions.get_mut(id) else {
            return Err(ApiError::not_found("CheckoutSession", id));
        };
        session.cs.status_details = status(CheckoutSessionState::Completed, None, None, now);
        session.cs.charge_permission_id = Some(cp_id);
        session.cs.charge_id = charge_id;
        let out = session.cs.clone();
        self.touch(Kind::CheckoutSession, id);
        Ok(out)
    }

    #[allow(clippy::too_many_arguments)]
    fn new_charge(
        &mut self,
        merchant: &Merchant,
        cp_id: &str,
        amount: Money,
        capture_now: bool,
        outcome: ChargeOutcome,
        metadata: MerchantMetadata,
        soft_descriptor: Option<String>,
        now: i64,
    ) -> String {
        let release_environment = self
            .permissions
            .get(cp_id)
            .and_then(|p| p.cp.release_environment.clone());
        let cp_digits = cp_id.trim_start_matches("P01-").trim_start_matches("B01-");
        let charge_id = format!("S01-{cp_digits}-C{}", self.ids.digits(6));
        let (state, pending_until, pending_succeeds, pending_reason) = match outcome {
            ChargeOutcome::Pending { decline } => (
                ChargeState::AuthorizationInitiated,
                Some(now + PENDING_SETTLES_AFTER),
                decline.is_none(),
                decline,
            ),
            ChargeOutcome::Now if capture_now => (ChargeState::Captured, None, true, None),
            ChargeOutcome::Now => (ChargeState::Authorized, None, true, None),
        };
        let expires = now + AUTHORIZATION_TTL;
        let charge = Charge {
            charge_id: charge_id.clone(),
            charge_amount: Price::from_money(amount),
            charge_permission_id: cp_id.to_owned(),
            capture_amount: (state == ChargeState::Captured).then(|| Price::from_money(amount)),
            refunded_amount: None,
            soft_descriptor,
            provider_metadata: None,
            converted_amount: None,
            conversion_rate: None,
            channel: Some("Web".to_owned()),
            charge_initiator: None,
            status_details: status(state.clone(), None, None, now),
            creation_timestamp: Some(timestamp(now)),
            expiration_timestamp: Some(timestamp(expires)),
            release_environment,
            merchant_metadata: Some(metadata),
            platform_id: None,
            web_checkout_details: None,
        };
        self.charges.insert(
            charge_id.clone(),
            ChargeRec {
                merchant_id: merchant.merchant_id.clone(),
                created: now,
                expires,
                pending_until,
                pending_succeeds,
                pending_reason,
                capture_now,
                charge,
            },
        );
        if let Some(when) = pending_until {
            self.schedule(when, Kind::Charge, &charge_id);
        } else if state == ChargeState::Authorized {
            self.schedule(expires, Kind::Charge, &charge_id);
        }
        if state == ChargeState::Captured {
            self.add_captured(cp_id, amount, now);
        }
        self.touch(Kind::Charge, &charge_id);
        charge_id
    }

    fn add_captured(&mut self, cp_id: &str, amount: Money, now: i64) {
        if let Some(p) = self.permissions.get_mut(cp_id) {
            if let Some(limits) = &mut p.cp.limits {
                let balance = money_of(&limits.amount_balance)
                    .map(|m| m.minor())
                    .unwrap_or(0);
                let left = (balance - amount.minor()).max(0);
                limits.amount_balance =
                    Some(Price::from_money(Money::new(left, amount.currency())));
                // A one-time permission closes once the order total is captured.
                if left == 0 && p.cp.charge_permission_type == Some(ChargePermissionType::OneTime) {
                    p.cp.status_details = ChargePermissionStatus {
                        state: ChargePermissionState::Closed,
                        reasons: Some(vec![Reason {
                            reason_code: ReasonCode::AmazonClosed,
                            reason_description: Some("The order total was captured.".into()),
                        }]),
                        last_updated_timestamp: Some(timestamp(now)),
                    };
                }
            }
            self.touch(Kind::ChargePermission, cp_id);
        }
    }

    // ---- charge permissions, charges, refunds ----

    pub fn permission(&self, merchant: &Merchant, id: &str) -> Result<&PermissionRec, ApiError> {
        self.permissions
            .get(id)
            .filter(|p| p.merchant_id == merchant.merchant_id)
            .ok_or_else(|| ApiError::not_found("ChargePermission", id))
    }

    pub fn charge(&self, merchant: &Merchant, id: &str) -> Result<&ChargeRec, ApiError> {
        self.charges
            .get(id)
            .filter(|c| c.merchant_id == merchant.merchant_id)
            .ok_or_else(|| ApiError::not_found("Charge", id))
    }

    pub fn refund(&self, merchant: &Merchant, id: &str) -> Result<&RefundRec, ApiError> {
        self.refunds
            .get(id)
            .filter(|r| r.merchant_id == merchant.merchant_id)
            .ok_or_else(|| ApiError::not_found("Refund", id))
    }

    pub fn capture(
        &mut self,
        merchant: &Merchant,
        id: &str,
        amount: Money,
        soft_descriptor: Option<String>,
        now: i64,
    ) -> Result<Charge, ApiError> {
        let rec = self.charge(merchant, id)?;
        let state = rec.charge.status_details.state.clone();
        if state != ChargeState::Authorized {
            return Err(ApiError::unprocessable(
                ErrorCode::InvalidChargeStatus,
                format!("The charge is {state}; only an Authorized charge can be captured."),
            ));
        }
        let authorized = money_of(&Some(rec.charge.charge_amount.clone()));
        let Some(authorized) = authorized else {
            return Err(ApiError::internal("charge amount unreadable"));
        };
        if amount.currency() != authorized.currency() {
            return Err(ApiError::bad_request(
                ErrorCode::CurrencyMismatch,
                "captureAmount.currencyCode differs from the charge's currency.",
            ));
        }
        if amount.minor() > authorized.minor() {
            return Err(ApiError::bad_request(
                ErrorCode::TransactionAmountExceeded,
                format!(
                    "captureAmount {} exceeds the authorized amount {}.",
                    amount.to_decimal_string(),
                    authorized.to_decimal_string()
                ),
            ));
        }
        let cp_id = rec.charge.charge_permission_id.clone();
        let Some(rec) = self.charges.get_mut(id) else {
            return Err(ApiError::not_found("Charge", id));
        };
        rec.charge.capture_amount = Some(Price::from_money(amount));
        if soft_descriptor.is_some() {
            rec.charge.soft_descriptor = soft_descriptor;
        }
        // A capture more than 7 days after the authorization is processed asynchronously.
        let late = now - rec.created > LATE_CAPTURE_AFTER;
        if late {
            rec.pending_until = Some(now + PENDING_SETTLES_AFTER);
            rec.charge.status_details = status(ChargeState::CaptureInitiated, None, None, now);
        } else {
            rec.charge.status_details = status(ChargeState::Captured, None, None, now);
        }
        let out = rec.charge.clone();
        self.touch(Kind::Charge, id);
        if late {
            self.schedule(now + PENDING_SETTLES_AFTER, Kind::Charge, id);
        } else {
            self.add_captured(&cp_id, amount, now);
        }
        Ok(out)
    }

    pub fn cancel_charge(
        &mut self,
        merchant: &Merchant,
        id: &str,
        reason: Option<String>,
        now: i64,
    ) -> Result<Charge, ApiError> {
        let rec = self.charge(merchant, id)?;
        let state = rec.charge.status_details.state.clone();
        if !matches!(
            state,
            ChargeState::Authorized | ChargeState::AuthorizationInitiated
        ) {
            return Err(ApiError::unprocessable(
                ErrorCode::InvalidChargeStatus,
                format!("The charge is {state}; only an Authorized or AuthorizationInitiated charge can be canceled."),
            ));
        }
        let Some(rec) = self.charges.get_mut(id) else {
            return Err(ApiError::not_found("Charge", id));
        };
        rec.pending_until = None;
        rec.charge.status_details = status(
            ChargeState::Canceled,
            Some(ReasonCode::MerchantCanceled),
            Some(
                reason
                    .as_deref()
                    .unwrap_or("The merchant canceled the charge."),
            ),
            now,
        );
        let out = rec.charge.clone();
        self.touch(Kind::Charge, id);
        Ok(out)
    }

    pub fn create_refund(
        &mut self,
        merchant: &Merchant,
        charge_id: &str,
        amount: Money,
        soft_descriptor: Option<String>,
        sim: Option<&str>,
        now: i64,
    ) -> Result<Refund, ApiError> {
        let declines = match sim {
            None => false,
            Some("RefundDeclined") => true,
            Some(other) => return Err(unfit_simulation(other, "Create Refund")),
        };
        let rec = self
            .charge(merchant, charge_id)
            .map_err(|_| ApiError::not_found("Charge", charge_id))?;
        let release_environment = rec.charge.release_environment.clone();
        let state = rec.charge.status_details.state.clone();
        if state != ChargeState::Captured {
            return Err(ApiError::unprocessable(
                ErrorCode::InvalidChargeStatus,
                format!("The charge is {state}; only a Captured charge can be refunded."),
            ));
        }
        let captured = money_of(&rec.charge.capture_amount)
            .map(|m| m.minor())
            .unwrap_or(0);
        let currency = rec
            .charge
            .charge_amount
            .to_money()
            .map(|m| m.currency())
            .unwrap_or(Currency::Jpy);
        if amount.currency() != currency {
            return Err(ApiError::bad_request(
                ErrorCode::CurrencyMismatch,
                "refundAmount.currencyCode differs from the charge's currency.",
            ));
        }
        let already: i64 = self
            .refunds
            .values()
            .filter(|r| {
                r.refund.charge_id == charge_id
                    && r.refund.status_details.state != RefundState::Declined
            })
            .filter_map(|r| r.refund.refund_amount.to_money().ok())
            .map(|m| m.minor())
            .sum();
        let allowance = refund_allowance(captured, currency);
        if already + amount.minor() > captured + allowance {
            return Err(ApiError::bad_request(
                ErrorCode::TransactionAmountExceeded,
                format!(
                    "refundAmount {} would bring refunds to {} but at most {} (captured {} + {}) can be refunded.",
                    amount.to_decimal_string(),
                    Money::new(already + amount.minor(), currency).to_decimal_string(),
                    Money::new(captured + allowance, currency).to_decimal_string(),
                    Money::new(captured, currency).to_decimal_string(),
                    Money::new(allowance, currency).to_decimal_string(),
                ),
            ));
        }
        let base = charge_id
            .rsplit_once("-C")
            .map(|(b, _)| b)
            .unwrap_or(charge_id);
        let refund_id = format!("{base}-R{}", self.ids.digits(6));
        let refund = Refund {
            refund_id: refund_id.clone(),
            charge_id: charge_id.to_owned(),
            creation_timestamp: Some(timestamp(now)),
            refund_amount: Price::from_money(amount),
            status_details: status(RefundState::RefundInitiated, None, None, now),
            soft_descriptor,
            release_environment,
        };
        let settles = now + REFUND_SETTLES_AFTER;
        self.refunds.insert(
            refund_id.clone(),
            RefundRec {
                merchant_id: merchant.merchant_id.clone(),
                created: now,
                settles,
                declines,
                refund: refund.clone(),
            },
        );
        self.schedule(settles, Kind::Refund, &refund_id);
        self.touch(Kind::Refund, &refund_id);
        Ok(refund)
    }
}

impl World {
    pub fn create_charge(
        &mut self,
        merchant: &Merchant,
        new: NewCharge,
        sim: Option<&str>,
        now: i64,
    ) -> Result<Charge, ApiError> {
        let armed = self.armed.remove(&new.charge_permission_id);
        let sim = sim.or(armed.as_deref());
        let p = self
            .permission(merchant, &new.charge_permission_id)?
            .clone();
        if p.cp.status_details.state != ChargePermissionState::Chargeable {
            return Err(ApiError::unprocessable(
                ErrorCode::InvalidChargePermissionStatus,
                format!(
                    "The charge permission is {}; only a Chargeable one can be charged.",
                    p.cp.status_details.state
                ),
            ));
        }
        let currency = new.amount.currency();
        let live: Vec<&ChargeRec> = self
            .charges
            .values()
            .filter(|c| c.charge.charge_permission_id == new.charge_permission_id)
            .filter(|c| {
                matches!(
                    c.charge.status_details.state,
                    ChargeState::Authorized
                        | ChargeState::AuthorizationInitiated
                        | ChargeState::CaptureInitiated
                        | ChargeState::Captured
                )
            })
            .collect();
        if p.cp.charge_permission_type == Some(ChargePermissionType::Recurring) {
            let used: i64 = live
                .iter()
                .filter(|c| now - c.created < PERIOD)
                .filter_map(|c| c.charge.charge_amount.to_money().ok())
                .map(|m| m.minor())
                .sum();
            let limit = periodic_limit(currency);
            if used + new.amount.minor() > limit {
                return Err(ApiError::bad_request(
                    ErrorCode::PeriodicAmountExceeded,
                    format!(
                        "Charges of {} in the last 30 days plus chargeAmount {} exceed the limit of {} {} per period.",
                        Money::new(used, currency).to_decimal_string(),
                        new.amount.to_decimal_string(),
                        Money::new(limit, currency).to_decimal_string(),
                        currency.code()
                    ),
                ));
            }
        } else {
            let count = self
                .charges
                .values()
                .filter(|c| c.charge.charge_permission_id == new.charge_permission_id)
                .count();
            if count >= 25 {
                return Err(ApiError::unprocessable(
                    ErrorCode::TransactionCountExceeded,
                    "A one-time charge permission allows at most 25 charges.",
                ));
            }
            let balance =
                p.cp.limits
                    .as_ref()
                    .and_then(|l| money_of(&l.amount_balance))
                    .map(|m| m.minor())
                    .unwrap_or(0);
            let pending: i64 = live
                .iter()
                .filter(|c| c.charge.status_details.state != ChargeState::Captured)
                .filter_map(|c| c.charge.charge_amount.to_money().ok())
                .map(|m| m.minor())
                .sum();
            if new.amount.minor() > balance - pending {
                return Err(ApiError::bad_request(
                    ErrorCode::TransactionAmountExceeded,
                    format!(
                        "chargeAmount {} exceeds what is left of the charge permission ({}).",
                        new.amount.to_decimal_string(),
                        Money::new((balance - pending).max(0), currency).to_decimal_string()
                    ),
                ));
            }
        }
        let can_pend = new.can_handle_pending_authorization;
        let outcome = match sim {
            Some(code) => match simulated_decline(code) {
                Some((reason, _, _)) if can_pend => ChargeOutcome::Pending {
                    decline: Some(reason),
                },
                Some((reason, error, status)) => {
                    return Err(ApiError::new(
                        axum::http::StatusCode::from_u16(status)
                            .unwrap_or(axum::http::StatusCode::UNPROCESSABLE_ENTITY),
                        error,
                        format!("The authorization was declined ({reason}, simulated)."),
                    ))
                }
                None if code == ChargeState::AuthorizationInitiated.as_str() => {
                    ChargeOutcome::Pending { decline: None }
                }
                None => return Err(unfit_simulation(code, "Create Charge")),
            },
            None => match buyers::instrument(&p.instrument_id).map(|i| i.simulation) {
                Some(Simulation::PendingThenAuthorized) => ChargeOutcome::Pending { decline: None },
                Some(Simulation::PendingThenDeclined) => ChargeOutcome::Pending {
                    decline: Some(ReasonCode::HardDeclined),
                },
                _ => ChargeOutcome::Now,
            },
        };
        if matches!(outcome, ChargeOutcome::Pending { .. }) && !can_pend {
            return Err(ApiError::bad_request(
                ErrorCode::InvalidSandboxSimulationSpecified,
                "A pending authorization is simulated; it needs canHandlePendingAuthorization true.",
            ));
        }
        let mut metadata = p.cp.merchant_metadata.clone().unwrap_or_default();
        new.metadata.apply(&mut metadata);
        let charge_id = self.new_charge(
            merchant,
            &new.charge_permission_id,
            new.amount,
            new.capture_now,
            outcome,
            metadata,
            new.soft_descriptor,
            now,
        );
        self.charges
            .get(&charge_id)
            .map(|c| c.charge.clone())
            .ok_or_else(|| ApiError::internal("charge vanished"))
    }

    /// Test helper: the next Create Charge on `charge_permission_id` behaves as if it carried the
    /// simulation code `code`.
    pub fn arm_simulation(
        &mut self,
        charge_permission_id: &str,
        code: &str,
    ) -> Result<(), ApiError> {
        if !self.permissions.contains_key(charge_permission_id) {
            return Err(ApiError::not_found(
                "ChargePermission",
                charge_permission_id,
            ));
        }
        if simulated_decline(code).is_none() && code != ChargeState::AuthorizationInitiated.as_str()
        {
            return Err(unfit_simulation(code, "Create Charge"));
        }
        self.armed
            .insert(charge_permission_id.to_owned(), code.to_owned());
        Ok(())
    }

    pub fn update_permission(
        &mut self,
        merchant: &Merchant,
        id: &str,
        metadata: MetadataUpdate,
        recurring: Option<RecurringMetadata>,
        now: i64,
    ) -> Result<ChargePermission, ApiError> {
        let p = self.permission(merchant, id)?;
        if p.cp.status_details.state == ChargePermissionState::Closed {
            return Err(ApiError::unprocessable(
                ErrorCode::ChargePermissionNotModifiable,
                "The charge permission is Closed and cannot be modified.",
            ));
        }
        if recurring.is_some()
            && p.cp.charge_permission_type != Some(ChargePermissionType::Recurring)
        {
            return Err(ApiError::bad_request(
                ErrorCode::InvalidParameterCombination,
                "recurringMetadata can be updated only on a Recurring charge permission.",
            ));
        }
        let Some(p) = self.permissions.get_mut(id) else {
            return Err(ApiError::not_found("ChargePermission", id));
        };
        let mut m = p.cp.merchant_metadata.clone().unwrap_or_default();
        metadata.apply(&mut m);
        p.cp.merchant_metadata = Some(m);
        if let Some(r) = recurring {
            p.cp.recurring_metadata = Some(r);
        }
        p.cp.status_details.last_updated_timestamp = Some(timestamp(now));
        let out = p.cp.clone();
        self.touch(Kind::ChargePermission, id);
        Ok(out)
    }

    pub fn close_permission(
        &mut self,
        merchant: &Merchant,
        id: &str,
        reason: String,
        cancel_pending: bool,
        now: i64,
    ) -> Result<ChargePermission, ApiError> {
        let p = self.permission(merchant, id)?;
        if p.cp.status_details.state == ChargePermissionState::Closed {
            return Err(ApiError::unprocessable(
                ErrorCode::InvalidChargePermissionStatus,
                "The charge permission is already Closed.",
            ));
        }
        if cancel_pending {
            let open: Vec<String> = self
                .charges
                .iter()
                .filter(|(_, c)| c.charge.charge_permission_id == id)
                .filter(|(_, c)| {
                    matches!(
                        c.charge.status_details.state,
                        ChargeState::Authorized | ChargeState::AuthorizationInitiated
                    )
                })
                .map(|(cid, _)| cid.clone())
                .collect();
            for cid in open {
                if let Some(c) = self.charges.get_mut(&cid) {
                    c.pending_until = None;
                    c.charge.status_details = status(
                        ChargeState::Canceled,
                        Some(ReasonCode::ChargePermissionCanceled),
                        Some("The charge permission was closed."),
                        now,
                    );
                }
                self.touch(Kind::Charge, &cid);
            }
        }
        let Some(p) = self.permissions.get_mut(id) else {
            return Err(ApiError::not_found("ChargePermission", id));
        };
        p.cp.status_details = ChargePermissionStatus {
            state: ChargePermissionState::Closed,
            reasons: Some(vec![Reason {
                reason_code: ReasonCode::MerchantClosed,
                reason_description: Some(reason),
            }]),
            last_updated_timestamp: Some(timestamp(now)),
        };
        let out = p.cp.clone();
        self.touch(Kind::ChargePermission, id);
        Ok(out)
    }
}

impl World {
    /// Finalize (Buy Now): the merchant supplies the payment details after the buyer signed in,
    /// and the session is completed in the same call.
    #[allow(clippy::too_many_arguments)]
    pub fn finalize_session(
        &mut self,
        merchant: &Merchant,
        id: &str,
        intent: PaymentIntent,
        amount: Money,
        can_pend: Option<bool>,
        sim: Option<&str>,
        now: i64,
    ) -> Result<CheckoutSession, ApiError> {
        let rec = self.session(merchant, id)?;
        if rec.cs.status_details.state == CheckoutSessionState::Open && rec.choice.is_none() {
            return Err(ApiError::unprocessable(
                ErrorCode::InvalidCheckoutSessionStatus,
                "The buyer has not signed in to this checkout session yet.",
            ));
        }
        if rec.cs.status_details.state == CheckoutSessionState::Open {
            if let Some(session) = self.sessions.get_mut(id) {
                let p = &mut session.cs.payment_details;
                p.payment_intent = Some(intent);
                p.charge_amount = Some(Price::from_money(amount));
                if can_pend.is_some() {
                    p.can_handle_pending_authorization = can_pend;
                }
            }
            if let Err(message) = self.confirm_unchecked(id, now) {
                return Err(ApiError::unprocessable(
                    ErrorCode::InvalidCheckoutSessionStatus,
                    message,
                ));
            }
        }
        self.complete_session(merchant, id, amount, sim, now)
    }

    /// PSP-only Update Charge: `{"statusDetails":{"state":"Canceled","reasonCode":"ExpiredUnused"}}`.
    pub fn expire_charge(
        &mut self,
        merchant: &Merchant,
        id: &str,
        now: i64,
    ) -> Result<Charge, ApiError> {
        let rec = self.charge(merchant, id)?;
        if rec.charge.status_details.state != ChargeState::Authorized {
            return Err(ApiError::unprocessable(
                ErrorCode::InvalidChargeStatus,
                format!(
                    "The charge is {}; only an Authorized charge can be marked ExpiredUnused.",
                    rec.charge.status_details.state
                ),
            ));
        }
        let Some(rec) = self.charges.get_mut(id) else {
            return Err(ApiError::not_found("Charge", id));
        };
        rec.charge.status_details = status(
            ChargeState::Canceled,
            Some(ReasonCode::ExpiredUnused),
            Some("Marked expired by the payment service provider."),
            now,
        );
        let out = rec.charge.clone();
        self.touch(Kind::Charge, id);
        Ok(out)
    }
}

/// `400 InvalidSandboxSimulationSpecified` for a code the operation does not simulate.
pub fn unfit_simulation(code: &str, operation: &str) -> ApiError {
    ApiError::bad_request(
        ErrorCode::InvalidSandboxSimulationSpecified,
        format!("The simulation code {code} cannot be used with {operation}."),
    )
}

/// How far refunds may exceed the capture: min(15 %, 8,400 JPY or 75 USD/EUR/GBP).
pub fn refund_allowance(captured_minor: i64, currency: Currency) -> i64 {
    let cap = match currency {
        Currency::Jpy => 8_400,
        Currency::Usd | Currency::Eur | Currency::Gbp => 7_500,
    };
    (captured_minor * 15 / 100).min(cap)
}

/// The session a buyer acts on, which must still be `Open`.
fn open_session_mut<'a>(
    sessions: &'a mut HashMap<String, SessionRec>,
    id: &str,
) -> Result<&'a mut SessionRec, String> {
    let rec = sessions
        .get_mut(id)
        .ok_or("This checkout session does not exist.")?;
    if rec.cs.status_details.state != CheckoutSessionState::Open {
        return Err(format!(
            "This checkout session is {} and cannot be used any more.",
            rec.cs.status_details.state
        ));
    }
    Ok(rec)
}

/// `constraints` lists what is missing before the buyer can be sent to `amazonPayRedirectUrl`.
fn refresh_constraints(rec: &mut SessionRec, base_url: &str) {
    let mut c = Vec::new();
    if rec.choice.is_none() {
        c.push(Constraint {
            constraint_id: "BuyerNotAssociated".into(),
            description: "The buyer has not signed in yet.".into(),
        });
    }
    if rec
        .cs
        .web_checkout_details
        .checkout_result_return_url
        .is_none()
    {
        c.push(Constraint {
            constraint_id: "CheckoutResultReturnUrlNotSet".into(),
            description: "checkoutResultReturnUrl is not set.".into(),
        });
    }
    if rec.cs.payment_details.charge_amount.is_none() {
        c.push(Constraint {
            constraint_id: "ChargeAmountNotSet".into(),
            description: "paymentDetails.chargeAmount is not set.".into(),
        });
    }
    if rec.cs.payment_details.payment_intent.is_none() {
        c.push(Constraint {
            constraint_id: "PaymentIntentNotSet".into(),
            description: "paymentDetails.paymentIntent is not set.".into(),
        });
    }
    let ready = c.is_empty() && rec.cs.status_details.state == CheckoutSessionState::Open;
    rec.cs.constraints = Some(c);
    rec.cs.web_checkout_details.amazon_pay_redirect_url = ready.then(|| {
        format!(
            "{base_url}/checkout/confirm?amazonCheckoutSessionId={}",
            rec.cs.checkout_session_id
        )
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refund_allowance_is_fifteen_percent_capped() {
        assert_eq!(refund_allowance(10_000, Currency::Jpy), 1_500);
        assert_eq!(refund_allowance(1_000_000, Currency::Jpy), 8_400);
        assert_eq!(refund_allowance(100_000, Currency::Usd), 7_500);
    }

    #[test]
    fn timestamps_are_compact_utc() {
        assert_eq!(timestamp(1_563_119_580), "20190714T155300Z");
    }
}
