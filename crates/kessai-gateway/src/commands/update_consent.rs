//! UpdateConsent: change a recurring (随時) consent's amount and frequency, repeatable until
//! Terminate. Amazon Pay's charge permission gets the new recurring metadata first; the consent
//! is stored after. Setting the same values again is harmless, so a retry after a lost answer
//! simply sets them again (this command is not in the operation log: it moves no money).

use super::authorize::{frequency, platform_id, recurring_metadata};
use crate::app::AppState;
use crate::params::Params;
use crate::pipeline::{AmendFuture, OrderCommand, Plan};
use crate::reply::{Center, Reply};
use crate::util::amazon_failure;
use kessai_amazonpay::wire;
use kessai_core::consent::MAX_RECURRING_AMOUNT;
use kessai_core::{
    Consent, ConsentEvent, Field, Frequency, Kind, OrderId, Refusal, ResultCode, Yen,
};
use kessai_store::{OperationRecord, OrderRecord};

#[derive(Debug, Clone)]
pub struct UpdateConsent {
    pub order_id: OrderId,
    pub amount: Yen,
    pub frequency: Frequency,
    pub note_to_buyer: Option<String>,
}

impl UpdateConsent {
    pub fn parse(order_id: OrderId, p: &Params<'_>) -> Result<UpdateConsent, ResultCode> {
        // Checked like Authorize's; Amazon's Update Charge Permission has no field for it.
        platform_id(p)?;
        Ok(UpdateConsent {
            order_id,
            amount: p
                .amount(Field::Amount, MAX_RECURRING_AMOUNT)?
                .ok_or_else(|| {
                    ResultCode::field(Kind::FieldMissing, Field::Amount, "is required.")
                })?,
            frequency: frequency(p)?,
            note_to_buyer: p.text(Field::NoteToBuyer, 255)?,
        })
    }

    fn event(&self) -> ConsentEvent {
        ConsentEvent::Updated {
            amount: self.amount,
            frequency: self.frequency,
        }
    }
}

impl OrderCommand for UpdateConsent {
    fn order_id(&self) -> &OrderId {
        &self.order_id
    }

    fn plan(&self, record: &OrderRecord) -> Result<Plan, ResultCode> {
        let consent = record.consent.ok_or(Refusal::NotRecurring)?;
        consent.plan_update()?;
        consent.apply(self.event())?;
        Ok(Plan::Amend(self.event()))
    }

    fn amend<'a>(&'a self, state: &'a AppState, record: &'a OrderRecord) -> AmendFuture<'a> {
        Box::pin(async move {
            let Some(cp_id) = record.charge_permission_id.as_deref() else {
                return Err(ResultCode::new(
                    Kind::Internal,
                    "an active consent without a charge permission",
                ));
            };
            let updated = Consent {
                amount: self.amount,
                frequency: self.frequency,
                ..record.consent.ok_or(Refusal::NotRecurring)?
            };
            let body = wire::UpdateChargePermissionRequest {
                merchant_metadata: self.note_to_buyer.as_ref().map(|note| {
                    wire::MerchantMetadataRequest {
                        note_to_buyer: Some(note.clone()),
                        ..Default::default()
                    }
                }),
                recurring_metadata: Some(recurring_metadata(&updated)),
            };
            state
                .amazon
                .update_charge_permission(cp_id, &body)
                .await
                .map_err(|e| amazon_failure(&e))?;
            Ok(())
        })
    }

    fn reply(&self, state: &AppState, record: &OrderRecord, _: Option<&OperationRecord>) -> Reply {
        Reply::Center(Center {
            at: state.now(),
            order_id: record.charge_permission_id.clone(),
            transaction_id: None,
        })
    }
}
