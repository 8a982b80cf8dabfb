//! The double of Amazon's `checkout.js` and the entry its button posts to.
//!
//! `GET /checkout.js` serves a script with the global API merchants' pages call
//! (`amazon.Pay.renderButton`, `initCheckout`, `bindChangeAction`, `signout`). When the buyer
//! presses a button, the script posts the button's `createCheckoutSessionConfig` and options as a
//! form to `POST /checkout/start` (a top-level navigation, as Amazon's own hand-off is); a page
//! without script can post the same form itself.
//!
//! `/checkout/start` holds the signed payload to the rules of API requests: the `publicKeyId` must
//! be registered, the signature (`algorithm` V2: PSS salt 32; the legacy name: salt 20) must match
//! the exact `payloadJSON` string, `merchantId` must be the key's merchant, and the payload is read
//! as strictly as a Create Checkout Session body (the store must be the merchant's). Anything
//! else is refused with a page that says which field is wrong and why; nothing is created. A
//! payload that passes creates the checkout session, and the buyer goes on to its sign-in page.

use crate::auth::Caller;
use crate::engine::{Environment, ProductType};
use crate::error::ApiError;
use crate::server::AppState;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use kessai_amazonpay::button::{self, PayloadSignatureError};
use kessai_amazonpay::signing::Algorithm;
use serde::Deserialize;

const SCRIPT: &str = include_str!("../static/checkout.js");

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/checkout.js", get(script))
        .route("/checkout/start", post(start))
}

async fn script() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            // Merchants' pages load it from their own origin.
            (header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        SCRIPT,
    )
        .into_response()
}

/// The button's form: `createCheckoutSessionConfig` and the button options the script sends.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StartForm {
    #[serde(rename = "payloadJSON")]
    payload_json: Option<String>,
    signature: Option<String>,
    public_key_id: Option<String>,
    algorithm: Option<String>,
    merchant_id: Option<String>,
    ledger_currency: Option<String>,
    checkout_language: Option<String>,
    product_type: Option<String>,
    placement: Option<String>,
    sandbox: Option<String>,
}

/// Why a button was refused: the status of the page and what it says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub status: StatusCode,
    pub message: String,
}

fn refuse(status: StatusCode, message: impl Into<String>) -> Refusal {
    Refusal {
        status,
        message: message.into(),
    }
}

fn required(value: &Option<String>, name: &str) -> Result<String, Refusal> {
    match value.as_deref().map(str::trim) {
        Some(v) if !v.is_empty() => Ok(v.to_owned()),
        _ => Err(refuse(
            StatusCode::BAD_REQUEST,
            format!("createCheckoutSessionConfig / button option {name} is missing."),
        )),
    }
}

/// Checks `value` against Amazon's documented choices for the option `name`.
fn one_of(value: &Option<String>, name: &str, choices: &[&str]) -> Result<(), Refusal> {
    match value.as_deref() {
        None | Some("") => Ok(()),
        Some(v) if choices.contains(&v) => Ok(()),
        Some(v) => Err(refuse(
            StatusCode::BAD_REQUEST,
            format!("{name} {v:?} is not one of {}.", choices.join(", ")),
        )),
    }
}

const LANGUAGES: &[&str] = &[
    "ja_JP", "en_US", "en_GB", "de_DE", "fr_FR", "it_IT", "es_ES",
];
const PLACEMENTS: &[&str] = &["Home", "Product", "Cart", "Checkout", "Other"];

