//! Capture: once, at most the authorized amount (default: all of it); a partial capture
//! releases the rest.

use super::MAX_AMOUNT;
use crate::app::AppState;
use crate::params::Params;
use crate::pipeline::{OrderCommand, Plan};
use crate::reply::{Center, Reply};
use kessai_core::{Field, Intent, OperationKind, OrderId, ResultCode, Yen};
use kessai_store::{OperationRecord, OrderRecord};

#[derive(Debug, Clone)]
pub struct Capture {
    pub order_id: OrderId,
    pub amount: Option<Yen>,
}

impl Capture {
    pub fn parse(order_id: OrderId, p: &Params<'_>) -> Result<Capture, ResultCode> {
        Ok(Capture {
            order_id,
            amount: p.amount(Field::Amount, MAX_AMOUNT)?,
        })
    }
}

/// `centerOrderId` and `centerTransactionId` of an order: its charge permission and charge.
pub fn center(state: &AppState, record: &OrderRecord) -> Center {
    Center {
        at: state.now(),
        order_id: record.charge_permission_id.clone(),
        transaction_id: record.charge_id.clone(),
    }
}

impl OrderCommand for Capture {
    fn order_id(&self) -> &OrderId {
        &self.order_id
    }

    fn retry_of(&self) -> Option<(OperationKind, Option<Yen>)> {
        Some((OperationKind::Capture, self.amount))
    }

    fn plan(&self, record: &OrderRecord) -> Result<Plan, ResultCode> {
        let amount = record.order.plan_capture(self.amount)?;
        Ok(Plan::Call(Intent {
            kind: OperationKind::Capture,
            amount,
            note: None,
        }))
    }

    fn reply(&self, state: &AppState, record: &OrderRecord, _: Option<&OperationRecord>) -> Reply {
        Reply::Center(center(state, record))
    }
}
