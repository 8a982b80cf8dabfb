//! The operation log at work: every Amazon Pay call that can move money or change a checkout is
//! recorded as a pending operation (with its idempotency key) before it is made; its outcome is
//! stored in one unit of work with the order change, history entry and refund row it causes.
//!
//! When the answer is lost (timeout, connection reset, 5xx, 408, 429) or the outcome cannot be
//! stored, the operation stays pending and the order carries it as `in_flight`. [`settle`] resolves
//! it before anything else runs on the order, by sending exactly the same request again (same
//! idempotency key, so Amazon Pay replays instead of acting twice) or by reading Amazon's state.

mod calls;
mod consent;
mod ending;

use crate::app::AppState;
use crate::util::{history, idempotency_key};
use crate::util::{internal, store_failure};
use ending::Step;
use kessai_core::{Field, Intent, Kind, OperationKind, OperationStatus, OrderState, ResultCode};
use kessai_store::{HistoryEntry, OperationRecord, OrderRecord, StoreError, Unit, Write};

/// How an operation ended, with the order as stored after it.
#[derive(Debug)]
pub enum Outcome {
    /// Amazon Pay carried it out (for a checkout, the result may still be a decline).
    Done {
        record: OrderRecord,
        op: Box<OperationRecord>,
        result: ResultCode,
    },
    /// Amazon Pay refused it, or it could not be started; no money moved.
    Refused {
        record: OrderRecord,
        result: ResultCode,
        /// The finished operation, if one was started.
        op: Option<Box<OperationRecord>>,
    },
    /// Amazon Pay did not carry it out because the buyer has not confirmed at Amazon yet.
    NotYet {
        record: OrderRecord,
        result: ResultCode,
        /// Where the buyer confirms (the session's `amazonPayRedirectUrl`), if Amazon gave one.
        buyer_url: Option<String>,
    },
    /// Nobody knows yet; the operation stays pending and will be resolved.
    Unknown { result: ResultCode },
}

/// Who is running the operation, for its history entry and whether its outcome reaches them.
#[derive(Debug, Clone)]
pub struct Actor {
    /// The history entry's `command` and `request`.
    pub command: String,
    pub request: String,
    /// The outcome is answered to this actor (a merchant command or the buyer's browser), so the
    /// operation counts as reported once stored.
    pub reports: bool,
}

impl Actor {
    pub fn resolver(op: &OperationRecord) -> Actor {
        Actor {
            command: format!("Resolve{}", op.intent.kind.as_str()),
            request: format!(
                "{{\"step\":\"resolve\",\"operation\":\"{}\",\"seq\":{}}}",
                op.intent.kind.as_str(),
                op.seq
            ),
            reports: false,
        }
    }

    pub(crate) fn entry(&self, state: &AppState, result: &ResultCode) -> HistoryEntry {
        history(&self.command, &self.request, result, state.now_text())
    }
}

pub(crate) fn unknown(cause: impl std::fmt::Display) -> ResultCode {
    ResultCode::new(
        Kind::OutcomeUnknown,
        format!(
            "The outcome at Amazon Pay is not known yet ({cause}); the operation is recorded and will be completed exactly once. Send the same command again to get its result."
        ),
    )
}

/// Records `intent` as the order's pending operation, then carries it out.
pub async fn execute(
    state: &AppState,
    record: OrderRecord,
    intent: Intent,
    actor: &Actor,
) -> Outcome {
    let ops = match state
        .store
        .operations(&record.merchant, &record.order_id)
        .await
    {
        Ok(ops) => ops,
        Err(e) => {
            return Outcome::Unknown {
                result: store_failed(e),
            }
        }
    };
    execute_as(state, record, intent, actor, next_seq(&ops)).await
}

/// The number of the order's next operation, given its operations.
pub fn next_seq(ops: &[OperationRecord]) -> i64 {
    ops.iter().map(|o| o.seq).max().unwrap_or(0) + 1
}

