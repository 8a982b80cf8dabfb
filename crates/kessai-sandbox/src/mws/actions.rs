//! Each MWS operation: its parameters read into a typed command (with Amazon's defaults), run
//! by the engine, its answer rendered.

use super::error::MwsError;
use super::params::Params;
use super::xml;
use crate::engine::agreements::service::{AuthorizeCommand, CaptureCommand, RefundCommand, Scope};
use crate::engine::agreements::simulation::{self, NoteOf, Simulation};
use crate::engine::agreements::*;
use axum::http::StatusCode;

/// The operations this face answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    GetBillingAgreementDetails,
    SetBillingAgreementDetails,
    ConfirmBillingAgreement,
    ValidateBillingAgreement,
    CloseBillingAgreement,
    AuthorizeOnBillingAgreement,
    CreateOrderReferenceForId,
    GetOrderReferenceDetails,
    SetOrderReferenceDetails,
    ConfirmOrderReference,
    CancelOrderReference,
    CloseOrderReference,
    Authorize,
    GetAuthorizationDetails,
    CloseAuthorization,
    Capture,
    GetCaptureDetails,
    Refund,
    GetRefundDetails,
    GetServiceStatus,
}

impl Action {
    pub const ALL: [Action; 20] = [
        Action::GetBillingAgreementDetails,
        Action::SetBillingAgreementDetails,
        Action::ConfirmBillingAgreement,
        Action::ValidateBillingAgreement,
        Action::CloseBillingAgreement,
        Action::AuthorizeOnBillingAgreement,
        Action::CreateOrderReferenceForId,
        Action::GetOrderReferenceDetails,
        Action::SetOrderReferenceDetails,
        Action::ConfirmOrderReference,
        Action::CancelOrderReference,
        Action::CloseOrderReference,
        Action::Authorize,
        Action::GetAuthorizationDetails,
        Action::CloseAuthorization,
        Action::Capture,
        Action::GetCaptureDetails,
        Action::Refund,
        Action::GetRefundDetails,
        Action::GetServiceStatus,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Action::GetBillingAgreementDetails => "GetBillingAgreementDetails",
            Action::SetBillingAgreementDetails => "SetBillingAgreementDetails",
            Action::ConfirmBillingAgreement => "ConfirmBillingAgreement",
            Action::ValidateBillingAgreement => "ValidateBillingAgreement",
            Action::CloseBillingAgreement => "CloseBillingAgreement",
            Action::AuthorizeOnBillingAgreement => "AuthorizeOnBillingAgreement",
            Action::CreateOrderReferenceForId => "CreateOrderReferenceForId",
            Action::GetOrderReferenceDetails => "GetOrderReferenceDetails",
            Action::SetOrderReferenceDetails => "SetOrderReferenceDetails",
            Action::ConfirmOrderReference => "ConfirmOrderReference",
            Action::CancelOrderReference => "CancelOrderReference",
            Action::CloseOrderReference => "CloseOrderReference",
            Action::Authorize => "Authorize",
            Action::GetAuthorizationDetails => "GetAuthorizationDetails",
            Action::CloseAuthorization => "CloseAuthorization",
            Action::Capture => "Capture",
            Action::GetCaptureDetails => "GetCaptureDetails",
            Action::Refund => "Refund",
            Action::GetRefundDetails => "GetRefundDetails",
            Action::GetServiceStatus => "GetServiceStatus",
        }
    }

    pub fn parse(text: &str) -> Option<Action> {
        Action::ALL.into_iter().find(|a| a.name() == text)
    }
}

/// Reads a note that may carry a sandbox simulation (only on the sandbox path).
fn note(
    p: &Params,
    name: &str,
    max: usize,
    place: NoteOf,
    env: Environment,
) -> Result<(Option<String>, Option<Simulation>), MwsError> {
    let text = p.text(name, max)?;
    let sim = match (&text, env) {
        (Some(t), Environment::Sandbox) => simulation::read(t, place).map_err(|e| {
            MwsError::sender(
                StatusCode::BAD_REQUEST,
                "InvalidSandboxSimulationSpecified",
                e.0,
            )
        })?,
        _ => None,
    };
    Ok((text, sim))
}

