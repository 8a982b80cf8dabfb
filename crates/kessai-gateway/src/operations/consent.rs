//! The Amazon Pay calls of recurring consents and re-authorizations: a charge against a consent
//! (ReAuthorize), a new authorization replacing the old one (UpdateAuthorize), and closing a
//! consent (Terminate). Each is sent with the operation's idempotency key, or reads Amazon's state
//! first where Amazon takes no key, so that resolving a lost answer never acts twice.

use super::calls::{charge_view, jpy, ChargeView};
use super::ending::{Ending, Step};
use super::{internal, lost, Outcome};
use crate::util::amazon_failure;
use kessai_amazonpay::wire::{self, ChargePermissionState};
use kessai_core::{ConsentEvent, Event, Kind, Money, OperationStatus, ResultCode, Yen};
use kessai_store::{Unit, Write};

fn declined(reason: &str) -> ResultCode {
    ResultCode::new(
        Kind::AmazonDeclined,
        format!("Amazon Pay declined the authorization ({reason})."),
    )
}

fn charge_request(
    step: &Step<'_>,
    amount: Yen,
    capture_now: bool,
    pending: bool,
) -> Result<wire::CreateChargeRequest, ResultCode> {
    let cp = step
        .record
        .charge_permission_id
        .clone()
        .ok_or_else(|| internal("an order without a charge permission"))?;
    Ok(wire::CreateChargeRequest {
        charge_permission_id: cp,
        charge_amount: jpy(amount),
        capture_now: Some(capture_now),
        soft_descriptor: None,
        can_handle_pending_authorization: Some(pending),
        merchant_metadata: Some(wire::MerchantMetadataRequest {
            merchant_reference_id: Some(step.record.order_id.to_string()),
            merchant_store_name: None,
            note_to_buyer: step.record.note_to_buyer.clone(),
            custom_information: None,
        }),
    })
}

/// ReAuthorize: a charge of a new order against the consent's charge permission.
pub async fn charge(step: Step<'_>) -> Outcome {
    let amount = step.op.intent.amount;
    let body = match charge_request(&step, amount, step.record.with_capture, true) {
        Ok(b) => b,
        Err(r) => return step.end(Ending::failed(r)).await,
    };
    let amazon = step.amazon();
    let charge = match amazon.create_charge(&body, &step.op.key).await {
        Ok(c) => c,
        Err(e) if e.outcome_unknown() => return lost(&e),
        // Declined, or refused (the consent closed at Amazon, the period's limit reached): the
        // new order ends declined; nothing is held.
        Err(e) => {
            let ending =
                Ending::moved(OperationStatus::Failed, Event::Declined, amazon_failure(&e));
            return step.end(ending).await;
        }
    };
    let id = charge.charge_id.clone();
    let ending = match charge_view(&charge) {
        ChargeView::Authorized => Ending::done(Event::Authorized { amount }),
        ChargeView::Captured => Ending::done(Event::AuthorizedAndCaptured { amount }),
        ChargeView::Pending => Ending::moved(
            OperationStatus::Done,
            Event::AuthorizationPending,
            crate::buyer::pending_result(),
        ),
        ChargeView::Declined { reason } => {
            Ending::moved(OperationStatus::Done, Event::Declined, declined(&reason))
        }
        other => return lost(format!("the new charge is {other:?}")),
    };
    step.end(ending.with_ids(None, id)).await
}