/// As [`execute`], for a caller that read the order's operations already: `seq` is the new
/// operation's number. Another process that starts an operation on the order at the same time
/// loses at the store (version check, one pending operation per order).
pub async fn execute_as(
    state: &AppState,
    record: OrderRecord,
    intent: Intent,
    actor: &Actor,
    seq: i64,
) -> Outcome {
    if record.in_flight.is_some() {
        // The caller settles first; meeting one here means another process started it.
        return lost("another operation on this order is in flight");
    }
    let op = pending(state, &record, intent, seq);
    let mut marked = record.clone();
    marked.in_flight = Some(op.key.clone());
    marked.version += 1;
    marked.updated_at = state.now_text();
    let unit = Unit::new(&record.merchant, &record.order_id)
        .with(Write::UpdateOrder(marked.clone()))
        .with(Write::BeginOperation(op.clone()));
    match state.store.apply(&unit).await {
        Ok(()) => {}
        Err(StoreError::Conflict | StoreError::Duplicate) => {
            // Nothing was sent to Amazon: a plain refusal.
            return Outcome::Refused {
                record,
                result: concurrent(),
                op: None,
            };
        }
        Err(e) => {
            return Outcome::Refused {
                record,
                result: store_failure(e),
                op: None,
            }
        }
    }
    state
        .abort_at
        .reached(crate::crash::Point::AfterIntent, Some(op.intent.kind));
    drive(state, marked, op, actor).await
}

/// The operation `seq` of the order, pending, with its idempotency key
/// `(merchant, order, kind-seq)`.
fn pending(state: &AppState, record: &OrderRecord, intent: Intent, seq: i64) -> OperationRecord {
    OperationRecord {
        key: idempotency_key(
            &record.merchant,
            &record.order_id,
            &format!("{}-{seq}", intent.kind.as_str()),
        ),
        merchant: record.merchant.clone(),
        order_id: record.order_id.clone(),
        seq,
        intent,
        status: OperationStatus::Pending,
        reported: false,
        result_code: None,
        result_message: None,
        amazon_id: None,
        created_at: state.now_text(),
        finished_at: None,
    }
}

/// Records a new order together with its first operation, pending, in one unit of work (so an
/// order never exists without the operation that decides it), then carries the operation out.
/// A duplicate order id is answered as the store's error, with nothing sent to Amazon.
pub async fn begin_with_order(
    state: &AppState,
    mut record: OrderRecord,
    intent: Intent,
    actor: &Actor,
) -> Result<Outcome, StoreError> {
    let op = pending(state, &record, intent, 1);
    record.in_flight = Some(op.key.clone());
    let unit = Unit::new(&record.merchant, &record.order_id)
        .with(Write::InsertOrder(record.clone()))
        .with(Write::BeginOperation(op.clone()));
    state.store.apply(&unit).await?;
    state
        .abort_at
        .reached(crate::crash::Point::AfterIntent, Some(op.intent.kind));
    Ok(drive(state, record, op, actor).await)
}

/// The outcome is not known yet: the operation stays pending.
fn lost(cause: impl std::fmt::Display) -> Outcome {
    Outcome::Unknown {
        result: unknown(cause),
    }
}

fn concurrent() -> ResultCode {
    ResultCode::field(
        Kind::ConcurrentCommand,
        Field::OrderId,
        "was changed by another command at the same time; read it and retry.",
    )
}

fn store_failed(e: impl std::fmt::Display) -> ResultCode {
    tracing::error!(%e, "the store failed while an operation was in flight");
    unknown(format!("the gateway could not store the outcome: {e}"))
}

/// Sends the operation's request (again) and stores what Amazon Pay answered.
/// `record` must carry `op` as its `in_flight` operation.
pub async fn drive(
    state: &AppState,
    record: OrderRecord,
    op: OperationRecord,
    actor: &Actor,
) -> Outcome {
    let step = Step {
        state,
        record,
        op,
        actor,
    };
    match step.op.intent.kind {
        OperationKind::Capture => calls::capture(step).await,
        OperationKind::CancelCharge => calls::cancel(step).await,
        OperationKind::Refund => calls::refund(step).await,
        OperationKind::CompleteCheckout => calls::complete(step).await,
        OperationKind::ChargeConsent => consent::charge(step).await,
        OperationKind::Reauthorize => consent::reauthorize(step).await,
        OperationKind::CloseConsent => consent::close(step).await,
    }
}

