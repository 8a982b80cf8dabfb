//! ReAuthorize: a charge against the recurring (随時) consent of `originalOrderId`, as a new
//! order (`orderId`) that then lives the one-time life (Capture, Cancel, Refund, GetAddress).
//! The new order is stored with its pending charge in one unit of work before Amazon Pay is
//! asked; a retry of a ReAuthorize whose answer was lost gets the charge's real outcome.

use super::authorize::platform_id;
use crate::app::AppState;
use crate::operations::{self, Outcome};
use crate::params::Params;
use crate::pipeline::{self, Caller};
use crate::reply::{Answer, Center, Reply};
use crate::util::history;
use crate::util::{internal, store_failure};
use kessai_core::consent::MAX_RECURRING_AMOUNT;
use kessai_core::{
    Field, Intent, Kind, OperationKind, OperationStatus, Order, OrderId, OrderState, Refusal,
    ResultCode, Yen,
};
use kessai_store::{AmazonOptions, OrderRecord, StoreError, Unit, Write};

#[derive(Debug, Clone)]
pub struct ReAuthorize {
    pub order_id: OrderId,
    pub original_order_id: OrderId,
    pub amount: Yen,
    pub with_capture: bool,
    pub note_to_buyer: Option<String>,
    pub platform_id: Option<String>,
    pub authorize_push_url: Option<String>,
    pub capture_push_url: Option<String>,
    pub cancel_push_url: Option<String>,
}

impl ReAuthorize {
    pub fn parse(p: &Params<'_>) -> Result<ReAuthorize, ResultCode> {
        Ok(ReAuthorize {
            order_id: p.order_id(Field::OrderId)?,
            original_order_id: p.order_id(Field::OriginalOrderId)?,
            amount: p
                .amount(Field::Amount, MAX_RECURRING_AMOUNT)?
                .ok_or_else(|| {
                    ResultCode::field(Kind::FieldMissing, Field::Amount, "is required.")
                })?,
            with_capture: p.flag(Field::WithCapture)?.unwrap_or(false),
            note_to_buyer: p.text(Field::NoteToBuyer, 255)?,
            platform_id: platform_id(p)?,
            authorize_push_url: p.url(Field::AuthorizePushUrl)?,
            capture_push_url: p.url(Field::CapturePushUrl)?,
            cancel_push_url: p.url(Field::CancelPushUrl)?,
        })
    }
}

fn duplicate(order_id: &OrderId) -> ResultCode {
    ResultCode::field(
        Kind::DuplicateOrderId,
        Field::OrderId,
        format!("{order_id} was already used."),
    )
}

fn unknown_original(id: &OrderId) -> ResultCode {
    ResultCode::field(
        Kind::UnknownOrderId,
        Field::OriginalOrderId,
        format!("{id} is not an order of this merchant."),
    )
}

/// `centerOrderId` (the consent's charge permission) and `centerTransactionId` (the charge).
fn center(state: &AppState, record: &OrderRecord) -> Center {
    Center {
        at: state.now(),
        order_id: record.charge_permission_id.clone(),
        transaction_id: record.charge_id.clone(),
    }
}

