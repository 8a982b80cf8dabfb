//! The emulator's engine: Amazon Pay's objects and rules, in no protocol's words.
//!
//! Its records (checkout sessions, charge permissions, charges, refunds) are its own types, with
//! private fields, typed ids and [`Money`] amounts; a refusal is an [`EngineError`]. The faces
//! (`v2`) read requests into engine calls and render its records and refusals in their own wire
//! format. Time is always passed in (the emulator's clock) and every id comes from the injected
//! [`IdSource`]; [`Engine::settle`] makes the transitions Amazon makes on its own once their time
//! has come. Each operation notes the records it changed ([`Engine::take_changed`]) so the caller
//! writes them, with the notifications of what fired, in one transaction before it answers.

pub mod agreements;
pub mod buyer;
pub mod charge;
pub mod clock;
pub mod error;
pub mod ids;
pub mod permission;
pub mod refund;
pub mod session;
pub mod simulation;
mod timers;

pub use buyer::BuyerChoice;
pub use charge::{Charge, ChargeState, Decline};
pub use error::{Action, AmountOf, EngineError, Object};
pub use ids::{ChargeId, MerchantId, PermissionId, RefundId, SessionId};
pub use permission::{Permission, PermissionKind, PermissionState};
pub use refund::{Refund, RefundState};
pub use session::{CancelReason, Intent, ProductType, Session, SessionState};
pub use simulation::Simulated;

use kessai_core::{Currency, IdSource};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

/// A merchant registered with the emulator.
#[derive(Debug, Clone)]
pub struct Merchant {
    id: MerchantId,
    store_id: String,
    region: String,
    currency: Currency,
}

impl Merchant {
    pub fn new(id: MerchantId, store_id: String, region: String, currency: Currency) -> Merchant {
        Merchant {
            id,
            store_id,
            region,
            currency,
        }
    }

    pub fn id(&self) -> &MerchantId {
        &self.id
    }

    pub fn store_id(&self) -> &str {
        &self.store_id
    }

    pub fn region(&self) -> &str {
        &self.region
    }

    /// The merchant's ledger currency.
    pub fn currency(&self) -> Currency {
        self.currency
    }
}

/// Whether an object belongs to Amazon's sandbox or to live payments.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Environment {
    Sandbox,
    Live,
}

impl Environment {
    pub fn name(self) -> &'static str {
        match self {
            Environment::Sandbox => "Sandbox",
            Environment::Live => "Live",
        }
    }
}

/// The merchant's own notes on an order, kept as given.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metadata {
    pub reference_id: Option<String>,
    pub store_name: Option<String>,
    pub note_to_buyer: Option<String>,
    pub custom_information: Option<String>,
}

impl Metadata {
    /// Sets the fields `update` gives, keeps the others.
    pub fn merge(&mut self, update: &Metadata) {
        let pairs = [
            (&mut self.reference_id, &update.reference_id),
            (&mut self.store_name, &update.store_name),
            (&mut self.note_to_buyer, &update.note_to_buyer),
            (&mut self.custom_information, &update.custom_information),
        ];
        for (field, new) in pairs {
            if let Some(v) = new {
                *field = Some(v.clone());
            }
        }
    }
}

/// Which kind of object a record is (its table in the emulator's file).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    CheckoutSession,
    ChargePermission,
    Charge,
    Refund,
}

impl Kind {
    pub const ALL: [Kind; 4] = [
        Kind::CheckoutSession,
        Kind::ChargePermission,
        Kind::Charge,
        Kind::Refund,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::CheckoutSession => "checkoutSession",
            Kind::ChargePermission => "chargePermission",
            Kind::Charge => "charge",
            Kind::Refund => "refund",
        }
    }

    pub fn parse(text: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == text)
    }
}

/// A changed record, to be written before the answer is sent.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Changed {
    pub kind: Kind,
    pub id: String,
}

/// A record as the emulator's file keeps it.
#[derive(Debug, Clone)]
pub struct StoredRecord {
    pub kind: Kind,
    pub id: String,
    pub merchant_id: String,
    /// The object it belongs to: a charge's permission, a refund's charge.
    pub parent_id: Option<String>,
    /// When Amazon would next change it on its own; `None` once nothing will.
    pub deadline: Option<i64>,
    pub json: String,
}

/// Why a stored record cannot be read or written.
#[derive(Debug, thiserror::Error)]
#[error("stored record {kind}/{id}: {detail}")]
pub struct RecordError {
    pub kind: &'static str,
    pub id: String,
    pub detail: String,
}