fn agreement_attributes(p: &Params) -> Result<AgreementAttributes, MwsError> {
    const A: &str = "BillingAgreementAttributes.";
    Ok(AgreementAttributes {
        platform_id: p.text(&format!("{A}PlatformId"), 64)?,
        seller_note: p.text(&format!("{A}SellerNote"), 1024)?,
        seller_billing_agreement_id: p.text(
            &format!("{A}SellerBillingAgreementAttributes.SellerBillingAgreementId"),
            255,
        )?,
        store_name: p.text(
            &format!("{A}SellerBillingAgreementAttributes.StoreName"),
            255,
        )?,
        custom_information: p.text(
            &format!("{A}SellerBillingAgreementAttributes.CustomInformation"),
            1024,
        )?,
    })
}

/// Order attributes under `prefix` (`OrderReferenceAttributes.` or none, as
/// AuthorizeOnBillingAgreement sends them).
fn order_attributes(p: &Params, prefix: &str) -> Result<OrderAttributes, MwsError> {
    Ok(OrderAttributes {
        order_total: p.optional_money(&format!("{prefix}OrderTotal"))?,
        platform_id: p.text(&format!("{prefix}PlatformId"), 64)?,
        seller_note: p.text(&format!("{prefix}SellerNote"), 1024)?,
        seller_order_id: p.text(&format!("{prefix}SellerOrderAttributes.SellerOrderId"), 255)?,
        store_name: p.text(&format!("{prefix}SellerOrderAttributes.StoreName"), 255)?,
        custom_information: p.text(
            &format!("{prefix}SellerOrderAttributes.CustomInformation"),
            1024,
        )?,
        supplementary_data: p.text(
            &format!("{prefix}SellerOrderAttributes.SupplementaryData"),
            1024,
        )?,
    })
}

fn authorize_command(
    p: &Params,
    env: Environment,
    order_prefix: &str,
) -> Result<AuthorizeCommand, MwsError> {
    let reference_id = p.reference_id("AuthorizationReferenceId")?;
    let amount = p.money("AuthorizationAmount")?;
    let (note, simulation) = note(
        p,
        "SellerAuthorizationNote",
        255,
        NoteOf::Authorization,
        env,
    )?;
    let soft_descriptor = p.text("SoftDescriptor", 16)?;
    let mut order = order_attributes(p, order_prefix)?;
    order.order_total = None;
    Ok(AuthorizeCommand {
        reference_id,
        amount,
        synchronous: p.transaction_timeout()? == 0,
        capture_now: p.boolean("CaptureNow", false)?,
        note,
        soft_descriptor,
        simulation,
        order,
        inherit_shipping_address: p.boolean("InheritShippingAddress", true)?,
    })
}

/// Whether the caller showed a token of the agreement's buyer: a Login with Amazon access token
/// this seller's client got for that buyer, or a test buyer token. Any other token is refused.
fn token_shows_address(
    p: &Params,
    tokens: &super::login::Tokens,
    s: &Scope<'_>,
    buyer_id: &str,
) -> Result<bool, MwsError> {
    let token = p
        .get("AddressConsentToken")
        .or_else(|| p.get("AccessToken"));
    let Some(token) = token else {
        return Ok(false);
    };
    let lwa = tokens
        .find(token, s.now)
        .ok()
        .filter(|t| t.seller() == s.seller.id())
        .map(|t| t.buyer_id().to_owned());
    let buyer = lwa.or_else(|| crate::buyers::buyer_for_token(token).map(|b| b.id.to_owned()));
    match buyer {
        Some(b) if b == buyer_id => Ok(true),
        _ => Err(MwsError::sender(
            StatusCode::NOT_FOUND,
            "InvalidAddressConsentToken",
            "The address consent token is invalid or has expired.",
        )),
    }
}