/// Checks a button form and reads its payload: who the caller is and the session to create.
async fn check(
    state: &AppState,
    form: &StartForm,
) -> Result<(Caller, crate::engine::session::NewSession), Refusal> {
    let payload = form
        .payload_json
        .clone()
        .filter(|p| !p.is_empty())
        .ok_or_else(|| {
            refuse(
                StatusCode::BAD_REQUEST,
                "createCheckoutSessionConfig.payloadJSON is missing.",
            )
        })?;
    let signature = required(&form.signature, "signature")?;
    let key_id = required(&form.public_key_id, "publicKeyId")?;
    // Without `algorithm` the payload is taken as signed with the legacy name (salt 20).
    let algorithm = match form.algorithm.as_deref().filter(|a| !a.is_empty()) {
        None => Algorithm::V1,
        Some(name) => Algorithm::parse(name).ok_or_else(|| {
            refuse(
                StatusCode::BAD_REQUEST,
                format!(
                    "algorithm {name:?} is neither AMZN-PAY-RSASSA-PSS-V2 nor AMZN-PAY-RSASSA-PSS."
                ),
            )
        })?,
    };
    let entry = state.key(&key_id).ok_or_else(|| {
        refuse(
            StatusCode::UNAUTHORIZED,
            format!("publicKeyId {key_id} is not registered with this Amazon Pay."),
        )
    })?;
    // The null Amazon of `kessai bench --null-amazon` checks no signature, here as for the API.
    let checked = if state.verify_signatures {
        button::verify(&entry.key, algorithm, &payload, &signature)
    } else {
        Ok(())
    };
    checked.map_err(|e| match e {
        PayloadSignatureError::NotBase64 => refuse(
            StatusCode::BAD_REQUEST,
            "signature is not Base64.",
        ),
        PayloadSignatureError::Mismatch => refuse(
            StatusCode::FORBIDDEN,
            format!(
                "signature does not match payloadJSON for publicKeyId {key_id} ({}): the payload was changed after it was signed, or signed with another key or algorithm.",
                algorithm.name()
            ),
        ),
    })?;
    let merchant_id = required(&form.merchant_id, "merchantId")?;
    if merchant_id != entry.merchant_id {
        return Err(refuse(
            StatusCode::FORBIDDEN,
            format!("merchantId {merchant_id} is not the merchant of publicKeyId {key_id}."),
        ));
    }
    let merchant = state
        .merchant(&crate::engine::MerchantId::new(entry.merchant_id.as_str()))
        .ok_or_else(|| refuse(StatusCode::INTERNAL_SERVER_ERROR, "key without merchant"))?;
    if let Some(ledger) = form.ledger_currency.as_deref().filter(|l| !l.is_empty()) {
        if ledger != merchant.currency().code() {
            return Err(refuse(
                StatusCode::BAD_REQUEST,
                format!(
                    "ledgerCurrency {ledger} is not this merchant's ledger currency ({}).",
                    merchant.currency().code()
                ),
            ));
        }
    }
    one_of(&form.checkout_language, "checkoutLanguage", LANGUAGES)?;
    one_of(&form.placement, "placement", PLACEMENTS)?;
    let product = match form.product_type.as_deref() {
        None | Some("" | "PayAndShip") => ProductType::PayAndShip,
        Some("PayOnly") => ProductType::PayOnly,
        Some("SignIn") => {
            return Err(refuse(
                StatusCode::BAD_REQUEST,
                "productType SignIn (Amazon sign-in without a payment) is not emulated by this checkout.js; use PayAndShip or PayOnly.",
            ))
        }
        Some(other) => {
            return Err(refuse(
                StatusCode::BAD_REQUEST,
                format!("productType {other:?} is not one of PayAndShip, PayOnly, SignIn."),
            ))
        }
    };
    // A key named LIVE-…/SANDBOX-… picks its environment; a legacy key follows `sandbox`.
    let upper = key_id.to_ascii_uppercase();
    let environment = if upper.starts_with("LIVE") {
        Environment::Live
    } else if upper.starts_with("SANDBOX") || form.sandbox.as_deref() == Some("true") {
        Environment::Sandbox
    } else {
        Environment::Live
    };
    let caller = Caller {
        merchant,
        environment,
    };
    let mut new = crate::v2::new_session(payload.as_bytes(), &caller).map_err(|e| {
        refuse(
            StatusCode::BAD_REQUEST,
            format!("payloadJSON: {}", e.message),
        )
    })?;
    new.product = product;
    Ok((caller, new))
}

/// `POST /checkout/start`: the button pressed.
async fn start(State(state): State<AppState>, Form(form): Form<StartForm>) -> Response {
    let (caller, new) = match check(&state, &form).await {
        Ok(checked) => checked,
        Err(r) => return refused(&state, &r),
    };
    let created = state
        .change(&[], |engine, now| {
            engine
                .create_session(&caller.merchant, new, now)
                .map(|cs| cs.id().as_str().to_owned())
                .map_err(ApiError::from)
        })
        .await;
    match created {
        Ok(Ok(id)) => {
            let mut url = format!("{}/checkout/signin", state.base_url);
            url.push_str("?amazonCheckoutSessionId=");
            url.push_str(&percent_encode(&id));
            (StatusCode::SEE_OTHER, [(header::LOCATION, url)]).into_response()
        }
        Ok(Err(e)) | Err(e) => refused(
            &state,
            &refuse(e.status, format!("payloadJSON: {}", e.message)),
        ),
    }
}

fn percent_encode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

fn refused(state: &AppState, r: &Refusal) -> Response {
    tracing::info!(status = r.status.as_u16(), message = %r.message, "checkout.js button refused");
    crate::pages::error_page(
        state,
        r.status,
        &format!("The Amazon Pay button was refused: {}", r.message),
    )
}
