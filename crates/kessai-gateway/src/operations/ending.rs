//! How an operation ends: one unit of work writes the order after it (in-flight cleared), its
//! history entry, its refund row and the finished operation, or nothing at all.

use super::{store_failed, unknown, Actor, Outcome};
use crate::app::AppState;
use crate::crash::Point;
use kessai_core::{ConsentEvent, Event, OperationKind, OperationStatus, PushKind, ResultCode};
use kessai_store::{OperationEnd, OperationRecord, OrderRecord, RefundRecord, Unit, Write};

/// One operation being carried out on one order.
pub struct Step<'a> {
    pub state: &'a AppState,
    /// The order, carrying `op` as its `in_flight` operation.
    pub record: OrderRecord,
    pub op: OperationRecord,
    pub actor: &'a Actor,
}

/// What the operation came to.
pub struct Ending {
    status: OperationStatus,
    result: ResultCode,
    /// What happened to the order (none: it stays as it was).
    event: Option<Event>,
    /// What happened to the order's recurring consent.
    consent: Option<ConsentEvent>,
    /// Amazon's ids the order learns: charge permission and charge.
    ids: Option<(Option<String>, String)>,
    permission: Option<String>,
    refund: Option<RefundRecord>,
    /// Amazon's id of what the operation made (a refund).
    amazon_id: Option<String>,
}

impl Ending {
    /// Amazon carried it out and the order moved by `event`.
    pub fn done(event: Event) -> Ending {
        Ending::moved(OperationStatus::Done, event, ResultCode::success())
    }

    /// The operation ended as `status` with `result`, and the order moved by `event`.
    pub fn moved(status: OperationStatus, event: Event, result: ResultCode) -> Ending {
        Ending {
            status,
            result,
            event: Some(event),
            consent: None,
            ids: None,
            permission: None,
            refund: None,
            amazon_id: None,
        }
    }

    /// Amazon refused it (or it could not be sent): nothing moved.
    pub fn failed(result: ResultCode) -> Ending {
        Ending::unmoved(OperationStatus::Failed, result)
    }

    pub fn unmoved(status: OperationStatus, result: ResultCode) -> Ending {
        Ending {
            status,
            result,
            event: None,
            consent: None,
            ids: None,
            permission: None,
            refund: None,
            amazon_id: None,
        }
    }

    pub fn with_ids(mut self, charge_permission_id: Option<String>, charge_id: String) -> Ending {
        self.ids = Some((charge_permission_id, charge_id));
        self
    }

    /// A consent-only checkout: Amazon made a charge permission and no charge.
    pub fn with_permission(mut self, charge_permission_id: String) -> Ending {
        self.permission = Some(charge_permission_id);
        self
    }

    pub fn with_consent(mut self, event: ConsentEvent) -> Ending {
        self.consent = Some(event);
        self
    }

    /// The order reached an authorization (or its pending form).
    pub fn agreed(&self) -> bool {
        matches!(
            self.event,
            Some(
                Event::Authorized { .. }
                    | Event::AuthorizedAndCaptured { .. }
                    | Event::AuthorizationPending
                    | Event::ConsentGiven
            )
        )
    }

    pub fn with_refund(mut self, refund: RefundRecord) -> Ending {
        self.amazon_id = Some(refund.amazon_refund_id.clone());
        self.refund = Some(refund);
        self
    }
}

impl Step<'_> {
    /// Stores how the operation ended. If the ending does not fit the order (Amazon and the
    /// gateway disagree) or cannot be stored, the operation stays pending: outcome unknown.
    pub async fn end(self, ending: Ending) -> Outcome {
        let Step {
            state,
            record,
            op,
            actor,
        } = self;
        let mut after = record.clone();
        if let Some(event) = ending.event {
            after.order = match record.order.apply(event) {
                Ok(next) => next,
                Err(refusal) => {
                    tracing::error!(%refusal, order = %record.order_id, "Amazon's outcome does not fit the order");
                    return Outcome::Unknown {
                        result: unknown(format!(
                            "Amazon's outcome does not fit the order: {refusal}"
                        )),
                    };
                }
            };
        }
        if let Some(event) = ending.consent {
            let next = after
                .consent
                .ok_or(kessai_core::Refusal::NotRecurring)
                .and_then(|c| c.apply(event));
            match next {
                Ok(c) => after.consent = Some(c),
                Err(refusal) => {
                    tracing::error!(%refusal, order = %record.order_id, "Amazon's outcome does not fit the consent");
                    return Outcome::Unknown {
                        result: unknown(format!(
                            "Amazon's outcome does not fit the consent: {refusal}"
                        )),
                    };
                }
            }
        }
        if let Some(cp_id) = ending.permission {
            after.charge_permission_id = Some(cp_id);
        }
        if let Some((cp_id, charge_id)) = ending.ids {
            if cp_id.is_some() {
                after.charge_permission_id = cp_id;
            }
            after.charge_id = Some(charge_id);
        }
        after.in_flight = None;
        after.version += 1;
        after.updated_at = state.now_text();
        let end = OperationEnd {
            key: op.key.clone(),
            status: ending.status,
            result_code: ending.result.code(),
            result_message: ending.result.message.clone(),
            amazon_id: ending.amazon_id.clone(),
            reported: actor.reports,
            at: state.now_text(),
        };
        let mut entry = actor.entry(state, &ending.result);
        entry.amount = Some(op.intent.amount);
        let mut unit = Unit::new(&record.merchant, &record.order_id)
            .with(Write::UpdateOrder(after.clone()))
            .with(Write::History(entry))
            .with(Write::FinishOperation(end.clone()));
        // The merchant's push of this result, in the same unit of work (not for "not yet").
        if ending.event.is_some() || ending.status != OperationStatus::NotDone {
            let kind = match op.intent.kind {
                OperationKind::CompleteCheckout => PushKind::Authorize,
                OperationKind::Capture => PushKind::Capture,
                OperationKind::CancelCharge => PushKind::Cancel,
                OperationKind::Refund => PushKind::Refund,
                OperationKind::ChargeConsent => PushKind::ReAuthorize,
                OperationKind::Reauthorize => PushKind::UpdateAuthorize,
                OperationKind::CloseConsent => PushKind::Terminate,
            };
            let push = crate::pushes::record(
                state,
                &after,
                kind,
                &ending.result,
                op.intent.amount,
                ending.amazon_id.as_deref(),
                ending.refund.as_ref().map(|r| r.state.as_str()),
            );
            if let Some(push) = push {
                unit = unit.with(push);
            }
        }
        if let Some(refund) = ending.refund {
            unit = unit.with(Write::Refund(refund));
        }
        let kind = Some(op.intent.kind);
        state.abort_at.reached(Point::AfterAmazon, kind);
        if let Err(e) = state.store.apply(&unit).await {
            return Outcome::Unknown {
                result: store_failed(e),
            };
        }
        state.abort_at.reached(Point::AfterCommit, kind);
        let finished = OperationRecord {
            status: end.status,
            reported: end.reported,
            result_code: Some(end.result_code),
            result_message: Some(end.result_message),
            amazon_id: end.amazon_id,
            finished_at: Some(end.at),
            ..op
        };
        match finished.status {
            OperationStatus::Done => Outcome::Done {
                record: after,
                op: Box::new(finished),
                result: ending.result,
            },
            _ => Outcome::Refused {
                record: after,
                result: ending.result,
                op: Some(Box::new(finished)),
            },
        }
    }
}