/// Runs `action`; the rendered XML of its answer.
pub async fn run(
    engine: &Agreements,
    tokens: &super::login::Tokens,
    s: Scope<'_>,
    action: Action,
    p: &Params,
    request_id: &str,
) -> Result<String, MwsError> {
    use Action as A;
    let env = s.environment;
    let name = action.name();
    let empty = || xml::render_ok::<()>(name, None, request_id);
    match action {
        A::GetBillingAgreementDetails => {
            let id = p.required("AmazonBillingAgreementId")?;
            let ba = engine.agreement(s, id).await?;
            let full = token_shows_address(p, tokens, &s, ba.buyer_id())?;
            let details = xml::agreement_details(&ba, full, s.now);
            xml::render_ok(name, Some(&xml::agreement_result(details)), request_id)
        }
        A::SetBillingAgreementDetails => {
            let id = p.required("AmazonBillingAgreementId")?;
            let attrs = agreement_attributes(p)?;
            let ba = engine.set_agreement(s, id, &attrs).await?;
            let details = xml::agreement_details(&ba, false, s.now);
            xml::render_ok(name, Some(&xml::agreement_result(details)), request_id)
        }
        A::ConfirmBillingAgreement => {
            engine
                .confirm_agreement(s, p.required("AmazonBillingAgreementId")?)
                .await?;
            empty()
        }
        A::ValidateBillingAgreement => {
            let (ba, v) = engine
                .validate_agreement(s, p.required("AmazonBillingAgreementId")?)
                .await?;
            xml::render_ok(name, Some(&xml::validate_result(&ba, v)), request_id)
        }
        A::CloseBillingAgreement => {
            let id = p.required("AmazonBillingAgreementId")?;
            let reason = p.text("ClosureReason", 1024)?;
            engine.close_agreement(s, id, reason.as_deref()).await?;
            empty()
        }
        A::AuthorizeOnBillingAgreement => {
            let id = p.required("AmazonBillingAgreementId")?;
            let command = authorize_command(p, env, "")?;
            let auth = engine.authorize_on_agreement(s, id, &command).await?;
            xml::render_ok(
                name,
                Some(&xml::authorize_on_agreement_result(&auth)),
                request_id,
            )
        }
        A::CreateOrderReferenceForId => {
            let id = p.required("Id")?;
            if let Some(kind) = p.get("IdType") {
                if kind != "BillingAgreement" {
                    return Err(MwsError::invalid("IdType", "it must be BillingAgreement."));
                }
            }
            let attrs = order_attributes(p, "OrderReferenceAttributes.")?;
            let order = engine
                .create_order_reference(
                    s,
                    id,
                    &attrs,
                    p.boolean("InheritShippingAddress", false)?,
                    p.boolean("ConfirmNow", false)?,
                )
                .await?;
            xml::render_ok(name, Some(&xml::order_reference_result(&order)), request_id)
        }
        A::GetOrderReferenceDetails => {
            let order = engine
                .order_reference(s, p.required("AmazonOrderReferenceId")?)
                .await?;
            xml::render_ok(name, Some(&xml::order_reference_result(&order)), request_id)
        }
        A::SetOrderReferenceDetails => {
            let id = p.required("AmazonOrderReferenceId")?;
            let attrs = order_attributes(p, "OrderReferenceAttributes.")?;
            let (_, sim) = note(
                p,
                "OrderReferenceAttributes.SellerNote",
                1024,
                NoteOf::OrderReferenceNote,
                env,
            )?;
            let not_allowed = sim == Some(Simulation::PaymentMethodNotAllowed);
            let order = engine
                .change_order_reference(s, id, |o, _| o.plan_set(&attrs, not_allowed, s.now))
                .await?;
            xml::render_ok(name, Some(&xml::order_reference_result(&order)), request_id)
        }
        A::ConfirmOrderReference => {
            let id = p.required("AmazonOrderReferenceId")?;
            engine
                .change_order_reference(s, id, |o, _| o.plan_confirm(s.now))
                .await?;
            empty()
        }
        A::CancelOrderReference => {
            let id = p.required("AmazonOrderReferenceId")?;
            let reason = p.text("CancelationReason", 1024)?;
            engine
                .change_order_reference(s, id, |o, captured| {
                    o.plan_cancel(reason.as_deref(), captured, s.now)
                })
                .await?;
            empty()
        }
        A::CloseOrderReference => {
            let id = p.required("AmazonOrderReferenceId")?;
            let (reason, sim) = note(p, "ClosureReason", 1024, NoteOf::OrderReferenceClosure, env)?;
            let by_amazon = sim == Some(Simulation::AmazonClosed);
            let reason = if by_amazon { None } else { reason };
            engine
                .change_order_reference(s, id, |o, _| {
                    o.plan_close(reason.as_deref(), by_amazon, s.now)
                })
                .await?;
            empty()
        }
        A::Authorize => {
            let id = p.required("AmazonOrderReferenceId")?;
            let command = authorize_command(p, env, "OrderReferenceAttributes.")?;
            let auth = engine.authorize(s, id, &command).await?;
            xml::render_ok(name, Some(&xml::authorize_result(&auth)), request_id)
        }
        A::GetAuthorizationDetails => {
            let auth = engine
                .authorization(s, p.required("AmazonAuthorizationId")?)
                .await?;
            xml::render_ok(name, Some(&xml::authorize_result(&auth)), request_id)
        }
        A::CloseAuthorization => {
            let id = p.required("AmazonAuthorizationId")?;
            p.text("ClosureReason", 255)?;
            engine.close_authorization(s, id).await?;
            empty()
        }
        A::Capture => {
            let id = p.required("AmazonAuthorizationId")?;
            let reference_id = p.reference_id("CaptureReferenceId")?;
            let amount = p.money("CaptureAmount")?;
            let (note, simulation) = note(p, "SellerCaptureNote", 255, NoteOf::Capture, env)?;
            let command = CaptureCommand {
                reference_id,
                amount,
                note,
                soft_descriptor: p.text("SoftDescriptor", 16)?,
                simulation,
            };
            let capture = engine.capture_authorization(s, id, &command).await?;
            xml::render_ok(name, Some(&xml::capture_result(&capture)), request_id)
        }
        A::GetCaptureDetails => {
            let capture = engine.capture(s, p.required("AmazonCaptureId")?).await?;
            xml::render_ok(name, Some(&xml::capture_result(&capture)), request_id)
        }
        A::Refund => {
            let id = p.required("AmazonCaptureId")?;
            let reference_id = p.reference_id("RefundReferenceId")?;
            let amount = p.money("RefundAmount")?;
            let (note, simulation) = note(p, "SellerRefundNote", 255, NoteOf::Refund, env)?;
            let command = RefundCommand {
                reference_id,
                amount,
                note,
                soft_descriptor: p.text("SoftDescriptor", 16)?,
                simulation,
            };
            let refund = engine.refund_capture(s, id, &command).await?;
            xml::render_ok(name, Some(&xml::refund_result(&refund)), request_id)
        }
        A::GetRefundDetails => {
            let refund = engine.refund(s, p.required("AmazonRefundId")?).await?;
            xml::render_ok(name, Some(&xml::refund_result(&refund)), request_id)
        }
        A::GetServiceStatus => {
            #[derive(serde::Serialize)]
            #[serde(rename_all = "PascalCase")]
            struct ServiceStatus {
                status: &'static str,
                timestamp: String,
            }
            let status = ServiceStatus {
                status: "GREEN",
                timestamp: xml::timestamp(s.now),
            };
            xml::render_ok(name, Some(&status), request_id)
        }
    }
}