/// What a notification reports: an object that changed on its own.
#[derive(Debug, Clone)]
pub struct Notice {
    pub merchant_id: MerchantId,
    pub kind: Kind,
    pub object_id: String,
    /// The charge permission the object belongs to.
    pub permission_id: PermissionId,
}

/// The stored records an operation needs in the engine's working set: the object it names and
/// the objects its rules read with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fetch {
    /// The session.
    Session(SessionId),
    /// The charge permission and its charges (limits, counts, closing).
    Permission(PermissionId),
    /// The charge, its charge permission (balance) and its refunds (how much is left).
    Charge(ChargeId),
    /// The refund and its charge.
    Refund(RefundId),
}

/// The engine's working set: the records one operation (or one settling of due transitions)
/// reads and changes, loaded from the emulator's file for it and let go after it is written
/// ([`Engine::evict`]); and what changed since the last commit.
#[derive(Debug)]
pub struct Engine {
    /// Where every new id comes from (seeded in tests, so runs repeat).
    ids: Arc<dyn IdSource>,
    sessions: HashMap<SessionId, Session>,
    permissions: HashMap<PermissionId, Permission>,
    charges: HashMap<ChargeId, Charge>,
    refunds: HashMap<RefundId, Refund>,
    /// `(when, kind, id)` of every future transition Amazon makes on its own.
    deadlines: BTreeSet<(i64, Kind, String)>,
    changed: BTreeSet<Changed>,
    /// Objects that changed on their own since the last [`Engine::take_fired`].
    fired: Vec<Changed>,
    /// Test helper: a simulated outcome for the next charge on a charge permission (for a
    /// caller that cannot ask for the simulation itself). Kept in memory only.
    armed: HashMap<PermissionId, Simulated>,
}

impl Engine {
    pub fn new(ids: Arc<dyn IdSource>) -> Engine {
        Engine {
            ids,
            sessions: HashMap::new(),
            permissions: HashMap::new(),
            charges: HashMap::new(),
            refunds: HashMap::new(),
            deadlines: BTreeSet::new(),
            changed: BTreeSet::new(),
            fired: Vec::new(),
            armed: HashMap::new(),
        }
    }

    pub fn take_changed(&mut self) -> Vec<Changed> {
        std::mem::take(&mut self.changed).into_iter().collect()
    }

    pub fn take_fired(&mut self) -> Vec<Changed> {
        std::mem::take(&mut self.fired)
    }

    /// Forgets what changed and fired since the last commit (the changes are being undone).
    pub fn discard_pending(&mut self) {
        self.changed.clear();
        self.fired.clear();
    }

    /// Lets go of every record (they are in the file, or their change was undone).
    pub fn evict(&mut self) {
        self.sessions.clear();
        self.permissions.clear();
        self.charges.clear();
        self.refunds.clear();
        self.deadlines.clear();
    }

