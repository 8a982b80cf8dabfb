//! The HTTP client: builds, signs and sends requests; reads answers and errors.

use crate::button::SignedPayload;
use crate::error::AmazonPayError;
use crate::keys::PrivateKey;
use crate::provider::AmazonPay;
use crate::signing::{self, Algorithm};
use crate::wire::*;
use async_trait::async_trait;
use reqwest::Method;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::sync::Arc;
use std::time::Duration;

/// Everything the client needs to talk to one Amazon Pay endpoint.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// `https://pay-api.amazon.jp`, or an emulator such as `http://127.0.0.1:8443`.
    pub endpoint: url::Url,
    pub public_key_id: String,
    pub region: String,
    pub store_id: String,
    pub timeout: Duration,
}

/// Amazon Pay Checkout v2 over HTTP, signed with `AMZN-PAY-RSASSA-PSS-V2`.
#[derive(Clone)]
pub struct AmazonPayClient {
    http: reqwest::Client,
    config: ClientConfig,
    key: Arc<PrivateKey>,
    host_header: String,
    prefix: String,
}

impl std::fmt::Debug for AmazonPayClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AmazonPayClient")
            .field("endpoint", &self.config.endpoint.as_str())
            .field("public_key_id", &self.config.public_key_id)
            .finish()
    }
}

/// Which environment a legacy key (one whose id starts with neither `SANDBOX` nor `LIVE`) calls:
/// its requests go to `/sandbox/v2/…` or `/live/v2/…`. A prefixed key picks its environment
/// itself (`/v2/…`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Environment {
    #[default]
    Sandbox,
    Live,
}

/// An [`AmazonPayClient`] with more than its [`ClientConfig`]: extra trusted certificates (an
/// emulator's own), a proxy, the environment of a legacy key.
pub struct AmazonPayClientBuilder {
    config: ClientConfig,
    key: Arc<PrivateKey>,
    http: reqwest::ClientBuilder,
    environment: Environment,
}

impl AmazonPayClientBuilder {
    /// Trusts the certificates of this PEM text too, beside the built-in roots.
    pub fn trust_pem(mut self, pem: &[u8]) -> Result<Self, AmazonPayError> {
        let certs = reqwest::Certificate::from_pem_bundle(pem)
            .map_err(|e| AmazonPayError::Request(format!("not a PEM certificate: {e}")))?;
        if certs.is_empty() {
            return Err(AmazonPayError::Request(
                "no certificate (BEGIN CERTIFICATE) in the PEM".into(),
            ));
        }
        for cert in certs {
            self.http = self.http.add_root_certificate(cert);
        }
        Ok(self)
    }

    /// Sends HTTPS requests through this HTTP proxy (`CONNECT`).
    pub fn https_proxy(mut self, proxy: &url::Url) -> Result<Self, AmazonPayError> {
        let proxy = reqwest::Proxy::https(proxy.as_str())
            .map_err(|e| AmazonPayError::Request(format!("proxy {proxy}: {e}")))?;
        self.http = self.http.proxy(proxy);
        Ok(self)
    }

    pub fn environment(mut self, environment: Environment) -> Self {
        self.environment = environment;
        self
    }

    pub fn build(self) -> Result<AmazonPayClient, AmazonPayError> {
        let config = self.config;
        let http = self
            .http
            .timeout(config.timeout)
            .build()
            .map_err(|e| AmazonPayError::Request(e.to_string()))?;
        let host = config
            .endpoint
            .host_str()
            .ok_or_else(|| AmazonPayError::Request("the endpoint has no host".into()))?;
        let host_header = match config.endpoint.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_owned(),
        };
        // Keys named SANDBOX-…/LIVE-… pick the environment themselves; legacy keys use a path.
        let upper = config.public_key_id.to_ascii_uppercase();
        let prefix = if upper.starts_with("SANDBOX") || upper.starts_with("LIVE") {
            "/v2".to_owned()
        } else {
            match self.environment {
                Environment::Sandbox => "/sandbox/v2".to_owned(),
                Environment::Live => "/live/v2".to_owned(),
            }
        };
        Ok(AmazonPayClient {
            http,
            config,
            key: self.key,
            host_header,
            prefix,
        })
    }
}

