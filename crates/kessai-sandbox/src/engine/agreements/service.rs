//! [`Agreements`]: runs each command of the billing-agreement domain against the SQLite file.
//!
//! Changes are serialised by one lock of this engine's own; each writes its records, reference
//! ids and notifications in one transaction. Reads do not take the lock: they read the file by
//! indexed id (after settling, under the lock, only when something fell due).

use super::payment::{
    AuthorizationOutcome, CaptureOutcome, Decided, NewAuthorization, NewCapture, NewRefund,
};
use super::simulation::Simulation;
use super::store::{Kind, OutboxRow, Record, ReferenceRow, Store, StoreError, Write};
use super::*;
use kessai_core::{Currency, IdSource, Money, Secret};
use sha2::Digest;
use std::sync::Arc;
use tokio::sync::Mutex;

pub type Outbox = OutboxRow;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Refused(#[from] Refusal),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot prepare a notification: {0}")]
    Notify(String),
}

/// A change Amazon notifies the seller of.
#[derive(Debug, Clone)]
pub enum Notice {
    Agreement(BillingAgreement),
    Authorization(Authorization),
    Capture(Capture),
    Refund(Refund),
}

/// Renders a notice as the seller's notification (the face knows the format).
pub trait Announce: Send + Sync {
    /// The notification of `notice`, or `None` when the seller wants none.
    fn announce(
        &self,
        seller: &Seller,
        notice: &Notice,
        now: Timestamp,
    ) -> Result<Option<OutboxRow>, String>;
}

/// Who asks, on which path, when.
#[derive(Debug, Clone, Copy)]
pub struct Scope<'a> {
    pub seller: &'a Seller,
    pub environment: Environment,
    pub now: Timestamp,
}

/// AuthorizeOnBillingAgreement, or Authorize on an order reference.
#[derive(Debug, Clone)]
pub struct AuthorizeCommand {
    pub reference_id: String,
    pub amount: Money,
    /// `TransactionTimeout` 0.
    pub synchronous: bool,
    pub capture_now: bool,
    pub note: Option<String>,
    pub soft_descriptor: Option<String>,
    pub simulation: Option<Simulation>,
    /// For the order reference AuthorizeOnBillingAgreement makes.
    pub order: OrderAttributes,
    pub inherit_shipping_address: bool,
}

#[derive(Debug, Clone)]
pub struct CaptureCommand {
    pub reference_id: String,
    pub amount: Money,
    pub note: Option<String>,
    pub soft_descriptor: Option<String>,
    pub simulation: Option<Simulation>,
}

#[derive(Debug, Clone)]
pub struct RefundCommand {
    pub reference_id: String,
    pub amount: Money,
    pub note: Option<String>,
    pub soft_descriptor: Option<String>,
    pub simulation: Option<Simulation>,
}

/// What one change writes, before its notifications are rendered.
#[derive(Default)]
struct Change {
    records: Vec<Record>,
    references: Vec<ReferenceRow>,
    notices: Vec<Notice>,
}

impl Change {
    fn agreement(&mut self, before: &BillingAgreement, after: BillingAgreement) {
        if before.state() != after.state() || before.reason() != after.reason() {
            self.notices.push(Notice::Agreement(after.clone()));
        }
        self.records.push(Record::Agreement(after));
    }

    fn authorization(&mut self, after: Authorization, notify: bool) {
        if notify {
            self.notices.push(Notice::Authorization(after.clone()));
        }
        self.records.push(Record::Authorization(after));
    }

    fn capture(&mut self, after: Capture, notify: bool) {
        if notify {
            self.notices.push(Notice::Capture(after.clone()));
        }
        self.records.push(Record::Capture(after));
    }
}

trait Owned {
    fn owner(&self) -> &SellerId;
    fn env(&self) -> Environment;
}

macro_rules! owned {
    ($($t:ty),*) => {$(
        impl Owned for $t {
            fn owner(&self) -> &SellerId { self.seller() }
            fn env(&self) -> Environment { self.environment() }
        }
    )*};
}
owned!(
    BillingAgreement,
    OrderReference,
    Authorization,
    Capture,
    Refund
);

