//! The Amazon Pay calls of the operation log, each sent with the operation's idempotency key and
//! read into an [`Ending`].

use super::ending::{Ending, Step};
use super::{internal, lost, store_failed, Outcome};
use crate::util::amazon_failure;
use kessai_amazonpay::wire::{
    self, ChargeState, CheckoutSessionState, ErrorCode, Price, ReasonCode,
};
use kessai_amazonpay::AmazonPayError;
use kessai_core::{ConsentEvent, Event, Kind, Money, OperationStatus, ResultCode, Yen};
use kessai_store::RefundRecord;

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
pub(super) enum ChargeView {
    Pending,
    Authorized,
    Captured,
    Canceled,
    Declined { reason: String },
    Other(String),
}

pub(super) fn charge_view(c: &wire::Charge) -> ChargeView {
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

pub(super) fn jpy(y: Yen) -> Price {
    Price::from_money(Money::jpy(y))
}

fn charge_id(step: &Step<'_>) -> Result<String, ResultCode> {
    step.record
        .charge_id
        .clone()
        .ok_or_else(|| internal("an authorized order without a charge id"))
}

pub async fn capture(step: Step<'_>) -> Outcome {
    let charge_id = match charge_id(&step) {
        Ok(id) => id,
        Err(r) => return step.end(Ending::failed(r)).await,
    };
    let amount = step.op.intent.amount;
    let body = wire::CaptureChargeRequest {
        capture_amount: jpy(amount),
        soft_descriptor: None,
    };
    let amazon = &step.state.amazon;
    match amazon.capture_charge(&charge_id, &body, &step.op.key).await {
        Ok(_) => step.end(Ending::done(Event::Captured { amount })).await,
        Err(e) if e.outcome_unknown() => lost(&e),
        Err(e) => {
            // A capture refused because the charge is already captured (by this operation, whose
            // answer was lost before) is read back rather than reported as a failure.
            if let Ok(charge) = amazon.get_charge(&charge_id).await {
                let captured = charge
                    .capture_amount
                    .as_ref()
                    .and_then(|p| p.to_money().ok());
                if charge_view(&charge) == ChargeView::Captured
                    && captured == Some(Money::jpy(amount))
                {
                    return step.end(Ending::done(Event::Captured { amount })).await;
                }
            }
            step.end(Ending::failed(amazon_failure(&e))).await
        }
    }
}

pub async fn cancel(step: Step<'_>) -> Outcome {
    let charge_id = match charge_id(&step) {
        Ok(id) => id,
        Err(r) => return step.end(Ending::failed(r)).await,
    };
    let amazon = &step.state.amazon;
    // Cancel Charge takes no idempotency key: read first, so a repeated cancel is recognised.
    match amazon.get_charge(&charge_id).await {
        Ok(c) if charge_view(&c) == ChargeView::Canceled => {
            return step.end(Ending::done(Event::Canceled)).await
        }
        Ok(_) => {}
        Err(e) if e.outcome_unknown() => return lost(&e),
        Err(e) => return step.end(Ending::failed(amazon_failure(&e))).await,
    }
    let body = wire::CancelChargeRequest {
        cancellation_reason: step
            .op
            .intent
            .note
            .clone()
            .unwrap_or_else(|| "Canceled by the merchant".into()),
    };
    match amazon.cancel_charge(&charge_id, &body).await {
        Ok(_) => step.end(Ending::done(Event::Canceled)).await,
        Err(e) if e.outcome_unknown() => lost(&e),
        Err(e) => step.end(Ending::failed(amazon_failure(&e))).await,
    }
}

pub async fn refund(step: Step<'_>) -> Outcome {
    let charge_id = match charge_id(&step) {
        Ok(id) => id,
        Err(r) => return step.end(Ending::failed(r)).await,
    };
    let amount = step.op.intent.amount;
    let body = wire::CreateRefundRequest {
        charge_id,
        refund_amount: jpy(amount),
        soft_descriptor: None,
    };
    let state = step.state;
    let created = match state.amazon.create_refund(&body, &step.op.key).await {
        Ok(r) => r,
        Err(e) if e.outcome_unknown() => return lost(&e),
        Err(e) => return step.end(Ending::failed(amazon_failure(&e))).await,
    };
    let seq = match state
        .store
        .refunds(&step.record.merchant, &step.record.order_id)
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
        amazon_refund_id: created.refund_id,
        amount,
        state: created.status_details.state.to_string(),
        created_at: state.now_text(),
    };
    step.end(Ending::done(Event::RefundAccepted { amount }).with_refund(row))
        .await
}