impl AmazonPayClient {
    /// A client that trusts the built-in roots only (an emulator's self-signed certificate needs
    /// [`AmazonPayClientBuilder::trust_pem`]).
    pub fn new(config: ClientConfig, key: Arc<PrivateKey>) -> Result<Self, AmazonPayError> {
        AmazonPayClient::builder(config, key).build()
    }

    pub fn builder(config: ClientConfig, key: Arc<PrivateKey>) -> AmazonPayClientBuilder {
        AmazonPayClientBuilder {
            config,
            key,
            http: reqwest::Client::builder(),
            environment: Environment::default(),
        }
    }

    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    /// Sends one signed request and decodes the answer.
    async fn call<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        method: Method,
        resource: &str,
        body: Option<&B>,
        idempotency_key: Option<&str>,
    ) -> Result<T, AmazonPayError> {
        let path = format!("{}/{}", self.prefix, resource);
        let body_bytes = match body {
            Some(b) => serde_json::to_vec(b).map_err(|e| AmazonPayError::Request(e.to_string()))?,
            None => Vec::new(),
        };
        let date = time::OffsetDateTime::now_utc()
            .format(time::macros::format_description!(
                "[year][month][day]T[hour][minute][second]Z"
            ))
            .map_err(|e| AmazonPayError::Request(e.to_string()))?;
        let mut headers: Vec<(String, String)> = vec![
            ("accept".into(), "application/json".into()),
            ("content-type".into(), "application/json".into()),
            ("x-amz-pay-date".into(), date),
            ("x-amz-pay-host".into(), self.host_header.clone()),
            ("x-amz-pay-region".into(), self.config.region.clone()),
        ];
        if let Some(key) = idempotency_key {
            headers.push(("x-amz-pay-idempotency-key".into(), key.to_owned()));
        }
        let signed: Vec<String> = headers.iter().map(|(n, _)| n.clone()).collect();
        let canonical =
            signing::canonical_request(method.as_str(), &path, "", &headers, &signed, &body_bytes)
                .map_err(AmazonPayError::Request)?;
        let string_to_sign = signing::string_to_sign(Algorithm::V2, &canonical);
        let signature = signing::sign(&self.key, &string_to_sign)
            .map_err(|e| AmazonPayError::Request(e.to_string()))?;
        let mut sorted_signed = signed.clone();
        sorted_signed.sort();
        let authorization =
            signing::authorization_header(&self.config.public_key_id, &sorted_signed, &signature);

        let mut url = self.config.endpoint.clone();
        url.set_path(&path);
        let mut request = self.http.request(method.clone(), url);
        for (name, value) in &headers {
            request = request.header(name.as_str(), value.as_str());
        }
        request = request.header("authorization", authorization);
        if body.is_some() {
            request = request.body(body_bytes);
        }
        let response = request
            .send()
            .await
            .map_err(|e| AmazonPayError::Transport(e.to_string()))?;
        let status = response.status().as_u16();
        let bytes = response
            .bytes()
            .await
            .map_err(|e| AmazonPayError::Transport(e.to_string()))?;
        tracing::debug!(%method, %path, status, "amazon pay call");
        if (200..300).contains(&status) {
            serde_json::from_slice(&bytes).map_err(|e| AmazonPayError::Decode {
                status,
                detail: e.to_string(),
            })
        } else {
            match serde_json::from_slice::<ErrorBody>(&bytes) {
                Ok(err) => Err(AmazonPayError::Api {
                    status,
                    reason_code: err.reason_code,
                    message: err.message,
                }),
                Err(e) => Err(AmazonPayError::Decode {
                    status,
                    detail: e.to_string(),
                }),
            }
        }
    }
}

fn escape(id: &str) -> String {
    signing::rfc3986_encode(id)
}

#[async_trait]
impl AmazonPay for AmazonPayClient {
    async fn create_checkout_session(
        &self,
        request: &CreateCheckoutSessionRequest,
        idempotency_key: &str,
    ) -> Result<CheckoutSession, AmazonPayError> {
        self.call(
            Method::POST,
            "checkoutSessions",
            Some(request),
            Some(idempotency_key),
        )
        .await
    }