/// UpdateAuthorize after authorization. Amazon Pay counts an open authorization against the
/// charge permission's balance, so a new one cannot stand beside the old: the new amount is
/// checked against the balance first (nothing changes if it does not fit), the old
/// authorization is released, the new amount authorized; if Amazon declines it, the old amount is
/// authorized again, so the order stays capturable (`docs/decisions.md`).
pub async fn reauthorize(step: Step<'_>) -> Outcome {
    let amazon = step.amazon();
    let new_amount = step.op.intent.amount;
    let old_amount = step.record.order.authorized;
    let Some(old_charge) = step.record.charge_id.clone() else {
        return step
            .end(Ending::failed(internal(
                "an authorized order without a charge",
            )))
            .await;
    };
    let Some(cp_id) = step.record.charge_permission_id.clone() else {
        return step
            .end(Ending::failed(internal(
                "an order without a charge permission",
            )))
            .await;
    };
    // Where the old charge stands tells how far an earlier attempt of this operation got.
    let old = match amazon.get_charge(&old_charge).await {
        Ok(c) => charge_view(&c),
        Err(e) if e.outcome_unknown() => return lost(&e),
        Err(e) => return step.end(Ending::failed(amazon_failure(&e))).await,
    };
    match old {
        ChargeView::Authorized => {
            let cp = match amazon.get_charge_permission(&cp_id).await {
                Ok(cp) => cp,
                Err(e) if e.outcome_unknown() => return lost(&e),
                Err(e) => return step.end(Ending::failed(amazon_failure(&e))).await,
            };
            if cp.status_details.state != ChargePermissionState::Chargeable {
                let r = ResultCode::new(
                    Kind::AmazonRefused,
                    format!(
                        "The order's charge permission is {}; the authorization is unchanged.",
                        cp.status_details.state
                    ),
                );
                return step.end(Ending::failed(r)).await;
            }
            let balance = cp
                .limits
                .as_ref()
                .and_then(|l| l.amount_balance.as_ref())
                .and_then(|p| p.to_money().ok());
            if let Some(balance) = balance {
                if Money::jpy(new_amount).minor() > balance.minor() {
                    let r = ResultCode::field(
                        Kind::FieldAboveMaximum,
                        kessai_core::Field::Amount,
                        format!(
                            "is more than Amazon Pay allows on this order ({} yen left of the buyer's approval); the authorization is unchanged.",
                            balance.minor()
                        ),
                    );
                    return step.end(Ending::failed(r)).await;
                }
            }
            let body = wire::CancelChargeRequest {
                cancellation_reason: "UpdateAuthorize: replaced by a new authorization".into(),
            };
            match amazon.cancel_charge(&old_charge, &body).await {
                Ok(_) => {}
                Err(e) if e.outcome_unknown() => return lost(&e),
                Err(e) => return step.end(Ending::failed(amazon_failure(&e))).await,
            }
        }
        ChargeView::Canceled => {}
        other => {
            let r = ResultCode::new(
                Kind::AmazonRefused,
                format!("The authorization at Amazon Pay is {other:?}; it cannot be replaced."),
            );
            return step.end(Ending::failed(r)).await;
        }
    }
    state_after_release(step, new_amount, old_amount).await
}

/// The note of a `Reauthorize` operation whose new amount was declined: the old amount is being
/// authorized again, under the restore key. A resolver goes straight on with that.
const RESTORING: &str = "restoring";

fn restoring_note(failure: &ResultCode) -> String {
    format!("{RESTORING} {}\n{}", failure.code(), failure.message)
}

fn restoring_failure(note: Option<&str>) -> Option<ResultCode> {
    let rest = note?.strip_prefix(RESTORING)?.strip_prefix(' ')?;
    let (code, message) = rest.split_once('\n')?;
    ResultCode::parse(code, message.to_owned())
}