/// The record, if it belongs to the caller (another seller's id, or one of the other
/// environment, names nothing).
fn mine<T: Owned>(
    scope: &Scope<'_>,
    found: Option<T>,
    unknown: impl FnOnce() -> Refusal,
) -> Result<T, Refusal> {
    match found {
        Some(r) if r.owner() == scope.seller.id() && r.env() == scope.environment => Ok(r),
        _ => Err(unknown()),
    }
}

fn fingerprint(target: &str, command: &impl std::fmt::Debug) -> String {
    hex::encode(sha2::Sha256::digest(
        format!("{target}|{command:?}").as_bytes(),
    ))
}

/// How Amazon decides an authorization: a simulation, else the payment method.
fn authorization_outcome(
    simulation: Option<Simulation>,
    payment_method_declines: bool,
    synchronous: bool,
) -> AuthorizationOutcome {
    let reopen = |m: Option<u32>| m.filter(|_| !synchronous).map(|m| i64::from(m) * 60);
    match simulation {
        Some(Simulation::InvalidPaymentMethod {
            soft_decline,
            reopen_after_minutes,
        }) => AuthorizationOutcome::Declined {
            reason: AuthorizationReason::InvalidPaymentMethod,
            soft_decline,
            reopen_after: reopen(reopen_after_minutes),
        },
        Some(Simulation::AmazonRejected) => AuthorizationOutcome::Declined {
            reason: AuthorizationReason::AmazonRejected,
            soft_decline: None,
            reopen_after: None,
        },
        Some(Simulation::TransactionTimedOut) => AuthorizationOutcome::Declined {
            reason: AuthorizationReason::TransactionTimedOut,
            soft_decline: None,
            reopen_after: None,
        },
        Some(Simulation::ExpiredUnused { minutes }) => {
            AuthorizationOutcome::OpenUntil(i64::from(minutes) * 60)
        }
        Some(Simulation::AmazonClosed) => AuthorizationOutcome::AmazonClosed,
        Some(Simulation::Pending) => AuthorizationOutcome::StaysPending,
        Some(Simulation::PaymentMethodNotAllowed) | None if payment_method_declines => {
            AuthorizationOutcome::Declined {
                reason: AuthorizationReason::InvalidPaymentMethod,
                soft_decline: None,
                reopen_after: None,
            }
        }
        Some(Simulation::PaymentMethodNotAllowed) | None => AuthorizationOutcome::Open,
    }
}

pub struct Agreements {
    store: Store,
    write: Mutex<()>,
    ids: Arc<dyn IdSource>,
    announcer: Arc<dyn Announce>,
}

