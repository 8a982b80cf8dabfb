//! GetAddress: the buyer's shipping address and e-mail (with `addInfoRespFlag=1` also name,
//! phone, payment method and billing address), read from Amazon Pay: from the checkout session
//! before authorization, from the charge permission after.

use crate::app::AppState;
use crate::params::Params;
use crate::pipeline::{OrderCommand, Plan, ReadFuture};
use crate::reply::{AddressReply, ExtendedBuyer, PostalAddress, PreAuthLinks, Reply};
use crate::util::amazon_failure;
use kessai_amazonpay::wire;
use kessai_core::{Field, Kind, OrderId, OrderState, ResultCode};
use kessai_store::{OperationRecord, OrderRecord};

#[derive(Debug, Clone)]
pub struct GetAddress {
    pub order_id: OrderId,
    pub extended: bool,
}

impl GetAddress {
    pub fn parse(order_id: OrderId, p: &Params<'_>) -> Result<GetAddress, ResultCode> {
        Ok(GetAddress {
            order_id,
            extended: p.choice(Field::AddInfoRespFlag, &["0", "1"])? == Some("1"),
        })
    }
}

/// An Amazon address in the MDK's split: city and first line together, then lines 2 and 3.
fn postal(a: Option<wire::Address>) -> PostalAddress {
    let a = a.unwrap_or_default();
    let city_line = [a.city.clone(), a.address_line1.clone()]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join("");
    PostalAddress {
        name: a.name,
        phone: a.phone_number,
        line1: (!city_line.is_empty()).then_some(city_line),
        line2: a.address_line2,
        line3: a.address_line3,
        prefecture: a.state_or_region,
        postal_code: a.postal_code,
    }
}

impl OrderCommand for GetAddress {
    fn order_id(&self) -> &OrderId {
        &self.order_id
    }

    fn plan(&self, record: &OrderRecord) -> Result<Plan, ResultCode> {
        record.order.plan_get_address()?;
        Ok(Plan::Read)
    }

    fn reply(&self, _: &AppState, _: &OrderRecord, _: Option<&OperationRecord>) -> Reply {
        Reply::Nothing
    }

    fn read<'a>(&'a self, state: &'a AppState, record: &'a OrderRecord) -> ReadFuture<'a> {
        Box::pin(async move {
            // Before authorization the data is on the checkout session, afterwards on the
            // charge permission.
            let (buyer, shipping, billing, preferences) = match &record.charge_permission_id {
                Some(cp_id) => {
                    let cp = state
                        .amazon
                        .get_charge_permission(cp_id)
                        .await
                        .map_err(|e| amazon_failure(&e))?;
                    (
                        cp.buyer,
                        cp.shipping_address,
                        cp.billing_address,
                        cp.payment_preferences,
                    )
                }
                None => {
                    let cs_id = record.checkout_session_id.as_deref().ok_or_else(|| {
                        ResultCode::new(Kind::Internal, "an order without a checkout session")
                    })?;
                    let cs = state
                        .amazon
                        .get_checkout_session(cs_id)
                        .await
                        .map_err(|e| amazon_failure(&e))?;
                    (
                        cs.buyer,
                        cs.shipping_address,
                        cs.billing_address,
                        cs.payment_preferences,
                    )
                }
            };
            let buyer = buyer.unwrap_or_default();
            let extended = self.extended.then(|| ExtendedBuyer {
                name: buyer.name.clone(),
                phone: buyer.phone_number.clone(),
                payment_descriptor: preferences
                    .and_then(|p| p.into_iter().next())
                    .and_then(|p| p.payment_descriptor),
                billing: postal(billing),
            });
            let pre_auth = (record.order.state == OrderState::PreAuth).then(|| PreAuthLinks {
                pay_redirect_url: crate::buyer::pay_redirect_url(state, record),
                checkout_session_id: record.checkout_session_id.clone(),
            });
            Ok(Reply::Address(Box::new(AddressReply {
                at: state.now(),
                shipping: postal(shipping),
                buyer_id: buyer.buyer_id,
                buyer_email: buyer.email,
                extended,
                pre_auth,
            })))
        })
    }
}