/// Complete Checkout Session: the buyer's authorization. Also used to finish an order whose
/// buyer confirmed at Amazon but never came back.
pub async fn complete(step: Step<'_>) -> Outcome {
    let Some(cs_id) = step.record.checkout_session_id.clone() else {
        let ending = Ending::failed(internal("an order without a checkout session"));
        return step.end(ending).await;
    };
    let body = wire::CompleteCheckoutSessionRequest {
        charge_amount: jpy(step.op.intent.amount),
        total_order_amount: None,
    };
    let amazon = &step.state.amazon;
    let completed = match amazon
        .complete_checkout_session(&cs_id, &body, &step.op.key)
        .await
    {
        Ok(cs) => cs,
        Err(e) if e.outcome_unknown() => return lost(&e),
        Err(AmazonPayError::Api { reason_code, .. })
            if matches!(
                ErrorCode::parse(&reason_code),
                ErrorCode::CheckoutSessionCanceled | ErrorCode::InvalidCheckoutSessionStatus
            ) =>
        {
            // Read the session before deciding: an Open session means "not yet", a Completed
            // one is a late duplicate of a complete that worked.
            match amazon.get_checkout_session(&cs_id).await {
                Ok(cs) => match session_view(&cs) {
                    SessionView::Completed => cs,
                    SessionView::Canceled { reason } => {
                        return step.end(closed_at_amazon(reason)).await
                    }
                    SessionView::Open { buyer_url } => return not_yet(step, buyer_url).await,
                    SessionView::Unknown(s) => return lost(format!("the checkout session is {s}")),
                },
                Err(e) if e.outcome_unknown() => return lost(&e),
                Err(e) => return step.end(Ending::failed(amazon_failure(&e))).await,
            }
        }
        Err(e) => {
            // Amazon refused to complete: the checkout is over, declined.
            let ending =
                Ending::moved(OperationStatus::Failed, Event::Declined, amazon_failure(&e));
            return step.end(ending).await;
        }
    };
    let consent = step.record.consent;
    if consent.is_some_and(|c| !c.with_authorization) {
        // Consent only: Amazon made the charge permission, no charge.
        let Some(cp_id) = completed.charge_permission_id.clone() else {
            return lost("the completed checkout session has no chargePermissionId");
        };
        let ending = Ending::done(Event::ConsentGiven)
            .with_consent(ConsentEvent::BuyerAgreed)
            .with_permission(cp_id);
        return step.end(ending).await;
    }
    let Some(charge_id) = completed.charge_id.clone() else {
        return lost("the completed checkout session has no chargeId");
    };
    let charge = match amazon.get_charge(&charge_id).await {
        Ok(c) => c,
        Err(e) => return lost(&e),
    };
    let amount = step.record.order.amount;
    let ending = match charge_view(&charge) {
        ChargeView::Authorized => Ending::done(Event::Authorized { amount }),
        ChargeView::Captured => Ending::done(Event::AuthorizedAndCaptured { amount }),
        // Amazon decides later: the order waits, the buyer and the merchant are told "pending".
        ChargeView::Pending => Ending::moved(
            OperationStatus::Done,
            Event::AuthorizationPending,
            crate::buyer::pending_result(),
        ),
        ChargeView::Declined { reason } => Ending::moved(
            OperationStatus::Done,
            Event::Declined,
            ResultCode::new(
                Kind::AmazonDeclined,
                format!("Amazon Pay declined the authorization ({reason})."),
            ),
        ),
        other => {
            return lost(format!(
                "the charge is {other:?}; expected Authorized or Captured"
            ))
        }
    };
    // The buyer agreed to a recurring consent, whatever its first charge came to (a declined first
    // charge leaves the consent waiting: it cannot be charged).
    let ending = match consent {
        Some(_) if ending.agreed() => ending.with_consent(ConsentEvent::BuyerAgreed),
        _ => ending,
    };
    step.end(ending.with_ids(completed.charge_permission_id.clone(), charge_id))
        .await
}

/// The checkout session was closed at Amazon (by the buyer, by expiry, by a decline).
fn closed_at_amazon(reason: Option<ReasonCode>) -> Ending {
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
    Ending::moved(OperationStatus::NotDone, event, result)
}

/// The session is still Open: the buyer has not confirmed at Amazon. Nothing changes but the
/// operation, which is closed as not done (a later attempt gets a new one).
async fn not_yet(step: Step<'_>, buyer_url: Option<String>) -> Outcome {
    let result = ResultCode::new(
        Kind::AuthorizationInProgress,
        "The buyer has not confirmed the payment at Amazon Pay yet.",
    );
    match step
        .end(Ending::unmoved(OperationStatus::NotDone, result))
        .await
    {
        Outcome::Refused { record, result, .. } => Outcome::NotYet {
            record,
            result,
            buyer_url,
        },
        other => other,
    }
}
