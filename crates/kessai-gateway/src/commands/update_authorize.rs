//! UpdateAuthorize: change the amount. Before the buyer confirms (merchant-hosted confirmation,
//! order in `PreAuth`) it sets the amount the buyer will confirm and answers `payRedirectUrl`;
//! after authorization (one-time orders, before capture or cancel, repeatable) it authorizes the
//! new amount again, so the capture deadline moves to 30 days from now.

use super::MAX_AMOUNT;
use crate::app::AppState;
use crate::params::Params;
use crate::pipeline::{OrderCommand, Plan};
use crate::reply::Reply;
use kessai_core::consent::MAX_RECURRING_AMOUNT;
use kessai_core::{
    Event, Field, Intent, Kind, OperationKind, OrderId, OrderState, Refusal, ResultCode,
    UpdatePlan, Yen,
};
use kessai_store::{ConfirmScreen, OperationRecord, OrderRecord};

#[derive(Debug, Clone)]
pub struct UpdateAuthorize {
    pub order_id: OrderId,
    pub amount: Yen,
}

impl UpdateAuthorize {
    pub fn parse(order_id: OrderId, p: &Params<'_>) -> Result<UpdateAuthorize, ResultCode> {
        Ok(UpdateAuthorize {
            order_id,
            amount: p.amount(Field::Amount, MAX_AMOUNT)?.ok_or_else(|| {
                ResultCode::field(Kind::FieldMissing, Field::Amount, "is required.")
            })?,
        })
    }
}

impl OrderCommand for UpdateAuthorize {
    fn order_id(&self) -> &OrderId {
        &self.order_id
    }

    fn retry_of(&self) -> Option<(OperationKind, Option<Yen>)> {
        Some((OperationKind::Reauthorize, Some(self.amount)))
    }

    fn plan(&self, record: &OrderRecord) -> Result<Plan, ResultCode> {
        match record.order.plan_update_amount()? {
            UpdatePlan::BeforeAuthorization => {
                // Only the merchant's own confirmation screen shows the amount before the buyer
                // confirms; on Kessai's page the buyer sees the amount Authorize set.
                if record.confirm_screen == ConfirmScreen::Gateway {
                    return Err(ResultCode::from(Refusal::NotAuthorizedYet(
                        record.order.state,
                    )));
                }
                if record.order.state == OrderState::Started {
                    return Err(ResultCode::from(Refusal::BuyerNotSignedIn));
                }
                if record.consent.is_some() && self.amount.get() > MAX_RECURRING_AMOUNT {
                    return Err(ResultCode::field(
                        Kind::FieldAboveMaximum,
                        Field::Amount,
                        format!(
                            "must be at most {MAX_RECURRING_AMOUNT} for a recurring (随時) order (got {}).",
                            self.amount
                        ),
                    ));
                }
                Ok(Plan::Change(Event::AmountChanged {
                    amount: self.amount,
                }))
            }
            UpdatePlan::Reauthorize => {
                if record.consent.is_some() {
                    return Err(ResultCode::from(Refusal::NotOneTime));
                }
                Ok(Plan::Call(Intent {
                    kind: OperationKind::Reauthorize,
                    amount: self.amount,
                    note: None,
                }))
            }
        }
    }

    fn reply(&self, state: &AppState, record: &OrderRecord, op: Option<&OperationRecord>) -> Reply {
        let center = super::capture::center(state, record);
        match op {
            None => Reply::PayRedirect {
                center,
                pay_redirect_url: crate::buyer::pay_redirect_url(state, record),
            },
            Some(_) => Reply::Center(center),
        }
    }
}
