//! The operation log at work: every Amazon Pay call that can move money or change a checkout is
//! recorded as a pending operation (with its idempotency key) before it is made; its outcome is
//! stored in one unit of work with the order change, history entry and refund row it causes.
//!
//! When the answer is lost (timeout, connection reset, 5xx, 408, 429) or the outcome cannot be
//! stored, the operation stays pending and the order carries it as `in_flight`. [`settle`] resolves
//! it before anything else runs on the order, by sending exactly the same request again (same
//! idempotency key, so Amazon Pay replays instead of acting twice) or by reading Amazon's state.

use crate::app::AppState;
use crate::util::{amazon_failure, history, idempotency_key};
use kessai_amazonpay::wire::{
    self, ChargeState, CheckoutSessionState, ErrorCode, Price, ReasonCode,
};
use kessai_amazonpay::AmazonPayError;
use kessai_core::{
    Event, Field, Intent, Kind, Money, OperationKind, OperationStatus, OrderState, ResultCode,
};
use kessai_store::{
    HistoryEntry, OperationEnd, OperationRecord, OrderRecord, RefundRecord, StoreError, Unit, Write,
};

/// How an operation ended, with the order as stored after it.
#[derive(Debug)]
pub enum Outcome {
    /// Amazon Pay carried it out (for a checkout, the result may still be a decline).
    Done {
        record: OrderRecord,
        op: Box<OperationRecord>,
        result: ResultCode,
    },
    /// Amazon Pay refused it; no money moved.
    Refused {
        record: OrderRecord,
        result: ResultCode,
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

    fn entry(&self, state: &AppState, result: &ResultCode) -> HistoryEntry {
        history(&self.command, &self.request, result, state.now_text())
    }
}

/// What the gateway reads from a checkout session.
enum SessionView {
    Open {
        buyer_url: Option<String>,
    },
    Completed,
    Canceled {
        reason: Option<ReasonCode>,
    },
    /// A state this version does not know: decide nothing.
    Unknown(String),
}

fn session_view(cs: &wire::CheckoutSession) -> SessionView {
    match &cs.status_details.state {
        CheckoutSessionState::Completed => SessionView::Completed,
        CheckoutSessionState::Canceled => SessionView::Canceled {
            reason: cs.status_details.reason_code.clone(),
        },
        CheckoutSessionState::Open => SessionView::Open {
            buyer_url: cs.web_checkout_details.amazon_pay_redirect_url.clone(),
        },
        CheckoutSessionState::Unknown(s) => SessionView::Unknown(s.clone()),
    }
}

/// What the gateway reads from a charge.
#[derive(Debug, Clone, PartialEq, Eq)]
enum ChargeView {
    Pending,
    Authorized,
    Captured,
    Canceled,
    Declined { reason: String },
    Other(String),
}

fn charge_view(c: &wire::Charge) -> ChargeView {
    match &c.status_details.state {
        ChargeState::AuthorizationInitiated => ChargeView::Pending,
        ChargeState::Authorized => ChargeView::Authorized,
        // A capture more than 7 days after authorization is pending first; it is a capture.
        ChargeState::Captured | ChargeState::CaptureInitiated => ChargeView::Captured,
        ChargeState::Canceled => ChargeView::Canceled,
        ChargeState::Declined => ChargeView::Declined {
            reason: c
                .status_details
                .reason_code
                .as_ref()
                .map(ReasonCode::to_string)
                .unwrap_or_default(),
        },
        ChargeState::Unknown(other) => ChargeView::Other(other.clone()),
    }
}

fn jpy(y: kessai_core::Yen) -> Price {
    Price::from_money(Money::jpy(y))
}

fn unknown(cause: impl std::fmt::Display) -> ResultCode {
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
    if record.in_flight.is_some() || ops.iter().any(|o| o.status == OperationStatus::Pending) {
        // The caller settles first; meeting one here means another process started it.
        return Outcome::Unknown {
            result: unknown("another operation on this order is in flight"),
        };
    }
    let seq = ops.iter().map(|o| o.seq).max().unwrap_or(0) + 1;
    let key = idempotency_key(
        &record.merchant,
        &record.order_id,
        &format!("{}-{seq}", intent.kind.as_str()),
    );
    let op = OperationRecord {
        key: key.clone(),
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
    };
    let mut marked = record.clone();
    marked.in_flight = Some(key);
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
            };
        }
        Err(e) => {
            return Outcome::Refused {
                record,
                result: internal(e),
            }
        }
    }
    drive(state, marked, op, actor).await
}

