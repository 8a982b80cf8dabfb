//! Charge permissions: the buyer's consent to be charged, one-time (with a balance, closing
//! once the order total is captured or after 180 days) or recurring (with a monthly limit).

use super::buyer::BuyerChoice;
use super::charge::ChargeState;
use super::ids::{currency, opt_money, MerchantId, PermissionId};
use super::session::ProductType;
use super::{Action, Engine, EngineError, Environment, Kind, Merchant, Metadata, Object};
use kessai_core::{Currency, Money};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PermissionKind {
    OneTime,
    Recurring,
    PaymentMethodOnFile,
}

/// Why a charge permission closed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CloseReason {
    /// A one-time permission ran out of time.
    Expired,
    /// A one-time permission's order total was captured.
    OrderCaptured,
    /// The merchant closed it, saying why.
    Merchant(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PermissionState {
    Chargeable,
    Closed(CloseReason),
}

impl PermissionState {
    pub fn name(&self) -> &'static str {
        match self {
            PermissionState::Chargeable => "Chargeable",
            PermissionState::Closed(_) => "Closed",
        }
    }
}

/// How often a recurring consent is charged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum FrequencyUnit {
    Year,
    Month,
    Week,
    Day,
    Variable,
}

impl FrequencyUnit {
    pub const ALL: [FrequencyUnit; 5] = [
        FrequencyUnit::Year,
        FrequencyUnit::Month,
        FrequencyUnit::Week,
        FrequencyUnit::Day,
        FrequencyUnit::Variable,
    ];

    pub fn name(self) -> &'static str {
        match self {
            FrequencyUnit::Year => "Year",
            FrequencyUnit::Month => "Month",
            FrequencyUnit::Week => "Week",
            FrequencyUnit::Day => "Day",
            FrequencyUnit::Variable => "Variable",
        }
    }
}

/// What the merchant tells the buyer about a recurring consent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recurring {
    /// Unit and count (digits, as given).
    pub frequency: Option<(FrequencyUnit, String)>,
    #[serde(with = "opt_money")]
    pub amount: Option<Money>,
}

/// The most a recurring charge permission may charge in 30 days (JP: 100,000 JPY a month).
pub fn periodic_limit(currency: Currency) -> i64 {
    match currency {
        Currency::Jpy => 100_000,
        Currency::Usd | Currency::Eur | Currency::Gbp => 150_000,
    }
}

pub(super) struct NewPermission {
    pub id: PermissionId,
    pub merchant_id: MerchantId,
    pub created: i64,
    pub expires: Option<i64>,
    pub kind: PermissionKind,
    pub reference_id: Option<String>,
    pub platform_id: Option<String>,
    pub choice: Option<BuyerChoice>,
    pub instrument_id: String,
    pub metadata: Metadata,
    pub environment: Environment,
    pub product: ProductType,
    pub limit: Option<Money>,
    pub recurring: Option<Recurring>,
    pub currency: Currency,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Permission {
    id: PermissionId,
    merchant_id: MerchantId,
    created: i64,
    /// `None`: never (recurring).
    expires: Option<i64>,
    kind: PermissionKind,
    state: PermissionState,
    updated: i64,
    reference_id: Option<String>,
    platform_id: Option<String>,
    /// The buyer's choices on the sign-in page, if they signed in.
    choice: Option<BuyerChoice>,
    /// The payment method charged.
    instrument_id: String,
    metadata: Metadata,
    environment: Environment,
    /// Records written before it existed read as `PayAndShip`.
    #[serde(default)]
    product: ProductType,
    #[serde(with = "opt_money")]
    limit: Option<Money>,
    #[serde(with = "opt_money")]
    balance: Option<Money>,
    recurring: Option<Recurring>,
    #[serde(with = "currency")]
    currency: Currency,
}

impl Permission {
    pub(super) fn new(n: NewPermission) -> Permission {
        Permission {
            id: n.id,
            merchant_id: n.merchant_id,
            created: n.created,
            expires: n.expires,
            kind: n.kind,
            state: PermissionState::Chargeable,
            updated: n.created,
            reference_id: n.reference_id,
            platform_id: n.platform_id,
            choice: n.choice,
            instrument_id: n.instrument_id,
            metadata: n.metadata,
            environment: n.environment,
            product: n.product,
            limit: n.limit,
            balance: n.limit,
            recurring: n.recurring,
            currency: n.currency,
        }
    }