/// Resolves what is unresolved on the order before anything else runs on it: its pending
/// operation, and an authorization whose outcome the buyer's browser never brought back.
/// Answers the order as it is afterwards, or the outcome-unknown result if Amazon Pay still
/// cannot tell.
pub async fn settle(state: &AppState, mut record: OrderRecord) -> Result<OrderRecord, ResultCode> {
    let mut asked_checkout = false;
    if let Some(key) = record.in_flight.clone() {
        let ops = state
            .store
            .operations(&record.merchant, &record.order_id)
            .await
            .map_err(store_failed)?;
        let Some(op) = ops
            .into_iter()
            .find(|o| o.key == key && o.status == OperationStatus::Pending)
        else {
            return Err(internal(format!(
                "order {} is marked with operation {key}, which is not pending",
                record.order_id
            )));
        };
        let actor = Actor::resolver(&op);
        asked_checkout = op.intent.kind == OperationKind::CompleteCheckout;
        record = match drive(state, record, op, &actor).await {
            Outcome::Done { record, .. }
            | Outcome::Refused { record, .. }
            | Outcome::NotYet { record, .. } => record,
            Outcome::Unknown { result } => return Err(result),
        };
    }
    // A checkout whose buyer may have confirmed at Amazon (a ReAuthorize charge has no checkout:
    // its pending operation, resolved above, is all there is).
    if record.order.state == OrderState::Authorizing
        && !asked_checkout
        && record.checkout_session_id.is_some()
    {
        let intent = Intent {
            kind: OperationKind::CompleteCheckout,
            amount: record.order.amount,
            note: None,
        };
        let actor = Actor {
            command: "ResolveAuthorization".into(),
            request: "{\"step\":\"resolve\",\"operation\":\"CompleteCheckout\"}".into(),
            reports: true,
        };
        record = match execute(state, record, intent, &actor).await {
            Outcome::Done { record, .. }
            | Outcome::Refused { record, .. }
            | Outcome::NotYet { record, .. } => record,
            Outcome::Unknown { result } => return Err(result),
        };
    }
    if record.order.state == OrderState::AuthorizationPending {
        // Amazon may have decided since (its notification lost or not yet here): ask.
        if let Some(charge) = record.charge_id.clone() {
            match crate::ipn::charge_change(state, &record, &charge).await {
                Ok(Some(change)) => {
                    let request = "{\"step\":\"resolve\",\"operation\":\"PendingAuthorization\"}";
                    record = crate::ipn::apply(
                        state,
                        &record,
                        change,
                        "ResolveAuthorization",
                        request,
                        None,
                    )
                    .await
                    .map_err(store_failed)?;
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(%e, order = %record.order_id, "cannot ask Amazon about a pending authorization")
                }
            }
        }
    }
    Ok(record)
}

/// Resolves the pending operations of every order (at start, and from a periodic worker).
/// Returns how many were resolved and how many are still unknown.
pub async fn resolve_pending(state: &AppState) -> Result<(usize, usize), StoreError> {
    let mut resolved = 0;
    let mut still = 0;
    for op in state.store.pending_operations(1000).await? {
        let _guard = state.locks.lock(&op.merchant, &op.order_id).await;
        let Some(record) = state.store.order(&op.merchant, &op.order_id).await? else {
            continue;
        };
        if record.in_flight.as_deref() != Some(op.key.as_str()) {
            continue;
        }
        match drive(state, record, op.clone(), &Actor::resolver(&op)).await {
            Outcome::Unknown { result } => {
                tracing::warn!(order = %op.order_id, key = %op.key, code = %result.code(), "operation still unresolved");
                still += 1;
            }
            _ => {
                tracing::info!(order = %op.order_id, key = %op.key, kind = op.intent.kind.as_str(), "operation resolved");
                resolved += 1;
            }
        }
    }
    Ok((resolved, still))
}
