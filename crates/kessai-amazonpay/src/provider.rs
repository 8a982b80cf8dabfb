//! The payment provider as the gateway sees it.

use crate::button::SignedPayload;
use crate::error::AmazonPayError;
use crate::wire::*;
use async_trait::async_trait;

/// Amazon Pay operations the gateway uses. [`crate::AmazonPayClient`] implements it over HTTP;
/// any other implementation (another region, a recording proxy) can stand in.
///
/// `idempotency_key` is chosen by the caller and stored before the call, so a retried or
/// recovered call can never do the same thing twice at Amazon.
#[async_trait]
pub trait AmazonPay: Send + Sync {
    async fn create_checkout_session(
        &self,
        request: &CreateCheckoutSessionRequest,
        idempotency_key: &str,
    ) -> Result<CheckoutSession, AmazonPayError>;

    async fn get_checkout_session(&self, id: &str) -> Result<CheckoutSession, AmazonPayError>;

    async fn update_checkout_session(
        &self,
        id: &str,
        request: &UpdateCheckoutSessionRequest,
    ) -> Result<CheckoutSession, AmazonPayError>;

    async fn complete_checkout_session(
        &self,
        id: &str,
        request: &CompleteCheckoutSessionRequest,
        idempotency_key: &str,
    ) -> Result<CheckoutSession, AmazonPayError>;

    async fn get_charge_permission(&self, id: &str) -> Result<ChargePermission, AmazonPayError>;

    async fn get_charge(&self, id: &str) -> Result<Charge, AmazonPayError>;

    async fn capture_charge(
        &self,
        id: &str,
        request: &CaptureChargeRequest,
        idempotency_key: &str,
    ) -> Result<Charge, AmazonPayError>;

    async fn cancel_charge(
        &self,
        id: &str,
        request: &CancelChargeRequest,
    ) -> Result<Charge, AmazonPayError>;

    async fn create_refund(
        &self,
        request: &CreateRefundRequest,
        idempotency_key: &str,
    ) -> Result<Refund, AmazonPayError>;

    async fn get_refund(&self, id: &str) -> Result<Refund, AmazonPayError>;

    async fn create_charge(
        &self,
        request: &CreateChargeRequest,
        idempotency_key: &str,
    ) -> Result<Charge, AmazonPayError>;

    async fn update_charge_permission(
        &self,
        id: &str,
        request: &UpdateChargePermissionRequest,
    ) -> Result<ChargePermission, AmazonPayError>;

    async fn close_charge_permission(
        &self,
        id: &str,
        request: &CloseChargePermissionRequest,
    ) -> Result<ChargePermission, AmazonPayError>;

    async fn get_buyer(&self, buyer_token: &str) -> Result<BuyerDetails, AmazonPayError>;

    /// Signs `payload_json` (a Create Checkout Session request, serialised once) for the
    /// `createCheckoutSessionConfig` of Amazon's `checkout.js`.
    fn sign_button_payload(&self, payload_json: String) -> Result<SignedPayload, AmazonPayError>;

    /// The merchant's store id (the `storeId` of checkout sessions).
    fn store_id(&self) -> &str;
}
