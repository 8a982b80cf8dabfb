//! [`Agreements`]: runs each command of the billing-agreement domain against the SQLite file.
//!
//! Changes are serialised by one lock of this engine's own; each writes its records, reference
//! ids and notifications in one transaction. Reads do not take the lock: they read the file by
//! indexed id (after settling, under the lock, only when something fell due).

mod agreements;
mod buyer;
mod order_references;
mod payments;

pub use payments::{AuthorizeCommand, CaptureCommand, RefundCommand};

use super::payment::Decided;
use super::store::{Kind, OutboxRow, Record, ReferenceRow, Store, StoreError, Write};
use super::*;
use kessai_core::IdSource;
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
