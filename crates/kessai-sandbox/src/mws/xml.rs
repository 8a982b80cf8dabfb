//! The XML of the MWS face: typed answer elements (serde, rendered by quick-xml) and the one
//! envelope every answer is written in. Element names and nesting follow Amazon's models.

use super::error::MwsError;
use crate::buyers;
use crate::engine::agreements::*;
use kessai_core::Money;
use quick_xml::events::{BytesDecl, BytesText, Event};
use quick_xml::Writer;
use serde::Serialize;

/// The namespace of every API answer.
pub const NS: &str = "http://mws.amazonservices.com/schema/OffAmazonPayments/2013-01-01";
/// The namespace of notification data.
pub const IPN_NS: &str = "https://mws.amazonservices.com/ipn/OffAmazonPayments/2013-01-01";

/// `2024-05-01T12:34:56.000Z`.
pub fn timestamp(unix: Timestamp) -> String {
    let t =
        time::OffsetDateTime::from_unix_timestamp(unix).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    t.format(time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].000Z"
    ))
    .unwrap_or_default()
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Price {
    currency_code: &'static str,
    amount: String,
}

impl From<Money> for Price {
    fn from(m: Money) -> Price {
        Price {
            currency_code: m.currency().code(),
            amount: m.to_decimal_string(),
        }
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Status {
    state: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_update_timestamp: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_updated_timestamp: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason_code: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason_description: Option<String>,
}

impl Status {
    /// Payment objects and order references write `LastUpdateTimestamp`.
    fn of(
        state: &'static str,
        at: Timestamp,
        reason: Option<&'static str>,
        description: Option<&str>,
    ) -> Status {
        Status {
            state,
            last_update_timestamp: Some(timestamp(at)),
            last_updated_timestamp: None,
            reason_code: reason,
            reason_description: description.map(str::to_owned),
        }
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Address {
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    address_line1: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    address_line2: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    city: Option<String>,
    state_or_region: String,
    postal_code: String,
    country_code: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    phone: Option<String>,
}

/// The buyer's address; `full` false leaves only what Amazon shows before consent to share it
/// (city, prefecture, postal code, country).
fn address(buyer_id: &str, address_id: Option<&str>, full: bool) -> Option<Address> {
    let buyer = buyers::buyer(buyer_id)?;
    let a = buyer.addresses.iter().find(|a| Some(a.id) == address_id)?;
    let some = |s: &str| (full && !s.is_empty()).then(|| s.to_owned());
    Some(Address {
        name: some(a.name),
        address_line1: some(a.line1),
        address_line2: some(a.line2),
        city: Some(a.city.to_owned()),
        state_or_region: a.state_or_region.to_owned(),
        postal_code: a.postal_code.to_owned(),
        country_code: "JP",
        phone: some(a.phone),
    })
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Destination {
    destination_type: &'static str,
    physical_destination: Address,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Buyer {
    name: String,
    email: String,
    phone: String,
}

fn buyer(buyer_id: &str) -> Option<Buyer> {
    buyers::buyer(buyer_id).map(|b| Buyer {
        name: b.name.to_owned(),
        email: b.email.to_owned(),
        phone: b.phone.to_owned(),
    })
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Limits {
    amount_limit_per_time_period: Price,
    time_period_start_date: String,
    time_period_end_date: String,
    current_remaining_balance: Price,
}

fn limits(ba: &BillingAgreement, now: Timestamp) -> Limits {
    let (start, end) = ba.period(now);
    Limits {
        amount_limit_per_time_period: ba.limit().into(),
        time_period_start_date: timestamp(start),
        time_period_end_date: timestamp(end),
        current_remaining_balance: ba.remaining(now).into(),
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct SellerAgreementAttributes {
    #[serde(skip_serializing_if = "Option::is_none")]
    seller_billing_agreement_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    store_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    custom_information: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    seller_id: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct ConstraintXml {
    #[serde(rename = "ConstraintID")]
    id: &'static str,
    #[serde(rename = "Description")]
    description: &'static str,
}

#[derive(Debug, Serialize)]
pub struct Constraints {
    #[serde(rename = "Constraint")]
    constraint: Vec<ConstraintXml>,
}

fn constraints(list: Vec<(&'static str, &'static str)>) -> Option<Constraints> {
    (!list.is_empty()).then(|| Constraints {
        constraint: list
            .into_iter()
            .map(|(id, description)| ConstraintXml { id, description })
            .collect(),
    })
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct BillingAgreementDetails {
    amazon_billing_agreement_id: String,
    billing_agreement_limits: Limits,
    #[serde(skip_serializing_if = "Option::is_none")]
    buyer: Option<Buyer>,
    #[serde(skip_serializing_if = "Option::is_none")]
    seller_note: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    platform_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    destination: Option<Destination>,
    release_environment: &'static str,
    seller_billing_agreement_attributes: SellerAgreementAttributes,
    billing_agreement_status: Status,
    #[serde(skip_serializing_if = "Option::is_none")]
    constraints: Option<Constraints>,
    creation_timestamp: String,
    billing_agreement_consent: bool,
    order_language: &'static str,
}

/// `full_address`: the caller showed a token of the buyer's, or the agreement was confirmed.
pub fn agreement_details(
    ba: &BillingAgreement,
    full_address: bool,
    now: Timestamp,
) -> BillingAgreementDetails {
    let attrs = ba.attributes();
    let shown = full_address || ba.confirmed();
    BillingAgreementDetails {
        amazon_billing_agreement_id: ba.id().to_string(),
        billing_agreement_limits: limits(ba, now),
        buyer: if shown { buyer(ba.buyer_id()) } else { None },
        seller_note: attrs.seller_note.clone(),
        platform_id: attrs.platform_id.clone(),
        destination: address(ba.buyer_id(), ba.address_id(), shown).map(|a| Destination {
            destination_type: "Physical",
            physical_destination: a,
        }),
        release_environment: ba.environment().as_str(),
        seller_billing_agreement_attributes: SellerAgreementAttributes {
            seller_billing_agreement_id: attrs.seller_billing_agreement_id.clone(),
            store_name: attrs.store_name.clone(),
            custom_information: attrs.custom_information.clone(),
            seller_id: None,
        },
        billing_agreement_status: agreement_status(ba),
        constraints: constraints(
            ba.constraints()
                .into_iter()
                .map(|c| (c.id(), c.description()))
                .collect(),
        ),
        creation_timestamp: timestamp(ba.created_at()),
        billing_agreement_consent: ba.consent(),
        order_language: "ja-JP",
    }
}

/// A billing agreement's status (`LastUpdatedTimestamp`, as Amazon spells it there).
pub fn agreement_status(ba: &BillingAgreement) -> Status {
    Status {
        state: ba.state().as_str(),
        last_update_timestamp: None,
        last_updated_timestamp: Some(timestamp(ba.updated_at())),
        reason_code: ba.reason().map(|r| r.as_str()),
        reason_description: ba.reason_description().map(str::to_owned),
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ValidateResult {
    validation_result: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    failure_reason_code: Option<&'static str>,
    billing_agreement_status: Status,
}

pub fn validate_result(ba: &BillingAgreement, v: Validation) -> ValidateResult {
    ValidateResult {
        validation_result: match v {
            Validation::Success => "Success",
            Validation::Failure => "Failure",
        },
        failure_reason_code: (v == Validation::Failure).then_some("InvalidPaymentMethod"),
        billing_agreement_status: agreement_status(ba),
    }
}

#[derive(Debug, Serialize)]
pub struct IdList {
    member: Vec<String>,
}

fn id_list(ids: impl Iterator<Item = String>) -> IdList {
    IdList {
        member: ids.collect(),
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct AuthorizationDetails {
    amazon_authorization_id: String,
    authorization_reference_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    seller_authorization_note: Option<String>,
    authorization_amount: Price,
    captured_amount: Price,
    authorization_fee: Price,
    id_list: IdList,
    creation_timestamp: String,
    expiration_timestamp: String,
    authorization_status: Status,
    #[serde(skip_serializing_if = "Option::is_none")]
    soft_decline: Option<bool>,
    capture_now: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    soft_descriptor: Option<String>,
}

pub fn authorization_details(a: &Authorization) -> AuthorizationDetails {
    AuthorizationDetails {
        amazon_authorization_id: a.id().to_string(),
        authorization_reference_id: a.reference_id().to_owned(),
        seller_authorization_note: a.note().map(str::to_owned),
        authorization_amount: a.amount().into(),
        captured_amount: a.captured().into(),
        authorization_fee: Money::new(0, a.amount().currency()).into(),
        id_list: id_list(a.captures().iter().map(|c| c.to_string())),
        creation_timestamp: timestamp(a.created_at()),
        expiration_timestamp: timestamp(a.expires_at()),
        authorization_status: Status::of(
            a.state().as_str(),
            a.updated_at(),
            a.reason().map(|r| r.as_str()),
            None,
        ),
        soft_decline: a.soft_decline(),
        capture_now: a.capture_now(),
        soft_descriptor: a.soft_descriptor().map(|d| format!("AMZ*{d}")),
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct AuthorizeOnAgreementResult {
    authorization_details: AuthorizationDetails,
    amazon_order_reference_id: String,
}

pub fn authorize_on_agreement_result(a: &Authorization) -> AuthorizeOnAgreementResult {
    AuthorizeOnAgreementResult {
        authorization_details: authorization_details(a),
        amazon_order_reference_id: a.order_reference().to_string(),
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct AuthorizeResult {
    authorization_details: AuthorizationDetails,
}

pub fn authorize_result(a: &Authorization) -> AuthorizeResult {
    AuthorizeResult {
        authorization_details: authorization_details(a),
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct CaptureDetails {
    amazon_capture_id: String,
    capture_reference_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    seller_capture_note: Option<String>,
    capture_amount: Price,
    refunded_amount: Price,
    capture_fee: Price,
    id_list: IdList,
    creation_timestamp: String,
    capture_status: Status,
    #[serde(skip_serializing_if = "Option::is_none")]
    soft_descriptor: Option<String>,
}

pub fn capture_details(c: &Capture) -> CaptureDetails {
    CaptureDetails {
        amazon_capture_id: c.id().to_string(),
        capture_reference_id: c.reference_id().to_owned(),
        seller_capture_note: c.note().map(str::to_owned),
        capture_amount: c.amount().into(),
        refunded_amount: c.refunded().into(),
        capture_fee: Money::new(0, c.amount().currency()).into(),
        id_list: id_list(c.refunds().iter().map(|r| r.to_string())),
        creation_timestamp: timestamp(c.created_at()),
        capture_status: Status::of(
            c.state().as_str(),
            c.updated_at(),
            c.reason().map(|r| r.as_str()),
            None,
        ),
        soft_descriptor: c.soft_descriptor().map(|d| format!("AMZ*{d}")),
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct CaptureResult {
    capture_details: CaptureDetails,
}

pub fn capture_result(c: &Capture) -> CaptureResult {
    CaptureResult {
        capture_details: capture_details(c),
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct RefundDetails {
    amazon_refund_id: String,
    refund_reference_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    seller_refund_note: Option<String>,
    refund_type: &'static str,
    refund_amount: Price,
    fee_refunded: Price,
    creation_timestamp: String,
    refund_status: Status,
    #[serde(skip_serializing_if = "Option::is_none")]
    soft_descriptor: Option<String>,
}

pub fn refund_details(r: &Refund) -> RefundDetails {
    RefundDetails {
        amazon_refund_id: r.id().to_string(),
        refund_reference_id: r.reference_id().to_owned(),
        seller_refund_note: r.note().map(str::to_owned),
        refund_type: "SellerInitiated",
        refund_amount: r.amount().into(),
        fee_refunded: Money::new(0, r.amount().currency()).into(),
        creation_timestamp: timestamp(r.created_at()),
        refund_status: Status::of(
            r.state().as_str(),
            r.updated_at(),
            r.reason().map(|x| x.as_str()),
            None,
        ),
        soft_descriptor: r.soft_descriptor().map(|d| format!("AMZ*{d}")),
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct RefundResult {
    refund_details: RefundDetails,
}

pub fn refund_result(r: &Refund) -> RefundResult {
    RefundResult {
        refund_details: refund_details(r),
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct SellerOrderAttributes {
    #[serde(skip_serializing_if = "Option::is_none")]
    seller_order_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    store_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    custom_information: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    supplementary_data: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ParentDetails {
    id: String,
    #[serde(rename = "Type")]
    kind: &'static str,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct OrderReferenceDetails {
    amazon_order_reference_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    buyer: Option<Buyer>,
    #[serde(skip_serializing_if = "Option::is_none")]
    order_total: Option<Price>,
    #[serde(skip_serializing_if = "Option::is_none")]
    seller_note: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    platform_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    destination: Option<Destination>,
    release_environment: &'static str,
    seller_order_attributes: SellerOrderAttributes,
    order_reference_status: Status,
    #[serde(skip_serializing_if = "Option::is_none")]
    constraints: Option<Constraints>,
    creation_timestamp: String,
    expiration_timestamp: String,
    parent_details: ParentDetails,
    id_list: IdList,
    order_language: &'static str,
}

pub fn order_reference_details(o: &OrderReference) -> OrderReferenceDetails {
    let a = o.attributes();
    OrderReferenceDetails {
        amazon_order_reference_id: o.id().to_string(),
        buyer: buyer(o.buyer_id()),
        order_total: a.order_total.map(Price::from),
        seller_note: a.seller_note.clone(),
        platform_id: a.platform_id.clone(),
        destination: address(o.buyer_id(), o.address_id(), true).map(|p| Destination {
            destination_type: "Physical",
            physical_destination: p,
        }),
        release_environment: o.environment().as_str(),
        seller_order_attributes: SellerOrderAttributes {
            seller_order_id: a.seller_order_id.clone(),
            store_name: a.store_name.clone(),
            custom_information: a.custom_information.clone(),
            supplementary_data: a.supplementary_data.clone(),
        },
        order_reference_status: Status::of(
            o.state().as_str(),
            o.updated_at(),
            o.reason().map(|r| r.as_str()),
            o.reason_description(),
        ),
        constraints: constraints(
            o.constraints()
                .into_iter()
                .map(|c| (c.id(), c.description()))
                .collect(),
        ),
        creation_timestamp: timestamp(o.created_at()),
        expiration_timestamp: timestamp(o.expires_at()),
        parent_details: ParentDetails {
            id: o.parent().to_string(),
            kind: "BillingAgreement",
        },
        id_list: id_list(o.authorizations().iter().map(|a| a.to_string())),
        order_language: "ja-JP",
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct OrderReferenceResult {
    order_reference_details: OrderReferenceDetails,
}

pub fn order_reference_result(o: &OrderReference) -> OrderReferenceResult {
    OrderReferenceResult {
        order_reference_details: order_reference_details(o),
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct AgreementResult {
    billing_agreement_details: BillingAgreementDetails,
}

pub fn agreement_result(d: BillingAgreementDetails) -> AgreementResult {
    AgreementResult {
        billing_agreement_details: d,
    }
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Metadata<'a> {
    request_id: &'a str,
}

fn io(e: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::other(e.to_string())
}

fn finish(writer: Writer<Vec<u8>>) -> Result<String, MwsError> {
    String::from_utf8(writer.into_inner()).map_err(MwsError::internal)
}

fn declared() -> Result<Writer<Vec<u8>>, MwsError> {
    let mut w = Writer::new(Vec::new());
    w.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))
        .map_err(MwsError::internal)?;
    w.write_event(Event::Text(BytesText::from_escaped("\n")))
        .map_err(MwsError::internal)?;
    Ok(w)
}

/// `<{Action}Response xmlns=…><{Action}Result>…</…><ResponseMetadata>…` (an empty Result
/// element when the operation answers nothing).
pub fn render_ok<T: Serialize>(
    action: &str,
    result: Option<&T>,
    request_id: &str,
) -> Result<String, MwsError> {
    let mut w = declared()?;
    w.create_element(format!("{action}Response"))
        .with_attribute(("xmlns", NS))
        .write_inner_content(|w| {
            let tag = format!("{action}Result");
            match result {
                Some(r) => w.write_serializable(&tag, r).map_err(io)?,
                None => {
                    w.create_element(tag.as_str()).write_empty()?;
                }
            }
            w.write_serializable("ResponseMetadata", &Metadata { request_id })
                .map_err(io)
        })
        .map_err(MwsError::internal)?;
    finish(w)
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct ErrorBody<'a> {
    #[serde(rename = "Type")]
    side: &'a str,
    code: &'a str,
    message: &'a str,
}

/// Amazon's `ErrorResponse` document. It cannot fail: a failure to render falls back to a
/// fixed document in the same shape.
pub fn render_error(e: &MwsError, request_id: &str) -> String {
    let rendered = (|| -> Result<String, MwsError> {
        let mut w = declared()?;
        w.create_element("ErrorResponse")
            .with_attribute(("xmlns", NS))
            .write_inner_content(|w| {
                w.write_serializable(
                    "Error",
                    &ErrorBody {
                        side: e.side.as_str(),
                        code: e.code,
                        message: &e.message,
                    },
                )
                .map_err(io)?;
                w.create_element("RequestId")
                    .write_text_content(BytesText::new(request_id))?;
                Ok(())
            })
            .map_err(MwsError::internal)?;
        finish(w)
    })();
    rendered.unwrap_or_else(|_| {
        format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ErrorResponse xmlns=\"{NS}\"><Error><Type>Receiver</Type><Code>InternalServerError</Code><Message>The answer could not be rendered.</Message></Error><RequestId>{}</RequestId></ErrorResponse>", request_id.replace(['<', '>', '&'], ""))
    })
}

/// A notification's `NotificationData`: `<{root} xmlns=IPN_NS>` around `child`.
pub fn render_notification<T: Serialize>(
    root: &str,
    child: &str,
    content: &T,
) -> Result<String, MwsError> {
    let mut w = declared()?;
    w.create_element(root)
        .with_attribute(("xmlns", IPN_NS))
        .write_inner_content(|w| w.write_serializable(child, content).map_err(io))
        .map_err(MwsError::internal)?;
    finish(w)
}

/// The `BillingAgreement` node of a notification.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct AgreementNotification {
    amazon_billing_agreement_id: String,
    seller_billing_agreement_attributes: SellerAgreementAttributes,
    billing_agreement_status: Status,
    creation_timestamp: String,
    billing_agreement_limits: Limits,
    billing_agreement_consent: bool,
}

pub fn agreement_notification(ba: &BillingAgreement, now: Timestamp) -> AgreementNotification {
    let st = agreement_status(ba);
    AgreementNotification {
        amazon_billing_agreement_id: ba.id().to_string(),
        seller_billing_agreement_attributes: SellerAgreementAttributes {
            seller_billing_agreement_id: ba.attributes().seller_billing_agreement_id.clone(),
            store_name: None,
            custom_information: None,
            seller_id: Some(ba.seller().to_string()),
        },
        billing_agreement_status: Status {
            last_update_timestamp: st.last_updated_timestamp,
            last_updated_timestamp: None,
            ..st
        },
        creation_timestamp: timestamp(ba.created_at()),
        billing_agreement_limits: limits(ba, now),
        billing_agreement_consent: ba.consent(),
    }
}
