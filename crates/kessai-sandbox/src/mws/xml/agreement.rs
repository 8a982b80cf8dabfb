//! The billing agreement's elements: its details, status, limits, the Validate answer and its
//! notification.

use super::shared::{address, buyer, constraints, Buyer, Constraints, Destination, Price, Status};
use super::timestamp;
use crate::engine::agreements::*;
use serde::Serialize;

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
#[serde(rename_all = "PascalCase")]
pub struct AgreementResult {
    billing_agreement_details: BillingAgreementDetails,
}

pub fn agreement_result(d: BillingAgreementDetails) -> AgreementResult {
    AgreementResult {
        billing_agreement_details: d,
    }
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
