//! Refund: after capture, partial and repeatable until nothing is left (default: all that is
//! left). Every answer tells `refundableAmount`.

use super::MAX_AMOUNT;
use crate::app::AppState;
use crate::params::Params;
use crate::pipeline::{OrderCommand, Plan};
use crate::reply::Reply;
use kessai_core::{Field, Intent, OperationKind, OrderId, ResultCode, Yen};
use kessai_store::{OperationRecord, OrderRecord};

#[derive(Debug, Clone)]
pub struct Refund {
    pub order_id: OrderId,
    pub amount: Option<Yen>,
}

impl Refund {
    pub fn parse(order_id: OrderId, p: &Params<'_>) -> Result<Refund, ResultCode> {
        Ok(Refund {
            order_id,
            amount: p.amount(Field::Amount, MAX_AMOUNT)?,
        })
    }
}

impl OrderCommand for Refund {
    fn order_id(&self) -> &OrderId {
        &self.order_id
    }

    fn retry_of(&self) -> Option<(OperationKind, Option<Yen>)> {
        Some((OperationKind::Refund, self.amount))
    }

    fn plan(&self, record: &OrderRecord) -> Result<Plan, ResultCode> {
        let amount = record.order.plan_refund(self.amount)?;
        Ok(Plan::Call(Intent {
            kind: OperationKind::Refund,
            amount,
            note: None,
        }))
    }

    fn reply(&self, state: &AppState, record: &OrderRecord, op: Option<&OperationRecord>) -> Reply {
        let mut center = super::capture::center(state, record);
        if let Some(refund_id) = op.and_then(|o| o.amazon_id.clone()) {
            center.transaction_id = Some(refund_id);
        }
        Reply::Refunded {
            center,
            refundable: record.order.refundable(),
        }
    }

    fn refused(&self, record: &OrderRecord) -> Reply {
        Reply::Refundable(record.order.refundable())
    }
}