fn concurrent() -> ResultCode {
    ResultCode::field(
        Kind::ConcurrentCommand,
        Field::OrderId,
        "was changed by another command at the same time; read it and retry.",
    )
}

fn internal(e: impl std::fmt::Display) -> ResultCode {
    tracing::error!(%e, "internal error");
    ResultCode::new(Kind::Internal, format!("Internal error: {e}"))
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
    match op.intent.kind {
        OperationKind::Capture => capture(state, record, op, actor).await,
        OperationKind::CancelCharge => cancel(state, record, op, actor).await,
        OperationKind::Refund => refund(state, record, op, actor).await,
        OperationKind::CompleteCheckout => complete(state, record, op, actor).await,
    }
}

/// The unit that finishes `op`: the order after `event` (if any), in-flight cleared, history.
fn finish_unit(
    state: &AppState,
    record: &OrderRecord,
    op: &OperationRecord,
    status: OperationStatus,
    result: &ResultCode,
    next: Option<kessai_core::Order>,
    actor: &Actor,
) -> (OrderRecord, Unit) {
    let mut after = record.clone();
    if let Some(order) = next {
        after.order = order;
    }
    after.in_flight = None;
    after.version += 1;
    after.updated_at = state.now_text();
    let unit = Unit::new(&record.merchant, &record.order_id)
        .with(Write::UpdateOrder(after.clone()))
        .with(Write::History(actor.entry(state, result)))
        .with(Write::FinishOperation(OperationEnd {
            key: op.key.clone(),
            status,
            result_code: result.code(),
            result_message: result.message.clone(),
            amazon_id: None,
            reported: actor.reports,
            at: state.now_text(),
        }));
    (after, unit)
}

fn with_amazon_id(mut unit: Unit, id: &str) -> Unit {
    for w in &mut unit.writes {
        if let Write::FinishOperation(end) = w {
            end.amazon_id = Some(id.to_owned());
        }
    }
    unit
}

/// Stores a finished operation; if that fails, the operation stays pending (outcome unknown).
async fn store_outcome(
    state: &AppState,
    unit: Unit,
    after: OrderRecord,
    op: &OperationRecord,
    status: OperationStatus,
    result: ResultCode,
) -> Outcome {
    if let Err(e) = state.store.apply(&unit).await {
        return Outcome::Unknown {
            result: store_failed(e),
        };
    }
    let mut finished = op.clone();
    finished.status = status;
    finished.result_code = Some(result.code());
    finished.result_message = Some(result.message.clone());
    for w in &unit.writes {
        if let Write::FinishOperation(end) = w {
            finished.amazon_id = end.amazon_id.clone();
            finished.reported = end.reported;
            finished.finished_at = Some(end.at.clone());
        }
    }
    match status {
        OperationStatus::Done => Outcome::Done {
            record: after,
            op: Box::new(finished),
            result,
        },
        _ => Outcome::Refused {
            record: after,
            result,
        },
    }
}

/// A definite refusal by Amazon Pay: the operation failed and the order is as it was.
async fn refused(
    state: &AppState,
    record: &OrderRecord,
    op: &OperationRecord,
    actor: &Actor,
    result: ResultCode,
) -> Outcome {
    let (after, unit) = finish_unit(
        state,
        record,
        op,
        OperationStatus::Failed,
        &result,
        None,
        actor,
    );
    store_outcome(state, unit, after, op, OperationStatus::Failed, result).await
}