impl Agreements {
    pub fn new(store: Store, ids: Arc<dyn IdSource>, announcer: Arc<dyn Announce>) -> Agreements {
        Agreements {
            store,
            write: Mutex::new(()),
            ids,
            announcer,
        }
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    async fn commit(&self, change: Change, now: Timestamp) -> Result<(), EngineError> {
        let mut outbox = Vec::new();
        for notice in &change.notices {
            let seller_id = match notice {
                Notice::Agreement(r) => r.seller(),
                Notice::Authorization(r) => r.seller(),
                Notice::Capture(r) => r.seller(),
                Notice::Refund(r) => r.seller(),
            };
            let Some(seller) = self.store.seller(seller_id).await? else {
                continue;
            };
            if let Some(row) = self
                .announcer
                .announce(&seller, notice, now)
                .map_err(EngineError::Notify)?
            {
                outbox.push(row);
            }
        }
        self.store
            .write(&Write {
                records: change.records,
                references: change.references,
                outbox,
            })
            .await?;
        Ok(())
    }

    // ---- sellers and the buyer's side (test helpers) ----

    /// A new seller with fresh MWS keys.
    pub async fn create_seller(
        &self,
        currency: Currency,
        ipn_url: Option<String>,
        now: Timestamp,
    ) -> Result<Seller, EngineError> {
        let ids = &*self.ids;
        let seller = Seller::new(
            SellerId::generate(ids),
            format!("AKIA{}", ids.pick(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 16)),
            Secret::new(ids.pick(
                b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/",
                40,
            )),
            format!("amzn1.application-oa2-client.{}", ids.hex(16)),
            currency,
            ipn_url,
        );
        self.store.insert_seller(&seller, now).await?;
        Ok(seller)
    }

    /// A Draft agreement as the widgets leave it.
    pub async fn create_agreement(
        &self,
        seller: &Seller,
        environment: Environment,
        buyer_id: &str,
        address_id: Option<String>,
        payment_method: Option<PaymentMethod>,
        now: Timestamp,
    ) -> Result<BillingAgreement, EngineError> {
        let _guard = self.write.lock().await;
        let id = loop {
            let id = BillingAgreementId::generate(environment, &*self.ids);
            if !self.store.exists(Kind::Agreement, id.as_str()).await? {
                break id;
            }
        };
        let ba = BillingAgreement::draft(
            id,
            seller.id().clone(),
            environment,
            seller.currency(),
            buyer_id,
            address_id,
            payment_method,
            now,
        );
        self.store
            .write(&Write {
                records: vec![Record::Agreement(ba.clone())],
                ..Default::default()
            })
            .await?;
        Ok(ba)
    }

    /// The buyer acts on an agreement in a widget (consent, payment method).
    pub async fn as_buyer(
        &self,
        id: &str,
        now: Timestamp,
        act: impl FnOnce(&BillingAgreement) -> BillingAgreement,
    ) -> Result<BillingAgreement, EngineError> {
        let _guard = self.write.lock().await;
        self.settle_locked(now).await?;
        let before = self
            .store
            .agreement(id)
            .await?
            .ok_or_else(|| Refusal::UnknownBillingAgreement(id.to_owned()))?;
        let after = act(&before);
        let mut change = Change::default();
        change.agreement(&before, after.clone());
        self.commit(change, now).await?;
        Ok(after)
    }

    /// The agreement's buyer changes a choice in a widget; another buyer's agreement is
    /// unknown to them.
    pub async fn buyer_change(
        &self,
        id: &str,
        buyer_id: &str,
        change: BuyerChange,
        now: Timestamp,
    ) -> Result<BillingAgreement, EngineError> {
        let _guard = self.write.lock().await;
        self.settle_locked(now).await?;
        let before = self
            .store
            .agreement(id)
            .await?
            .filter(|b| b.buyer_id() == buyer_id)
            .ok_or_else(|| Refusal::UnknownBillingAgreement(id.to_owned()))?;
        let after = before.plan_buyer_change(change, now)?;
        let mut change = Change::default();
        change.agreement(&before, after.clone());
        self.commit(change, now).await?;
        Ok(after)
    }

    // ---- reads ----

    async fn settle_if_due(&self, now: Timestamp) -> Result<(), EngineError> {
        if self.store.any_due(now).await? {
            let _guard = self.write.lock().await;
            self.settle_locked(now).await?;
        }
        Ok(())
    }

    pub async fn agreement(&self, s: Scope<'_>, id: &str) -> Result<BillingAgreement, EngineError> {
        self.settle_if_due(s.now).await?;
        Ok(mine(&s, self.store.agreement(id).await?, || {
            Refusal::UnknownBillingAgreement(id.to_owned())
        })?)
    }

    pub async fn order_reference(
        &self,
        s: Scope<'_>,
        id: &str,
    ) -> Result<OrderReference, EngineError> {
        self.settle_if_due(s.now).await?;
        Ok(mine(&s, self.store.order_reference(id).await?, || {
            Refusal::UnknownOrderReference(id.to_owned())
        })?)
    }

    pub async fn authorization(
        &self,
        s: Scope<'_>,
        id: &str,
    ) -> Result<Authorization, EngineError> {
        self.settle_if_due(s.now).await?;
        Ok(mine(&s, self.store.authorization(id).await?, || {
            Refusal::UnknownAuthorization(id.to_owned())
        })?)
    }

    pub async fn capture(&self, s: Scope<'_>, id: &str) -> Result<Capture, EngineError> {
        self.settle_if_due(s.now).await?;
        Ok(mine(&s, self.store.capture(id).await?, || {
            Refusal::UnknownCapture(id.to_owned())
        })?)
    }

    pub async fn refund(&self, s: Scope<'_>, id: &str) -> Result<Refund, EngineError> {
        self.settle_if_due(s.now).await?;
        Ok(mine(&s, self.store.refund(id).await?, || {
            Refusal::UnknownRefund(id.to_owned())
        })?)
    }

    // ---- billing agreement commands ----

    /// Loads an agreement of the caller under the lock, applies `plan`, stores the result.
    async fn change_agreement<T>(
        &self,
        s: Scope<'_>,
        id: &str,
        plan: impl FnOnce(&BillingAgreement) -> Result<(BillingAgreement, T), Refusal>,
    ) -> Result<(BillingAgreement, T), EngineError> {
        let _guard = self.write.lock().await;
        self.settle_locked(s.now).await?;
        let before = mine(&s, self.store.agreement(id).await?, || {
            Refusal::UnknownBillingAgreement(id.to_owned())
        })?;
        let (after, out) = plan(&before)?;
        if after != before {
            let mut change = Change::default();
            change.agreement(&before, after.clone());
            self.commit(change, s.now).await?;
        }
        Ok((after, out))
    }

    pub async fn set_agreement(
        &self,
        s: Scope<'_>,
        id: &str,
        attributes: &AgreementAttributes,
    ) -> Result<BillingAgreement, EngineError> {
        Ok(self
            .change_agreement(s, id, |b| Ok((b.plan_set(attributes, s.now)?, ())))
            .await?
            .0)
    }

    pub async fn confirm_agreement(
        &self,
        s: Scope<'_>,
        id: &str,
    ) -> Result<BillingAgreement, EngineError> {
        Ok(self
            .change_agreement(s, id, |b| Ok((b.plan_confirm(s.now)?, ())))
            .await?
            .0)
    }

    pub async fn validate_agreement(
        &self,
        s: Scope<'_>,
        id: &str,
    ) -> Result<(BillingAgreement, Validation), EngineError> {
        self.change_agreement(s, id, |b| b.plan_validate(s.now))
            .await
    }

    pub async fn close_agreement(
        &self,
        s: Scope<'_>,
        id: &str,
        reason: Option<&str>,
    ) -> Result<BillingAgreement, EngineError> {
        Ok(self
            .change_agreement(s, id, |b| Ok((b.plan_close(reason, s.now)?, ())))
            .await?
            .0)
    }

    // ---- authorizations ----

    /// The object a reference id already names, if the same command made it; a refusal if
    /// the reference id was used otherwise.
    async fn replay(
        &self,
        s: &Scope<'_>,
        reference_id: &str,
        kind: Kind,
        fingerprint: &str,
    ) -> Result<Option<String>, EngineError> {
        match self.store.reference(s.seller.id(), reference_id).await? {
            None => Ok(None),
            Some(row) if row.kind == kind && row.fingerprint == fingerprint => {
                Ok(Some(row.object_id))
            }
            Some(row) if row.kind == kind => {
                Err(Refusal::DuplicateRequest(reference_id.to_owned()).into())
            }
            Some(_) => Err(Refusal::DuplicateReferenceId(reference_id.to_owned()).into()),
        }
    }

    async fn fresh_child<T>(
        &self,
        kind: Kind,
        make: impl Fn(&dyn IdSource) -> T,
        text: impl Fn(&T) -> &str,
    ) -> Result<T, EngineError> {
        loop {
            let id = make(&*self.ids);
            if !self.store.exists(kind, text(&id)).await? {
                return Ok(id);
            }
        }
    }

    /// What a decided authorization does around it: a captured-at-once authorization gets its
    /// capture; a declined one gives its amount back to the agreement's month, and an
    /// `InvalidPaymentMethod` decline suspends the agreement (and its order reference).
    async fn after_decision(
        &self,
        auth: Authorization,
        decided: Decided,
        agreement: &mut BillingAgreement,
        order: &mut OrderReference,
        now: Timestamp,
    ) -> Result<(Authorization, Option<Capture>), EngineError> {
        match decided {
            Decided::Opened if auth.capture_now() => {
                let oro = auth.order_reference().clone();
                let id = self
                    .fresh_child(
                        Kind::Capture,
                        |ids| CaptureId::generate(&oro, ids),
                        |c| c.as_str(),
                    )
                    .await?;
                let capture = Capture::new(
                    NewCapture {
                        id,
                        authorization: auth.id().clone(),
                        seller: auth.seller().clone(),
                        environment: auth.environment(),
                        reference_id: auth.reference_id().to_owned(),
                        amount: auth.amount(),
                        note: None,
                        soft_descriptor: auth.soft_descriptor().map(str::to_owned),
                        outcome: CaptureOutcome::Completed,
                    },
                    now,
                );
                Ok((auth.captured_by(&capture, now), Some(capture)))
            }
            Decided::Opened | Decided::Closed => Ok((auth, None)),
            Decided::Declined {
                suspends,
                reopen_after,
            } => {
                *agreement = agreement.released(auth.amount(), auth.created_at());
                if suspends {
                    *agreement = agreement.suspended(reopen_after.map(|s| now + s), now);
                    *order = order.suspended(now);
                }
                Ok((auth, None))
            }
        }
    }

    /// Makes an authorization on `order` (Open) under agreement `before`, with the checks
    /// both kinds of Authorize share, and stores it all.
    async fn authorize_locked(
        &self,
        s: &Scope<'_>,
        before: BillingAgreement,
        order: OrderReference,
        order_is_implied: bool,
        command: &AuthorizeCommand,
        fp: String,
    ) -> Result<Authorization, EngineError> {
        before.plan_charge(command.amount, s.now)?;
        let oro_id = order.id().clone();
        let auth_id = self
            .fresh_child(
                Kind::Authorization,
                |ids| AuthorizationId::generate(&oro_id, ids),
                |a| a.as_str(),
            )
            .await?;
        let declines = before.payment_method().is_none_or(|p| p.declines());
        let (auth, decided) = Authorization::new(
            NewAuthorization {
                id: auth_id.clone(),
                order_reference: oro_id,
                agreement: before.id().clone(),
                seller: s.seller.id().clone(),
                environment: s.environment,
                reference_id: command.reference_id.clone(),
                amount: command.amount,
                note: command.note.clone(),
                soft_descriptor: command.soft_descriptor.clone(),
                capture_now: command.capture_now,
                synchronous: command.synchronous,
                outcome: authorization_outcome(command.simulation, declines, command.synchronous),
            },
            s.now,
        );
        let mut agreement = before.consumed(command.amount, s.now);
        let mut order = order.with_authorization(auth_id.clone(), s.now);
        let (auth, capture) = match decided {
            Some(d) => {
                self.after_decision(auth, d, &mut agreement, &mut order, s.now)
                    .await?
            }
            None => (auth, None),
        };
        if order_is_implied {
            order = order.closed_by_amazon(s.now);
        }
        let mut change = Change::default();
        change.references.push(ReferenceRow {
            seller: s.seller.id().clone(),
            reference_id: command.reference_id.clone(),
            kind: Kind::Authorization,
            object_id: auth_id.as_str().to_owned(),
            fingerprint: fp,
        });
        change.agreement(&before, agreement);
        change.records.push(Record::OrderReference(order));
        change.authorization(auth.clone(), decided.is_some());
        if let Some(c) = capture {
            change.capture(c, true);
        }
        self.commit(change, s.now).await?;
        Ok(auth)
    }

    /// AuthorizeOnBillingAgreement: an order reference made, confirmed and closed around one
    /// authorization. Answers the authorization (its order reference id within).
    pub async fn authorize_on_agreement(
        &self,
        s: Scope<'_>,
        agreement_id: &str,
        command: &AuthorizeCommand,
    ) -> Result<Authorization, EngineError> {
        let _guard = self.write.lock().await;
        self.settle_locked(s.now).await?;
        let before = mine(&s, self.store.agreement(agreement_id).await?, || {
            Refusal::UnknownBillingAgreement(agreement_id.to_owned())
        })?;
        let fp = fingerprint(agreement_id, command);
        if let Some(id) = self
            .replay(&s, &command.reference_id, Kind::Authorization, &fp)
            .await?
        {
            return self.existing_authorization(&id).await;
        }
        let oro_id = loop {
            let id = OrderReferenceId::generate(s.environment, &*self.ids);
            if !self.store.exists(Kind::OrderReference, id.as_str()).await? {
                break id;
            }
        };
        let attributes = OrderAttributes {
            order_total: Some(command.amount),
            ..command.order.clone()
        };
        let order = OrderReference::draft(
            oro_id,
            s.seller.id().clone(),
            s.environment,
            before.id().clone(),
            before.buyer_id(),
            before
                .address_id()
                .filter(|_| command.inherit_shipping_address)
                .map(str::to_owned),
            attributes,
            s.now,
        )
        .opened(s.now);
        self.authorize_locked(&s, before, order, true, command, fp)
            .await
    }

    async fn existing_authorization(&self, id: &str) -> Result<Authorization, EngineError> {
        self.store
            .authorization(id)
            .await?
            .ok_or_else(|| Refusal::UnknownAuthorization(id.to_owned()).into())
    }

    /// Authorize on an order reference made with CreateOrderReferenceForId.
    pub async fn authorize(
        &self,
        s: Scope<'_>,
        order_id: &str,
        command: &AuthorizeCommand,
    ) -> Result<Authorization, EngineError> {
        let _guard = self.write.lock().await;
        self.settle_locked(s.now).await?;
        let order = mine(&s, self.store.order_reference(order_id).await?, || {
            Refusal::UnknownOrderReference(order_id.to_owned())
        })?;
        let fp = fingerprint(order_id, command);
        if let Some(id) = self
            .replay(&s, &command.reference_id, Kind::Authorization, &fp)
            .await?
        {
            return self.existing_authorization(&id).await;
        }
        let mut held = 0;
        for id in order.authorizations() {
            if let Some(a) = self.store.authorization(id.as_str()).await? {
                if a.holds() {
                    held += a.amount().minor();
                }
            }
        }
        order.plan_authorize(command.amount, held)?;
        let agreement = self
            .store
            .agreement(order.parent().as_str())
            .await?
            .ok_or_else(|| Refusal::UnknownBillingAgreement(order.parent().to_string()))?;
        self.authorize_locked(&s, agreement, order, false, command, fp)
            .await
    }

    pub async fn close_authorization(
        &self,
        s: Scope<'_>,
        id: &str,
    ) -> Result<Authorization, EngineError> {
        let _guard = self.write.lock().await;
        self.settle_locked(s.now).await?;
        let before = mine(&s, self.store.authorization(id).await?, || {
            Refusal::UnknownAuthorization(id.to_owned())
        })?;
        let after = before.plan_close(s.now)?;
        if after != before {
            let mut change = Change::default();
            change.authorization(after.clone(), true);
            self.commit(change, s.now).await?;
        }
        Ok(after)
    }

    // ---- captures and refunds ----

    pub async fn capture_authorization(
        &self,
        s: Scope<'_>,
        auth_id: &str,
        command: &CaptureCommand,
    ) -> Result<Capture, EngineError> {
        let _guard = self.write.lock().await;
        self.settle_locked(s.now).await?;
        let auth = mine(&s, self.store.authorization(auth_id).await?, || {
            Refusal::UnknownAuthorization(auth_id.to_owned())
        })?;
        let fp = fingerprint(auth_id, command);
        if let Some(id) = self
            .replay(&s, &command.reference_id, Kind::Capture, &fp)
            .await?
        {
            return self
                .store
                .capture(&id)
                .await?
                .ok_or_else(|| Refusal::UnknownCapture(id).into());
        }
        auth.plan_capture(command.amount)?;
        let oro = auth.order_reference().clone();
        let id = self
            .fresh_child(
                Kind::Capture,
                |ids| CaptureId::generate(&oro, ids),
                |c| c.as_str(),
            )
            .await?;
        let outcome = match command.simulation {
            Some(Simulation::AmazonRejected) => CaptureOutcome::Declined,
            Some(Simulation::AmazonClosed) => CaptureOutcome::AmazonClosed,
            Some(Simulation::Pending) => CaptureOutcome::Pending,
            _ => CaptureOutcome::Completed,
        };
        let capture = Capture::new(
            NewCapture {
                id: id.clone(),
                authorization: auth.id().clone(),
                seller: s.seller.id().clone(),
                environment: s.environment,
                reference_id: command.reference_id.clone(),
                amount: command.amount,
                note: command.note.clone(),
                soft_descriptor: command.soft_descriptor.clone(),
                outcome,
            },
            s.now,
        );
        let after = auth.captured_by(&capture, s.now);
        let mut change = Change::default();
        change.references.push(ReferenceRow {
            seller: s.seller.id().clone(),
            reference_id: command.reference_id.clone(),
            kind: Kind::Capture,
            object_id: id.as_str().to_owned(),
            fingerprint: fp,
        });
        let auth_changed = after.state() != auth.state();
        change.authorization(after, auth_changed);
        change.capture(capture.clone(), capture.state() != CaptureState::Pending);
        self.commit(change, s.now).await?;
        Ok(capture)
    }

    pub async fn refund_capture(
        &self,
        s: Scope<'_>,
        capture_id: &str,
        command: &RefundCommand,
    ) -> Result<Refund, EngineError> {
        let _guard = self.write.lock().await;
        self.settle_locked(s.now).await?;
        let capture = mine(&s, self.store.capture(capture_id).await?, || {
            Refusal::UnknownCapture(capture_id.to_owned())
        })?;
        let fp = fingerprint(capture_id, command);
        if let Some(id) = self
            .replay(&s, &command.reference_id, Kind::Refund, &fp)
            .await?
        {
            return self
                .store
                .refund(&id)
                .await?
                .ok_or_else(|| Refusal::UnknownRefund(id).into());
        }
        capture.plan_refund(command.amount)?;
        let auth = self
            .store
            .authorization(capture.authorization().as_str())
            .await?
            .ok_or_else(|| Refusal::UnknownAuthorization(capture.authorization().to_string()))?;
        let oro = auth.order_reference().clone();
        let id = self
            .fresh_child(
                Kind::Refund,
                |ids| RefundId::generate(&oro, ids),
                |r| r.as_str(),
            )
            .await?;
        let refund = Refund::new(
            NewRefund {
                id: id.clone(),
                capture: capture.id().clone(),
                seller: s.seller.id().clone(),
                environment: s.environment,
                reference_id: command.reference_id.clone(),
                amount: command.amount,
                note: command.note.clone(),
                soft_descriptor: command.soft_descriptor.clone(),
                declines: command.simulation == Some(Simulation::AmazonRejected),
            },
            s.now,
        );
        let mut change = Change::default();
        change.references.push(ReferenceRow {
            seller: s.seller.id().clone(),
            reference_id: command.reference_id.clone(),
            kind: Kind::Refund,
            object_id: id.as_str().to_owned(),
            fingerprint: fp,
        });
        change.capture(capture.with_refund(&refund, s.now), false);
        change.records.push(Record::Refund(refund.clone()));
        self.commit(change, s.now).await?;
        Ok(refund)
    }

    // ---- order references ----

    /// CreateOrderReferenceForId on an Open agreement.
    pub async fn create_order_reference(
        &self,
        s: Scope<'_>,
        agreement_id: &str,
        attributes: &OrderAttributes,
        inherit_shipping_address: bool,
        confirm_now: bool,
    ) -> Result<OrderReference, EngineError> {
        let _guard = self.write.lock().await;
        self.settle_locked(s.now).await?;
        let agreement = mine(&s, self.store.agreement(agreement_id).await?, || {
            Refusal::UnknownBillingAgreement(agreement_id.to_owned())
        })?;
        if agreement.state() != BillingAgreementState::Open {
            return Err(Refusal::BillingAgreementStatus(agreement.state()).into());
        }
        if let Some(total) = attributes.order_total {
            if total.currency() != agreement.currency() {
                return Err(Refusal::CurrencyMismatch {
                    expected: agreement.currency(),
                    got: total.currency(),
                }
                .into());
            }
        }
        let id = loop {
            let id = OrderReferenceId::generate(s.environment, &*self.ids);
            if !self.store.exists(Kind::OrderReference, id.as_str()).await? {
                break id;
            }
        };
        let mut order = OrderReference::draft(
            id,
            s.seller.id().clone(),
            s.environment,
            agreement.id().clone(),
            agreement.buyer_id(),
            agreement
                .address_id()
                .filter(|_| inherit_shipping_address)
                .map(str::to_owned),
            attributes.clone(),
            s.now,
        );
        if confirm_now {
            order = order.plan_confirm(s.now)?;
        }
        self.store
            .write(&Write {
                records: vec![Record::OrderReference(order.clone())],
                ..Default::default()
            })
            .await?;
        Ok(order)
    }

    /// Loads an order reference of the caller under the lock, applies `plan`, stores it.
    pub async fn change_order_reference(
        &self,
        s: Scope<'_>,
        id: &str,
        plan: impl FnOnce(&OrderReference, bool) -> Result<OrderReference, Refusal>,
    ) -> Result<OrderReference, EngineError> {
        let _guard = self.write.lock().await;
        self.settle_locked(s.now).await?;
        let before = mine(&s, self.store.order_reference(id).await?, || {
            Refusal::UnknownOrderReference(id.to_owned())
        })?;
        let mut captured = false;
        for a in before.authorizations() {
            if let Some(a) = self.store.authorization(a.as_str()).await? {
                captured |= a.captured().minor() > 0;
            }
        }
        let after = plan(&before, captured)?;
        if after != before {
            self.store
                .write(&Write {
                    records: vec![Record::OrderReference(after.clone())],
                    ..Default::default()
                })
                .await?;
        }
        Ok(after)
    }

    // ---- time ----

    /// Makes every transition that falls due at `now` (and writes each with its notifications).
    pub async fn settle(&self, now: Timestamp) -> Result<(), EngineError> {
        if !self.store.any_due(now).await? {
            return Ok(());
        }
        let _guard = self.write.lock().await;
        self.settle_locked(now).await
    }

    async fn settle_locked(&self, now: Timestamp) -> Result<(), EngineError> {
        const BATCH: i64 = 64;
        // Bounded: each round moves every due object one step (a pending authorization that
        // opens may expire in the next round).
        for _ in 0..8 {
            let due = self.store.due(now, BATCH).await?;
            if due.is_empty() {
                break;
            }
            for (kind, id) in &due {
                self.fall_due(*kind, id, now).await?;
            }
        }
        Ok(())
    }

    async fn fall_due(&self, kind: Kind, id: &str, now: Timestamp) -> Result<(), EngineError> {
        let mut change = Change::default();
        match kind {
            Kind::Agreement => {
                let Some(before) = self.store.agreement(id).await? else {
                    return Ok(());
                };
                if let Some(after) = before.fall_due(now) {
                    change.agreement(&before, after);
                }
            }
            Kind::OrderReference => {
                if let Some(after) = self
                    .store
                    .order_reference(id)
                    .await?
                    .and_then(|o| o.fall_due(now))
                {
                    change.records.push(Record::OrderReference(after));
                }
            }
            Kind::Authorization => {
                let Some((auth, decided)) = self
                    .store
                    .authorization(id)
                    .await?
                    .and_then(|a| a.fall_due(now))
                else {
                    return Ok(());
                };
                let Some(decided) = decided else {
                    change.authorization(auth, true);
                    return self.commit(change, now).await;
                };
                let at = auth.updated_at();
                let before = self.store.agreement(auth.agreement().as_str()).await?;
                let order = self
                    .store
                    .order_reference(auth.order_reference().as_str())
                    .await?;
                let (Some(before), Some(mut order)) = (before, order) else {
                    change.authorization(auth, true);
                    return self.commit(change, now).await;
                };
                let mut agreement = before.clone();
                let (auth, capture) = self
                    .after_decision(auth, decided, &mut agreement, &mut order, at)
                    .await?;
                change.agreement(&before, agreement);
                change.records.push(Record::OrderReference(order));
                change.authorization(auth, true);
                if let Some(c) = capture {
                    change.capture(c, true);
                }
            }
            Kind::Capture => {
                if let Some(after) = self.store.capture(id).await?.and_then(|c| c.fall_due(now)) {
                    change.capture(after, true);
                }
            }
            Kind::Refund => {
                let Some(refund) = self.store.refund(id).await?.and_then(|r| r.fall_due(now))
                else {
                    return Ok(());
                };
                if let Some(capture) = self.store.capture(refund.capture().as_str()).await? {
                    let after = capture.refund_decided(&refund, refund.updated_at());
                    let changed = after.state() != capture.state();
                    change.capture(after, changed);
                }
                change.notices.push(Notice::Refund(refund.clone()));
                change.records.push(Record::Refund(refund));
            }
        }
        self.commit(change, now).await
    }
}
