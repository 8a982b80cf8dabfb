//! Terminate: end a recurring (随時) consent. Its charge permission is closed at Amazon Pay; a
//! later ReAuthorize or UpdateConsent is refused (E317). Charges already made are not touched.

use crate::app::AppState;
use crate::params::Params;
use crate::pipeline::{OrderCommand, Plan};
use crate::reply::{Center, Reply};
use kessai_core::{Field, Intent, OperationKind, OrderId, Refusal, ResultCode, Yen};
use kessai_store::{OperationRecord, OrderRecord};

#[derive(Debug, Clone)]
pub struct Terminate {
    pub order_id: OrderId,
    pub reason: Option<String>,
}

impl Terminate {
    pub fn parse(order_id: OrderId, p: &Params<'_>) -> Result<Terminate, ResultCode> {
        Ok(Terminate {
            order_id,
            reason: p.text(Field::ClosureReason, 255)?,
        })
    }
}

impl OrderCommand for Terminate {
    fn order_id(&self) -> &OrderId {
        &self.order_id
    }

    fn retry_of(&self) -> Option<(OperationKind, Option<Yen>)> {
        Some((OperationKind::CloseConsent, None))
    }

    fn plan(&self, record: &OrderRecord) -> Result<Plan, ResultCode> {
        let consent = record.consent.ok_or(Refusal::NotRecurring)?;
        consent.plan_terminate()?;
        Ok(Plan::Call(Intent {
            kind: OperationKind::CloseConsent,
            amount: consent.amount,
            note: self.reason.clone(),
        }))
    }

    fn reply(&self, state: &AppState, record: &OrderRecord, _: Option<&OperationRecord>) -> Reply {
        Reply::Center(Center {
            at: state.now(),
            order_id: record.charge_permission_id.clone(),
            transaction_id: None,
        })
    }
}