/// Amazon carried out `op`, which moved the order by `event`.
async fn done(
    state: &AppState,
    record: &OrderRecord,
    op: &OperationRecord,
    actor: &Actor,
    event: Event,
    result: ResultCode,
    extra: impl FnOnce(&mut OrderRecord, Unit) -> Unit,
) -> Outcome {
    let next = match record.order.apply(event) {
        Ok(n) => n,
        Err(refusal) => {
            // Amazon and the gateway disagree: keep the operation pending for a person to see.
            tracing::error!(%refusal, order = %record.order_id, "Amazon's outcome does not fit the order");
            return Outcome::Unknown {
                result: unknown(format!(
                    "Amazon's outcome does not fit the order: {refusal}"
                )),
            };
        }
    };
    let (mut after, unit) = finish_unit(
        state,
        record,
        op,
        OperationStatus::Done,
        &result,
        Some(next),
        actor,
    );
    let unit = extra(&mut after, unit);
    // `extra` may change the order (ids); the unit must write the final record.
    let unit = Unit {
        writes: unit
            .writes
            .into_iter()
            .map(|w| match w {
                Write::UpdateOrder(_) => Write::UpdateOrder(after.clone()),
                other => other,
            })
            .collect(),
        ..unit
    };
    store_outcome(state, unit, after, op, OperationStatus::Done, result).await
}

fn charge_id(record: &OrderRecord) -> Result<String, ResultCode> {
    record
        .charge_id
        .clone()
        .ok_or_else(|| internal("an authorized order without a charge id"))
}

async fn capture(
    state: &AppState,
    record: OrderRecord,
    op: OperationRecord,
    actor: &Actor,
) -> Outcome {
    let charge_id = match charge_id(&record) {
        Ok(id) => id,
        Err(r) => return refused(state, &record, &op, actor, r).await,
    };
    let amount = op.intent.amount;
    let body = wire::CaptureChargeRequest {
        capture_amount: jpy(amount),
        soft_descriptor: None,
    };
    match state
        .amazon
        .capture_charge(&charge_id, &body, &op.key)
        .await
    {
        Ok(_) => {
            done(
                state,
                &record,
                &op,
                actor,
                Event::Captured { amount },
                ResultCode::success(),
                |_, u| u,
            )
            .await
        }
        Err(e) if e.outcome_unknown() => Outcome::Unknown {
            result: unknown(&e),
        },
        Err(e) => {
            // A capture refused because the charge is already captured (by this operation, whose
            // answer was lost before) is read back rather than reported as a failure.
            if let Ok(charge) = state.amazon.get_charge(&charge_id).await {
                if charge_view(&charge) == ChargeView::Captured
                    && charge
                        .capture_amount
                        .as_ref()
                        .and_then(|p| p.to_money().ok())
                        == Some(Money::jpy(amount))
                {
                    return done(
                        state,
                        &record,
                        &op,
                        actor,
                        Event::Captured { amount },
                        ResultCode::success(),
                        |_, u| u,
                    )
                    .await;
                }
            }
            refused(state, &record, &op, actor, amazon_failure(&e)).await
        }
    }
}

async fn cancel(
    state: &AppState,
    record: OrderRecord,
    op: OperationRecord,
    actor: &Actor,
) -> Outcome {
    let charge_id = match charge_id(&record) {
        Ok(id) => id,
        Err(r) => return refused(state, &record, &op, actor, r).await,
    };
    // Cancel Charge takes no idempotency key: read first, so a repeated cancel is recognised.
    match state.amazon.get_charge(&charge_id).await {
        Ok(c) if charge_view(&c) == ChargeView::Canceled => {
            return done(
                state,
                &record,
                &op,
                actor,
                Event::Canceled,
                ResultCode::success(),
                |_, u| u,
            )
            .await
        }
        Ok(_) => {}
        Err(e) if e.outcome_unknown() => {
            return Outcome::Unknown {
                result: unknown(&e),
            }
        }
        Err(e) => return refused(state, &record, &op, actor, amazon_failure(&e)).await,
    }
    let body = wire::CancelChargeRequest {
        cancellation_reason: op
            .intent
            .note
            .clone()
            .unwrap_or_else(|| "Canceled by the merchant".into()),
    };
    match state.amazon.cancel_charge(&charge_id, &body).await {
        Ok(_) => {
            done(
                state,
                &record,
                &op,
                actor,
                Event::Canceled,
                ResultCode::success(),
                |_, u| u,
            )
            .await
        }
        Err(e) if e.outcome_unknown() => Outcome::Unknown {
            result: unknown(&e),
        },
        Err(e) => refused(state, &record, &op, actor, amazon_failure(&e)).await,
    }
}

