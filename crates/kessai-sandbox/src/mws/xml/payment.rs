//! The elements of authorizations, captures and refunds, and the answers that carry them.

use super::shared::{id_list, IdList, Price, Status};
use super::timestamp;
use crate::engine::agreements::*;
use kessai_core::Money;
use serde::Serialize;

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
