//! Amazon Pay Checkout v2 JSON objects, with keys in the order Amazon returns them.
//!
//! Response types serialise every field (unset ones as `null`) because SDK tests compare key
//! sets; request types leave unset fields out.

mod vocab;

pub use vocab::{
    ChargePermissionState, ChargePermissionType, ChargeState, CheckoutSessionState, ErrorCode,
    PaymentIntent, ReasonCode, RefundState,
};

use kessai_core::{Currency, Money, MoneyError};
use serde::{Deserialize, Serialize};

/// `{"amount": "100", "currencyCode": "JPY"}`; amounts are decimal strings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Price {
    pub amount: String,
    pub currency_code: String,
}

impl Price {
    pub fn from_money(money: Money) -> Price {
        Price {
            amount: money.to_decimal_string(),
            currency_code: money.currency().code().to_owned(),
        }
    }

    pub fn to_money(&self) -> Result<Money, MoneyError> {
        let currency = Currency::parse(&self.currency_code).ok_or(MoneyError::NotDecimal)?;
        Money::parse_decimal(&self.amount, currency)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct WebCheckoutDetails {
    pub checkout_review_return_url: Option<String>,
    pub checkout_result_return_url: Option<String>,
    pub amazon_pay_redirect_url: Option<String>,
    pub checkout_cancel_url: Option<String>,
    pub checkout_mode: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct PaymentDetails {
    pub payment_intent: Option<PaymentIntent>,
    pub can_handle_pending_authorization: Option<bool>,
    pub charge_amount: Option<Price>,
    pub total_order_amount: Option<Price>,
    pub soft_descriptor: Option<String>,
    pub presentment_currency: Option<String>,
    pub allow_overcharge: Option<bool>,
    pub extend_expiration: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct MerchantMetadata {
    pub merchant_reference_id: Option<String>,
    pub merchant_store_name: Option<String>,
    pub note_to_buyer: Option<String>,
    pub custom_information: Option<String>,
}

/// `statusDetails` of a Checkout Session, Charge or Refund; `S` is that object's state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusDetails<S> {
    pub state: S,
    pub reason_code: Option<ReasonCode>,
    pub reason_description: Option<String>,
    pub last_updated_timestamp: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Buyer {
    pub buyer_id: Option<String>,
    pub name: Option<String>,
    pub email: Option<String>,
    pub phone_number: Option<String>,
    pub prime_membership_types: Option<Vec<String>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Address {
    pub name: Option<String>,
    pub address_line1: Option<String>,
    pub address_line2: Option<String>,
    pub address_line3: Option<String>,
    pub city: Option<String>,
    pub county: Option<String>,
    pub district: Option<String>,
    pub state_or_region: Option<String>,
    pub postal_code: Option<String>,
    pub country_code: Option<String>,
    pub phone_number: Option<String>,
}

impl Address {
    /// The address on one line, Japanese order: `name 〒postal prefecture city line1 line2`.
    pub fn one_line(&self) -> String {
        [
            self.name.clone(),
            self.postal_code.clone().map(|p| format!("〒{p}")),
            Some(format!(
                "{}{}{}",
                self.state_or_region.as_deref().unwrap_or_default(),
                self.city.as_deref().unwrap_or_default(),
                self.address_line1.as_deref().unwrap_or_default()
            )),
            self.address_line2.clone(),
        ]
        .into_iter()
        .flatten()
        .filter(|part| !part.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct PaymentPreference {
    pub payment_descriptor: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Frequency {
    pub unit: String,
    pub value: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecurringMetadata {
    pub frequency: Option<Frequency>,
    pub amount: Option<Price>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Constraint {
    pub constraint_id: String,
    pub description: String,
}

/// A Checkout Session as Get/Update/Complete return it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CheckoutSession {
    pub checkout_session_id: String,
    pub web_checkout_details: WebCheckoutDetails,
    pub product_type: Option<String>,
    pub payment_details: PaymentDetails,
    pub charge_permission_type: Option<ChargePermissionType>,
    pub order_type: Option<String>,
    pub recurring_metadata: Option<RecurringMetadata>,
    pub payment_method_on_file_metadata: Option<serde_json::Value>,
    pub merchant_details: Option<serde_json::Value>,
    pub merchant_metadata: MerchantMetadata,
    pub supplementary_data: Option<String>,
    pub buyer: Option<Buyer>,
    pub billing_address: Option<Address>,
    pub payment_preferences: Option<Vec<PaymentPreference>>,
    pub status_details: StatusDetails<CheckoutSessionState>,
    pub shipping_address: Option<Address>,
    pub platform_id: Option<String>,
    pub charge_permission_id: Option<String>,
    pub charge_id: Option<String>,
    pub constraints: Option<Vec<Constraint>>,
    pub creation_timestamp: Option<String>,
    pub expiration_timestamp: Option<String>,
    pub store_id: Option<String>,
    pub provider_metadata: Option<serde_json::Value>,
    pub release_environment: Option<String>,
    pub checkout_button_text: Option<String>,
    pub delivery_specifications: Option<serde_json::Value>,
    pub tokens: Option<serde_json::Value>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Reason {
    pub reason_code: ReasonCode,
    pub reason_description: Option<String>,
}

/// A Charge Permission's status: unlike other objects, reasons are a list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChargePermissionStatus {
    pub state: ChargePermissionState,
    pub reasons: Option<Vec<Reason>>,
    pub last_updated_timestamp: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Limits {
    pub amount_limit: Option<Price>,
    pub amount_balance: Option<Price>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChargePermission {
    pub charge_permission_id: String,
    pub charge_permission_reference_id: Option<String>,
    pub platform_id: Option<String>,
    pub buyer: Option<Buyer>,
    pub shipping_address: Option<Address>,
    pub billing_address: Option<Address>,
    pub payment_preferences: Option<Vec<PaymentPreference>>,
    pub status_details: ChargePermissionStatus,
    pub creation_timestamp: Option<String>,
    pub expiration_timestamp: Option<String>,
    pub merchant_metadata: Option<MerchantMetadata>,
    pub release_environment: Option<String>,
    pub limits: Option<Limits>,
    pub charge_permission_type: Option<ChargePermissionType>,
    pub recurring_metadata: Option<RecurringMetadata>,
    pub presentment_currency: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Charge {
    pub charge_id: String,
    pub charge_amount: Price,
    pub charge_permission_id: String,
    pub capture_amount: Option<Price>,
    pub refunded_amount: Option<Price>,
    pub soft_descriptor: Option<String>,
    pub provider_metadata: Option<serde_json::Value>,
    pub converted_amount: Option<Price>,
    pub conversion_rate: Option<String>,
    pub channel: Option<String>,
    pub charge_initiator: Option<String>,
    pub status_details: StatusDetails<ChargeState>,
    pub creation_timestamp: Option<String>,
    pub expiration_timestamp: Option<String>,
    pub release_environment: Option<String>,
    pub merchant_metadata: Option<MerchantMetadata>,
    pub platform_id: Option<String>,
    pub web_checkout_details: Option<WebCheckoutDetails>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Refund {
    pub refund_id: String,
    pub charge_id: String,
    pub creation_timestamp: Option<String>,
    pub refund_amount: Price,
    pub status_details: StatusDetails<RefundState>,
    pub soft_descriptor: Option<String>,
    pub release_environment: Option<String>,
}

/// The buyer as Get Buyer returns it (fields per the sign-in scopes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BuyerDetails {
    pub buyer_id: String,
    pub name: Option<String>,
    pub email: Option<String>,
    pub postal_code: Option<String>,
    pub country_code: Option<String>,
    pub phone_number: Option<String>,
    pub shipping_address: Option<Address>,
    pub billing_address: Option<Address>,
    pub prime_membership_types: Option<Vec<String>>,
}

/// Amazon's error body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorBody {
    pub reason_code: String,
    pub message: String,
}

// ---- requests (unset fields are left out) ----

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct WebCheckoutDetailsRequest {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checkout_review_return_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checkout_result_return_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checkout_cancel_url: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct PaymentDetailsRequest {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payment_intent: Option<PaymentIntent>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub can_handle_pending_authorization: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub charge_amount: Option<Price>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total_order_amount: Option<Price>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub presentment_currency: Option<String>,
    /// Keeps a one-time charge permission open longer, for later re-authorizations.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extend_expiration: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct MerchantMetadataRequest {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub merchant_reference_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub merchant_store_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note_to_buyer: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub custom_information: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct CreateCheckoutSessionRequest {
    pub web_checkout_details: WebCheckoutDetailsRequest,
    pub store_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub charge_permission_type: Option<ChargePermissionType>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recurring_metadata: Option<RecurringMetadata>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payment_details: Option<PaymentDetailsRequest>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub merchant_metadata: Option<MerchantMetadataRequest>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub platform_id: Option<String>,
    /// `{"addressRestrictions": …}` and the like, passed through.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delivery_specifications: Option<serde_json::Value>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct UpdateCheckoutSessionRequest {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub web_checkout_details: Option<WebCheckoutDetailsRequest>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payment_details: Option<PaymentDetailsRequest>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub merchant_metadata: Option<MerchantMetadataRequest>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub platform_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CompleteCheckoutSessionRequest {
    pub charge_amount: Price,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total_order_amount: Option<Price>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CaptureChargeRequest {
    pub capture_amount: Price,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub soft_descriptor: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CancelChargeRequest {
    pub cancellation_reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateChargeRequest {
    pub charge_permission_id: String,
    pub charge_amount: Price,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub capture_now: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub soft_descriptor: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub can_handle_pending_authorization: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub merchant_metadata: Option<MerchantMetadataRequest>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateRefundRequest {
    pub charge_id: String,
    pub refund_amount: Price,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub soft_descriptor: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct UpdateChargePermissionRequest {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub merchant_metadata: Option<MerchantMetadataRequest>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recurring_metadata: Option<RecurringMetadata>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CloseChargePermissionRequest {
    pub closure_reason: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cancel_pending_charges: Option<bool>,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// A Charge as Amazon might send it, with a state and reason code this version does not know:
    /// it parses, and serialises back to the same bytes.
    #[test]
    fn charge_with_unknown_vocabulary_round_trips_byte_for_byte() {
        let text = r#"{"chargeId":"S01-1-C1","chargeAmount":{"amount":"100","currencyCode":"JPY"},"chargePermissionId":"P01-1","captureAmount":null,"refundedAmount":null,"softDescriptor":null,"providerMetadata":null,"convertedAmount":null,"conversionRate":null,"channel":null,"chargeInitiator":null,"statusDetails":{"state":"Suspended","reasonCode":"SomethingNew","reasonDescription":null,"lastUpdatedTimestamp":"20240101T000000Z"},"creationTimestamp":null,"expirationTimestamp":null,"releaseEnvironment":"Sandbox","merchantMetadata":null,"platformId":null,"webCheckoutDetails":null}"#;
        let charge: Charge = serde_json::from_str(text).unwrap();
        assert_eq!(
            charge.status_details.state,
            ChargeState::Unknown("Suspended".into())
        );
        assert_eq!(
            charge.status_details.reason_code,
            Some(ReasonCode::Unknown("SomethingNew".into()))
        );
        assert_eq!(serde_json::to_string(&charge).unwrap(), text);

        let known = text
            .replace("Suspended", "Declined")
            .replace("SomethingNew", "HardDeclined");
        let charge: Charge = serde_json::from_str(&known).unwrap();
        assert_eq!(charge.status_details.state, ChargeState::Declined);
        assert_eq!(
            charge.status_details.reason_code,
            Some(ReasonCode::HardDeclined)
        );
        assert_eq!(serde_json::to_string(&charge).unwrap(), known);
    }

    #[test]
    fn charge_permission_reasons_are_typed() {
        let text = r#"{"state":"Closed","reasons":[{"reasonCode":"MerchantClosed","reasonDescription":"done"},{"reasonCode":"MFAFailed","reasonDescription":null}],"lastUpdatedTimestamp":null}"#;
        let status: ChargePermissionStatus = serde_json::from_str(text).unwrap();
        assert_eq!(status.state, ChargePermissionState::Closed);
        let reasons = status.reasons.clone().unwrap();
        assert_eq!(reasons[0].reason_code, ReasonCode::MerchantClosed);
        assert_eq!(reasons[1].reason_code, ReasonCode::MfaFailed);
        assert_eq!(serde_json::to_string(&status).unwrap(), text);
    }

    #[test]
    fn requests_write_the_intent_as_amazon_spells_it() {
        let body = PaymentDetailsRequest {
            payment_intent: Some(PaymentIntent::AuthorizeWithCapture),
            ..Default::default()
        };
        assert_eq!(
            serde_json::to_string(&body).unwrap(),
            r#"{"paymentIntent":"AuthorizeWithCapture"}"#
        );
    }
}