async fn refund(
    state: &AppState,
    record: OrderRecord,
    op: OperationRecord,
    actor: &Actor,
) -> Outcome {
    let charge_id = match charge_id(&record) {
        Ok(id) => id,
        Err(r) => return refused(state, &record, &op, actor, r).await,
    };
    let amount = op.intent.amount;
    let body = wire::CreateRefundRequest {
        charge_id,
        refund_amount: jpy(amount),
        soft_descriptor: None,
    };
    let created = match state.amazon.create_refund(&body, &op.key).await {
        Ok(r) => r,
        Err(e) if e.outcome_unknown() => {
            return Outcome::Unknown {
                result: unknown(&e),
            }
        }
        Err(e) => return refused(state, &record, &op, actor, amazon_failure(&e)).await,
    };
    let seq = match state
        .store
        .refunds(&record.merchant, &record.order_id)
        .await
    {
        Ok(r) => i64::try_from(r.len()).unwrap_or(i64::MAX) + 1,
        Err(e) => {
            return Outcome::Unknown {
                result: store_failed(e),
            }
        }
    };
    let row = RefundRecord {
        seq,
        amazon_refund_id: created.refund_id.clone(),
        amount,
        state: created.status_details.state.to_string(),
        created_at: state.now_text(),
    };
    done(
        state,
        &record,
        &op,
        actor,
        Event::RefundAccepted { amount },
        ResultCode::success(),
        |_, u| with_amazon_id(u.with(Write::Refund(row)), &created.refund_id),
    )
    .await
}

/// Complete Checkout Session: the buyer's authorization. Also used to finish an order whose
/// buyer confirmed at Amazon but never came back.
async fn complete(
    state: &AppState,
    record: OrderRecord,
    op: OperationRecord,
    actor: &Actor,
) -> Outcome {
    let Some(cs_id) = record.checkout_session_id.clone() else {
        return refused(
            state,
            &record,
            &op,
            actor,
            internal("an order without a checkout session"),
        )
        .await;
    };
    let body = wire::CompleteCheckoutSessionRequest {
        charge_amount: jpy(op.intent.amount),
        total_order_amount: None,
    };
    let completed = match state
        .amazon
        .complete_checkout_session(&cs_id, &body, &op.key)
        .await
    {
        Ok(cs) => cs,
        Err(e) if e.outcome_unknown() => {
            return Outcome::Unknown {
                result: unknown(&e),
            }
        }
        Err(AmazonPayError::Api { reason_code, .. })
            if matches!(
                ErrorCode::parse(&reason_code),
                ErrorCode::CheckoutSessionCanceled | ErrorCode::InvalidCheckoutSessionStatus
            ) =>
        {
            // Read the session before deciding: an Open session means "not yet", a Completed
            // one is a late duplicate of a complete that worked.
            match state.amazon.get_checkout_session(&cs_id).await {
                Ok(cs) => match session_view(&cs) {
                    SessionView::Completed => cs,
                    SessionView::Canceled { reason } => {
                        return closed_at_amazon(state, &record, &op, actor, reason).await
                    }
                    SessionView::Open { buyer_url } => {
                        return not_yet(state, &record, &op, actor, buyer_url).await
                    }
                    SessionView::Unknown(s) => {
                        return Outcome::Unknown {
                            result: unknown(format!("the checkout session is {s}")),
                        }
                    }
                },
                Err(e) if e.outcome_unknown() => {
                    return Outcome::Unknown {
                        result: unknown(&e),
                    }
                }
                Err(e) => return refused(state, &record, &op, actor, amazon_failure(&e)).await,
            }
        }
        Err(e) => {
            let result = amazon_failure(&e);
            return declined(state, &record, &op, actor, result).await;
        }
    };
    let Some(charge_id) = completed.charge_id.clone() else {
        return Outcome::Unknown {
            result: unknown("the completed checkout session has no chargeId"),
        };
    };
    let charge = match state.amazon.get_charge(&charge_id).await {
        Ok(c) => c,
        Err(e) => {
            return Outcome::Unknown {
                result: unknown(&e),
            }
        }
    };
    let amount = record.order.amount;
    let (event, result) = match charge_view(&charge) {
        ChargeView::Authorized => (Event::Authorized { amount }, ResultCode::success()),
        ChargeView::Captured => (
            Event::AuthorizedAndCaptured { amount },
            ResultCode::success(),
        ),
        ChargeView::Declined { reason } => (
            Event::Declined,
            ResultCode::new(
                Kind::AmazonDeclined,
                format!("Amazon Pay declined the authorization ({reason})."),
            ),
        ),
        other => {
            return Outcome::Unknown {
                result: unknown(format!(
                    "the charge is {other:?}; expected Authorized or Captured"
                )),
            }
        }
    };
    let cp_id = completed.charge_permission_id.clone();
    done(state, &record, &op, actor, event, result, |after, u| {
        after.charge_permission_id = cp_id.or(after.charge_permission_id.take());
        after.charge_id = Some(charge_id);
        u
    })
    .await
}