    /// How many records the working set holds.
    pub fn held(&self) -> usize {
        self.sessions.len() + self.permissions.len() + self.charges.len() + self.refunds.len()
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

    /// The record as the file keeps it, if the engine holds it.
    pub fn stored(&self, changed: &Changed) -> Result<Option<StoredRecord>, RecordError> {
        let id = changed.id.as_str();
        let row =
            |merchant: &MerchantId, parent: Option<&str>, json: serde_json::Result<String>| {
                json.map(|json| StoredRecord {
                    kind: changed.kind,
                    id: id.to_owned(),
                    merchant_id: merchant.as_str().to_owned(),
                    parent_id: parent.map(str::to_owned),
                    deadline: self.deadline_of(changed.kind, id),
                    json,
                })
                .map_err(|e| RecordError {
                    kind: changed.kind.as_str(),
                    id: id.to_owned(),
                    detail: e.to_string(),
                })
            };
        let found = match changed.kind {
            Kind::CheckoutSession => self
                .sessions
                .get(&SessionId::new(id))
                .map(|r| row(r.merchant_id(), None, serde_json::to_string(r))),
            Kind::ChargePermission => self
                .permissions
                .get(&PermissionId::new(id))
                .map(|r| row(r.merchant_id(), None, serde_json::to_string(r))),
            Kind::Charge => self.charges.get(&ChargeId::new(id)).map(|r| {
                row(
                    r.merchant_id(),
                    Some(r.permission_id().as_str()),
                    serde_json::to_string(r),
                )
            }),
            Kind::Refund => self.refunds.get(&RefundId::new(id)).map(|r| {
                row(
                    r.merchant_id(),
                    Some(r.charge_id().as_str()),
                    serde_json::to_string(r),
                )
            }),
        };
        found.transpose()
    }

    /// Puts a record read from the file into the engine (replacing what it held) and registers
    /// its deadline.
    pub fn put(&mut self, kind: Kind, id: &str, json: &str) -> Result<(), RecordError> {
        let corrupt = |e: serde_json::Error| RecordError {
            kind: kind.as_str(),
            id: id.to_owned(),
            detail: e.to_string(),
        };
        match kind {
            Kind::CheckoutSession => {
                let rec: Session = serde_json::from_str(json).map_err(corrupt)?;
                self.sessions.insert(rec.id().clone(), rec);
            }
            Kind::ChargePermission => {
                let rec: Permission = serde_json::from_str(json).map_err(corrupt)?;
                self.permissions.insert(rec.id().clone(), rec);
            }
            Kind::Charge => {
                let rec: Charge = serde_json::from_str(json).map_err(corrupt)?;
                self.charges.insert(rec.id().clone(), rec);
            }
            Kind::Refund => {
                let rec: Refund = serde_json::from_str(json).map_err(corrupt)?;
                self.refunds.insert(rec.id().clone(), rec);
            }
        }
        if let Some(when) = self.deadline_of(kind, id) {
            self.schedule(when, kind, id);
        }
        Ok(())
    }

    /// Forgets a record (the file does not have it).
    pub fn remove(&mut self, kind: Kind, id: &str) {
        match kind {
            Kind::CheckoutSession => {
                self.sessions.remove(&SessionId::new(id));
            }
            Kind::ChargePermission => {
                self.permissions.remove(&PermissionId::new(id));
            }
            Kind::Charge => {
                self.charges.remove(&ChargeId::new(id));
            }
            Kind::Refund => {
                self.refunds.remove(&RefundId::new(id));
            }
        }
    }

    /// What a notification of `changed` reports, or `None` if Amazon sends none for it.
    pub fn notice(&self, changed: &Changed) -> Option<Notice> {
        let (merchant, permission) = match changed.kind {
            Kind::Charge => {
                let c = self.charges.get(&ChargeId::new(changed.id.as_str()))?;
                (c.merchant_id().clone(), c.permission_id().clone())
            }
            Kind::Refund => {
                let r = self.refunds.get(&RefundId::new(changed.id.as_str()))?;
                let c = self.charges.get(r.charge_id())?;
                (r.merchant_id().clone(), c.permission_id().clone())
            }
            Kind::ChargePermission => {
                let p = self
                    .permissions
                    .get(&PermissionId::new(changed.id.as_str()))?;
                (p.merchant_id().clone(), p.id().clone())
            }
            Kind::CheckoutSession => return None,
        };
        Some(Notice {
            merchant_id: merchant,
            kind: changed.kind,
            object_id: changed.id.clone(),
            permission_id: permission,
        })
    }

    // ---- reads (a merchant sees only its own objects) ----

    pub fn session(&self, merchant: &Merchant, id: &SessionId) -> Result<&Session, EngineError> {
        self.sessions
            .get(id)
            .filter(|s| s.merchant_id() == merchant.id())
            .ok_or_else(|| not_found(Object::CheckoutSession, id.as_str()))
    }

    /// A session as the buyer's pages see it (whoever the merchant).
    pub fn session_for_buyer(&self, id: &SessionId) -> Option<&Session> {
        self.sessions.get(id)
    }

    pub fn permission(
        &self,
        merchant: &Merchant,
        id: &PermissionId,
    ) -> Result<&Permission, EngineError> {
        self.permissions
            .get(id)
            .filter(|p| p.merchant_id() == merchant.id())
            .ok_or_else(|| not_found(Object::ChargePermission, id.as_str()))
    }

    pub fn charge(&self, merchant: &Merchant, id: &ChargeId) -> Result<&Charge, EngineError> {
        self.charges
            .get(id)
            .filter(|c| c.merchant_id() == merchant.id())
            .ok_or_else(|| not_found(Object::Charge, id.as_str()))
    }

    pub fn refund(&self, merchant: &Merchant, id: &RefundId) -> Result<&Refund, EngineError> {
        self.refunds
            .get(id)
            .filter(|r| r.merchant_id() == merchant.id())
            .ok_or_else(|| not_found(Object::Refund, id.as_str()))
    }
}

fn not_found(object: Object, id: &str) -> EngineError {
    EngineError::NotFound {
        object,
        id: id.to_owned(),
    }
}

#[cfg(test)]
mod tests;