pub async fn run(state: &AppState, caller: &Caller, cmd: ReAuthorize) -> Answer {
    let ccid = &caller.merchant.ccid;
    let order_id = cmd.order_id.clone();
    if cmd.order_id == cmd.original_order_id {
        return Answer::about(&order_id, duplicate(&order_id), Reply::Nothing);
    }
    // The original first, then the new order: nobody locks them the other way round.
    let _original_guard = state.locks.lock(ccid, &cmd.original_order_id).await;
    let _guard = state.locks.lock(ccid, &order_id).await;
    match state.store.order(ccid, &order_id).await {
        Ok(None) => {}
        Ok(Some(existing)) => return retried(state, caller, &cmd, existing).await,
        Err(e) => return Answer::about(&order_id, store_failure(e), Reply::Nothing),
    }
    let original = match state.store.order(ccid, &cmd.original_order_id).await {
        Ok(Some(o)) => o,
        Ok(None) => {
            return Answer::about(
                &order_id,
                unknown_original(&cmd.original_order_id),
                Reply::Nothing,
            )
        }
        Err(e) => return Answer::about(&order_id, store_failure(e), Reply::Nothing),
    };
    // Whatever is unresolved on the consent order (a Terminate whose answer was lost) first.
    let original = match operations::settle(state, original).await {
        Ok(o) => o,
        Err(result) => return Answer::about(&order_id, result, Reply::Nothing),
    };
    let refusal = match original.consent {
        None => Some(Refusal::NotRecurring),
        Some(c) => c.plan_charge().err(),
    };
    if let Some(refusal) = refusal {
        let result = ResultCode::field(
            ResultCode::from(refusal).kind,
            Field::OriginalOrderId,
            format!("cannot be charged: {refusal}."),
        );
        caller
            .record_refusal(state, &cmd.original_order_id, &result)
            .await;
        return Answer::about(&order_id, result, Reply::Nothing);
    }
    let now = state.now_text();
    let record = OrderRecord {
        merchant: ccid.clone(),
        order_id: order_id.clone(),
        public_ref: crate::util::buyer_ref(&state.ref_key, ccid, &order_id),
        dummy: caller.dummy,
        order: Order {
            state: OrderState::Authorizing,
            ..Order::new(cmd.amount)
        },
        with_capture: cmd.with_capture,
        note_to_buyer: cmd.note_to_buyer.clone().or(original.note_to_buyer.clone()),
        success_url: None,
        cancel_url: None,
        error_url: None,
        authorize_push_url: cmd
            .authorize_push_url
            .clone()
            .or(original.authorize_push_url.clone()),
        capture_push_url: cmd
            .capture_push_url
            .clone()
            .or(original.capture_push_url.clone()),
        cancel_push_url: cmd
            .cancel_push_url
            .clone()
            .or(original.cancel_push_url.clone()),
        checkout_session_id: None,
        charge_permission_id: original.charge_permission_id.clone(),
        charge_id: None,
        in_flight: None,
        consent: None,
        original_order_id: Some(original.order_id.clone()),
        confirm_screen: Default::default(),
        options: AmazonOptions {
            platform_id: cmd.platform_id.clone(),
            ..Default::default()
        },
        version: 1,
        created_at: now.clone(),
        updated_at: now,
    };
    let intent = Intent {
        kind: OperationKind::ChargeConsent,
        amount: cmd.amount,
        note: None,
    };
    let outcome = match operations::begin_with_order(state, record, intent, &caller.actor()).await {
        Ok(o) => o,
        Err(StoreError::Duplicate) => {
            return Answer::about(&order_id, duplicate(&order_id), Reply::Nothing)
        }
        Err(e) => return Answer::about(&order_id, store_failure(e), Reply::Nothing),
    };
    let answer = match outcome {
        Outcome::Done { record, op, result } => {
            let reply = if result.is_success() {
                Reply::Center(center(state, &record))
            } else {
                Reply::Nothing
            };
            Answer::about(&order_id, result, reply).reporting(&op)
        }
        Outcome::Refused {
            result,
            op: Some(op),
            ..
        } => Answer::about(&order_id, result, Reply::Nothing).reporting(&op),
        Outcome::Refused { result, .. } | Outcome::NotYet { result, .. } => {
            Answer::about(&order_id, result, Reply::Nothing)
        }
        Outcome::Unknown { result } => Answer::about(&order_id, result, Reply::Nothing),
    };
    pipeline::mark_reported(state, &answer).await;
    answer
}

/// The new order exists: a retry of this ReAuthorize whose answer never arrived gets the
/// charge's outcome once; anything else is a duplicate order id.
async fn retried(
    state: &AppState,
    caller: &Caller,
    cmd: &ReAuthorize,
    existing: OrderRecord,
) -> Answer {
    let order_id = &cmd.order_id;
    let same = existing.original_order_id.as_ref() == Some(&cmd.original_order_id)
        && existing.order.amount == cmd.amount;
    if !same {
        return Answer::about(order_id, duplicate(order_id), Reply::Nothing);
    }
    let existing = match operations::settle(state, existing).await {
        Ok(r) => r,
        Err(result) => return Answer::about(order_id, result, Reply::Nothing),
    };
    let ops = match state.store.operations(&existing.merchant, order_id).await {
        Ok(ops) => ops,
        Err(e) => return Answer::about(order_id, store_failure(e), Reply::Nothing),
    };
    let Some(op) = ops.into_iter().find(|o| {
        o.intent.kind == OperationKind::ChargeConsent
            && !o.reported
            && o.status != OperationStatus::Pending
    }) else {
        return Answer::about(order_id, duplicate(order_id), Reply::Nothing);
    };
    let result = ResultCode::parse(
        op.result_code.as_deref().unwrap_or_default(),
        op.result_message.clone().unwrap_or_default(),
    )
    .unwrap_or_else(|| internal(format!("operation {} has no result code", op.key)));
    let entry = history(
        caller.command.as_str(),
        &caller.params_text,
        &result,
        state.now_text(),
    );
    let unit = Unit::new(&existing.merchant, order_id).with(Write::History(entry));
    if let Err(e) = state.store.apply(&unit).await {
        return Answer::about(order_id, store_failure(e), Reply::Nothing);
    }
    let reply = if result.is_success() {
        Reply::Center(center(state, &existing))
    } else {
        Reply::Nothing
    };
    let answer = Answer::about(order_id, result, reply).reporting(&op);
    pipeline::mark_reported(state, &answer).await;
    answer
}