async fn declined(
    state: &AppState,
    record: &OrderRecord,
    op: &OperationRecord,
    actor: &Actor,
    result: ResultCode,
) -> Outcome {
    let next = match record.order.apply(Event::Declined) {
        Ok(n) => n,
        Err(_) => return refused(state, record, op, actor, result).await,
    };
    let (after, unit) = finish_unit(
        state,
        record,
        op,
        OperationStatus::Failed,
        &result,
        Some(next),
        actor,
    );
    store_outcome(state, unit, after, op, OperationStatus::Failed, result).await
}

/// The checkout session was closed at Amazon (by the buyer, by expiry, by a decline).
async fn closed_at_amazon(
    state: &AppState,
    record: &OrderRecord,
    op: &OperationRecord,
    actor: &Actor,
    reason: Option<ReasonCode>,
) -> Outcome {
    let (event, result) = match &reason {
        Some(ReasonCode::BuyerCanceled) => (
            Event::BuyerCanceled,
            ResultCode::new(
                Kind::AmazonBuyerCanceled,
                "The buyer canceled at Amazon Pay.",
            ),
        ),
        Some(ReasonCode::Expired) => (
            Event::Expired,
            ResultCode::new(
                Kind::AmazonCheckoutExpired,
                "The Amazon Pay checkout session expired.",
            ),
        ),
        _ => (
            Event::Declined,
            ResultCode::new(
                Kind::AmazonDeclined,
                format!(
                    "Amazon Pay declined the payment ({}).",
                    reason
                        .as_ref()
                        .map(ReasonCode::as_str)
                        .unwrap_or("no reason given")
                ),
            ),
        ),
    };
    let next = match record.order.apply(event) {
        Ok(n) => n,
        Err(_) => return refused(state, record, op, actor, result).await,
    };
    let (after, unit) = finish_unit(
        state,
        record,
        op,
        OperationStatus::NotDone,
        &result,
        Some(next),
        actor,
    );
    store_outcome(state, unit, after, op, OperationStatus::NotDone, result).await
}

/// The session is still Open: the buyer has not confirmed at Amazon. Nothing changes but the
/// operation, which is closed as not done (a later attempt gets a new one).
async fn not_yet(
    state: &AppState,
    record: &OrderRecord,
    op: &OperationRecord,
    actor: &Actor,
    buyer_url: Option<String>,
) -> Outcome {
    let result = ResultCode::new(
        Kind::AuthorizationInProgress,
        "The buyer has not confirmed the payment at Amazon Pay yet.",
    );
    let (after, unit) = finish_unit(
        state,
        record,
        op,
        OperationStatus::NotDone,
        &result,
        None,
        actor,
    );
    match store_outcome(state, unit, after, op, OperationStatus::NotDone, result).await {
        Outcome::Refused { record, result } => Outcome::NotYet {
            record,
            result,
            buyer_url,
        },
        other => other,
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
    if record.order.state == OrderState::Authorizing && !asked_checkout {
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