    async fn get_checkout_session(&self, id: &str) -> Result<CheckoutSession, AmazonPayError> {
        self.call::<(), _>(
            Method::GET,
            &format!("checkoutSessions/{}", escape(id)),
            None,
            None,
        )
        .await
    }

    async fn update_checkout_session(
        &self,
        id: &str,
        request: &UpdateCheckoutSessionRequest,
    ) -> Result<CheckoutSession, AmazonPayError> {
        self.call(
            Method::PATCH,
            &format!("checkoutSessions/{}", escape(id)),
            Some(request),
            None,
        )
        .await
    }

    async fn complete_checkout_session(
        &self,
        id: &str,
        request: &CompleteCheckoutSessionRequest,
        idempotency_key: &str,
    ) -> Result<CheckoutSession, AmazonPayError> {
        self.call(
            Method::POST,
            &format!("checkoutSessions/{}/complete", escape(id)),
            Some(request),
            Some(idempotency_key),
        )
        .await
    }

    async fn get_charge_permission(&self, id: &str) -> Result<ChargePermission, AmazonPayError> {
        self.call::<(), _>(
            Method::GET,
            &format!("chargePermissions/{}", escape(id)),
            None,
            None,
        )
        .await
    }

    async fn get_charge(&self, id: &str) -> Result<Charge, AmazonPayError> {
        self.call::<(), _>(Method::GET, &format!("charges/{}", escape(id)), None, None)
            .await
    }

    async fn capture_charge(
        &self,
        id: &str,
        request: &CaptureChargeRequest,
        idempotency_key: &str,
    ) -> Result<Charge, AmazonPayError> {
        self.call(
            Method::POST,
            &format!("charges/{}/capture", escape(id)),
            Some(request),
            Some(idempotency_key),
        )
        .await
    }

    async fn cancel_charge(
        &self,
        id: &str,
        request: &CancelChargeRequest,
    ) -> Result<Charge, AmazonPayError> {
        self.call(
            Method::DELETE,
            &format!("charges/{}/cancel", escape(id)),
            Some(request),
            None,
        )
        .await
    }

    async fn create_refund(
        &self,
        request: &CreateRefundRequest,
        idempotency_key: &str,
    ) -> Result<Refund, AmazonPayError> {
        self.call(
            Method::POST,
            "refunds",
            Some(request),
            Some(idempotency_key),
        )
        .await
    }

    async fn get_refund(&self, id: &str) -> Result<Refund, AmazonPayError> {
        self.call::<(), _>(Method::GET, &format!("refunds/{}", escape(id)), None, None)
            .await
    }

    async fn create_charge(
        &self,
        request: &CreateChargeRequest,
        idempotency_key: &str,
    ) -> Result<Charge, AmazonPayError> {
        self.call(
            Method::POST,
            "charges",
            Some(request),
            Some(idempotency_key),
        )
        .await
    }

    async fn update_charge_permission(
        &self,
        id: &str,
        request: &UpdateChargePermissionRequest,
    ) -> Result<ChargePermission, AmazonPayError> {
        self.call(
            Method::PATCH,
            &format!("chargePermissions/{}", escape(id)),
            Some(request),
            None,
        )
        .await
    }

    async fn close_charge_permission(
        &self,
        id: &str,
        request: &CloseChargePermissionRequest,
    ) -> Result<ChargePermission, AmazonPayError> {
        self.call(
            Method::DELETE,
            &format!("chargePermissions/{}/close", escape(id)),
            Some(request),
            None,
        )
        .await
    }

    async fn get_buyer(&self, buyer_token: &str) -> Result<BuyerDetails, AmazonPayError> {
        self.call::<(), _>(
            Method::GET,
            &format!("buyers/{}", escape(buyer_token)),
            None,
            None,
        )
        .await
    }

    fn sign_button_payload(&self, payload_json: String) -> Result<SignedPayload, AmazonPayError> {
        SignedPayload::sign(&self.key, &self.config.public_key_id, payload_json)
            .map_err(|e| AmazonPayError::Request(format!("cannot sign the button payload: {e}")))
    }

    fn store_id(&self) -> &str {
        &self.config.store_id
    }
}