    pub fn id(&self) -> &PermissionId {
        &self.id
    }
    pub fn product(&self) -> ProductType {
        self.product
    }
    pub fn merchant_id(&self) -> &MerchantId {
        &self.merchant_id
    }
    pub fn created(&self) -> i64 {
        self.created
    }
    pub fn expires(&self) -> Option<i64> {
        self.expires
    }
    pub fn kind(&self) -> PermissionKind {
        self.kind
    }
    pub fn state(&self) -> &PermissionState {
        &self.state
    }
    pub fn updated(&self) -> i64 {
        self.updated
    }
    pub fn reference_id(&self) -> Option<&str> {
        self.reference_id.as_deref()
    }
    pub fn platform_id(&self) -> Option<&str> {
        self.platform_id.as_deref()
    }
    pub fn choice(&self) -> Option<&BuyerChoice> {
        self.choice.as_ref()
    }
    pub fn instrument_id(&self) -> &str {
        &self.instrument_id
    }
    pub fn metadata(&self) -> &Metadata {
        &self.metadata
    }
    pub fn environment(&self) -> Environment {
        self.environment
    }
    /// The order total a one-time permission allows, and what is left of it.
    pub fn limit(&self) -> Option<Money> {
        self.limit
    }
    pub fn balance(&self) -> Option<Money> {
        self.balance
    }
    pub fn recurring(&self) -> Option<&Recurring> {
        self.recurring.as_ref()
    }
    pub fn currency(&self) -> Currency {
        self.currency
    }

    pub(super) fn deadline(&self) -> Option<i64> {
        match self.state {
            PermissionState::Closed(_) => None,
            PermissionState::Chargeable => self.expires,
        }
    }

    fn is_closed(&self) -> bool {
        matches!(self.state, PermissionState::Closed(_))
    }
}

impl Engine {
    fn permission_mut(
        &mut self,
        merchant: &Merchant,
        id: &PermissionId,
    ) -> Result<&mut Permission, EngineError> {
        self.permissions
            .get_mut(id)
            .filter(|p| p.merchant_id() == merchant.id())
            .ok_or_else(|| EngineError::NotFound {
                object: Object::ChargePermission,
                id: id.as_str().to_owned(),
            })
    }

    pub fn update_permission(
        &mut self,
        merchant: &Merchant,
        id: &PermissionId,
        metadata: Metadata,
        recurring: Option<Recurring>,
        now: i64,
    ) -> Result<&Permission, EngineError> {
        let p = self.permission_mut(merchant, id)?;
        if p.is_closed() {
            return Err(EngineError::NotModifiable);
        }
        if recurring.is_some() && p.kind != PermissionKind::Recurring {
            return Err(EngineError::RecurringOnly);
        }
        p.metadata.merge(&metadata);
        if let Some(r) = recurring {
            p.recurring = Some(r);
        }
        p.updated = now;
        self.touch(Kind::ChargePermission, id.as_str());
        self.permission(merchant, id)
    }

    pub fn close_permission(
        &mut self,
        merchant: &Merchant,
        id: &PermissionId,
        reason: String,
        cancel_pending: bool,
        now: i64,
    ) -> Result<&Permission, EngineError> {
        if self.permission(merchant, id)?.is_closed() {
            return Err(EngineError::InvalidState {
                object: Object::ChargePermission,
                state: "Closed",
                action: Action::ClosePermission,
            });
        }
        if cancel_pending {
            self.cancel_open_charges(id, now);
        }
        let p = self.permission_mut(merchant, id)?;
        p.state = PermissionState::Closed(CloseReason::Merchant(reason));
        p.updated = now;
        self.touch(Kind::ChargePermission, id.as_str());
        self.permission(merchant, id)
    }

    pub(super) fn expire_permission(&mut self, id: &PermissionId, when: i64) -> bool {
        let Some(p) = self.permissions.get_mut(id) else {
            return false;
        };
        if p.is_closed() || p.expires.is_none_or(|e| e > when) {
            return false;
        }
        p.state = PermissionState::Closed(CloseReason::Expired);
        p.updated = when;
        self.touch(Kind::ChargePermission, id.as_str());
        true
    }

    /// A capture of `amount` lowers a one-time permission's balance; it closes once the order
    /// total is captured.
    pub(super) fn add_captured(&mut self, id: &PermissionId, amount: Money, now: i64) {
        let Some(p) = self.permissions.get_mut(id) else {
            return;
        };
        if let Some(balance) = p.balance {
            let left = (balance.minor() - amount.minor()).max(0);
            p.balance = Some(Money::new(left, amount.currency()));
            if left == 0 && p.kind == PermissionKind::OneTime {
                p.state = PermissionState::Closed(CloseReason::OrderCaptured);
                p.updated = now;
            }
        }
        self.touch(Kind::ChargePermission, id.as_str());
    }

    /// The charges made on a permission.
    pub(super) fn charges_of<'a>(
        &'a self,
        id: &'a PermissionId,
    ) -> impl Iterator<Item = &'a super::Charge> + 'a {
        self.charges
            .values()
            .filter(move |c| c.permission_id() == id)
    }

    /// Whether a charge still counts against its permission (not canceled or declined).
    pub(super) fn counts(state: &ChargeState) -> bool {
        matches!(
            state,
            ChargeState::AuthorizationInitiated { .. }
                | ChargeState::Authorized
                | ChargeState::CaptureInitiated { .. }
                | ChargeState::Captured
        )
    }
}
