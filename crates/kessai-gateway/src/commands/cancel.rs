//! Cancel: the whole authorization before capture (voided at Amazon Pay), or a checkout the
//! buyer has not finished (nothing to void).

use crate::app::AppState;
use crate::params::Params;
use crate::pipeline::{OrderCommand, Plan};
use crate::reply::Reply;
use kessai_core::order::CancelPlan;
use kessai_core::{Event, Field, Intent, OperationKind, OrderId, ResultCode, Yen};
use kessai_store::{OperationRecord, OrderRecord};

#[derive(Debug, Clone)]
pub struct Cancel {
    pub order_id: OrderId,
    pub reason: Option<String>,
}

impl Cancel {
    pub fn parse(order_id: OrderId, p: &Params<'_>) -> Result<Cancel, ResultCode> {
        Ok(Cancel {
            order_id,
            reason: p.text(Field::CancellationReason, 255)?,
        })
    }
}

impl OrderCommand for Cancel {
    fn order_id(&self) -> &OrderId {
        &self.order_id
    }

    fn retry_of(&self) -> Option<(OperationKind, Option<Yen>)> {
        Some((OperationKind::CancelCharge, None))
    }

    fn plan(&self, record: &OrderRecord) -> Result<Plan, ResultCode> {
        Ok(match record.order.plan_cancel()? {
            CancelPlan::AbandonCheckout => Plan::Change(Event::Canceled),
            CancelPlan::VoidAuthorization => Plan::Call(Intent {
                kind: OperationKind::CancelCharge,
                amount: record.order.authorized,
                note: self.reason.clone(),
            }),
        })
    }

    fn reply(&self, state: &AppState, record: &OrderRecord, _: Option<&OperationRecord>) -> Reply {
        Reply::Center(super::capture::center(state, record))
    }
}