async fn state_after_release(step: Step<'_>, new_amount: Yen, old_amount: Yen) -> Outcome {
    let amazon = step.amazon();
    if let Some(failure) = restoring_failure(step.op.intent.note.as_deref()) {
        return restore(step, old_amount, failure).await;
    }
    let body = match charge_request(&step, new_amount, false, false) {
        Ok(b) => b,
        Err(r) => return step.end(Ending::failed(r)).await,
    };
    let failure = match amazon.create_charge(&body, &step.op.key).await {
        Ok(c) if charge_view(&c) == ChargeView::Authorized => {
            let ending = Ending::done(Event::Reauthorized { amount: new_amount });
            return step.end(ending.with_ids(None, c.charge_id)).await;
        }
        Ok(c) => match charge_view(&c) {
            ChargeView::Declined { reason } => declined(&reason),
            other => return lost(format!("the new authorization is {other:?}")),
        },
        Err(e) if e.outcome_unknown() => return lost(&e),
        Err(e) => amazon_failure(&e),
    };
    // Recorded before the old amount is asked for again: a resolver must not ask for the new
    // amount a second time (Amazon may not replay a refusal under the same key), but go on here.
    let unit = Unit::new(&step.record.merchant, &step.record.order_id).with(Write::NoteOperation {
        key: step.op.key.clone(),
        note: restoring_note(&failure),
    });
    if let Err(e) = step.state.store.apply(&unit).await {
        return lost(format!("the gateway could not record the decline: {e}"));
    }
    restore(step, old_amount, failure).await
}

/// Authorizes the old amount again after the new one was declined.
async fn restore(step: Step<'_>, old_amount: Yen, failure: ResultCode) -> Outcome {
    let amazon = step.amazon();
    let body = match charge_request(&step, old_amount, false, false) {
        Ok(b) => b,
        Err(r) => return step.end(Ending::failed(r)).await,
    };
    let restore_key = crate::util::idempotency_key(
        &step.record.merchant,
        &step.record.order_id,
        &format!("{}-restore", step.op.key),
    );
    match amazon.create_charge(&body, &restore_key).await {
        Ok(c) if charge_view(&c) == ChargeView::Authorized => {
            let result = ResultCode::new(
                failure.kind,
                format!(
                    "{} The new amount was not authorized; the previous amount ({} yen) is authorized again and can be captured.",
                    failure.message,
                    old_amount.get()
                ),
            );
            let ending = Ending::moved(
                OperationStatus::Failed,
                Event::Reauthorized { amount: old_amount },
                result,
            );
            step.end(ending.with_ids(None, c.charge_id)).await
        }
        Err(e) if e.outcome_unknown() => lost(&e),
        other => {
            let why = match other {
                Ok(c) => format!("{:?}", charge_view(&c)),
                Err(e) => amazon_failure(&e).message,
            };
            let result = ResultCode::new(
                failure.kind,
                format!(
                    "{} The previous authorization was released and could not be renewed ({why}); nothing is held and the order is canceled.",
                    failure.message
                ),
            );
            step.end(Ending::moved(
                OperationStatus::Failed,
                Event::Canceled,
                result,
            ))
            .await
        }
    }
}

/// Terminate: close the consent's charge permission (read first: Close takes no key).
pub async fn close(step: Step<'_>) -> Outcome {
    let done = || {
        Ending::unmoved(OperationStatus::Done, ResultCode::success())
            .with_consent(ConsentEvent::Terminated)
    };
    let Some(cp_id) = step.record.charge_permission_id.clone() else {
        // The buyer never agreed: there is nothing at Amazon Pay to close.
        return step.end(done()).await;
    };
    let amazon = step.amazon();
    match amazon.get_charge_permission(&cp_id).await {
        Ok(cp) if cp.status_details.state == ChargePermissionState::Closed => {
            return step.end(done()).await
        }
        Ok(_) => {}
        Err(e) if e.outcome_unknown() => return lost(&e),
        Err(e) => return step.end(Ending::failed(amazon_failure(&e))).await,
    }
    let body = wire::CloseChargePermissionRequest {
        closure_reason: step
            .op
            .intent
            .note
            .clone()
            .unwrap_or_else(|| "Terminated by the merchant".into()),
        cancel_pending_charges: Some(false),
    };
    match amazon.close_charge_permission(&cp_id, &body).await {
        Ok(_) => step.end(done()).await,
        Err(e) if e.outcome_unknown() => lost(&e),
        Err(e) => step.end(Ending::failed(amazon_failure(&e))).await,
    }
}
