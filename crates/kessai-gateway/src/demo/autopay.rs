//! The demo shop's subscription by Amazon Pay "Auto Pay" (billing agreements over MWS), the
//! whole buyer flow of Amazon's integration guide with the built-in emulator as Amazon Pay: the
//! Amazon Pay button and Login with Amazon, the address book, wallet and consent widgets (the
//! emulator's `Widgets.js`), then on the shop's server SetBillingAgreementDetails,
//! ConfirmBillingAgreement, ValidateBillingAgreement and a synchronous AuthorizeOnBillingAgreement
//! with CaptureNow; later charges and refunds from the agreement's page. Like the rest of the demo
//! it keeps nothing: the agreement's page reads everything from the emulator.

use super::mws::{MwsClient, MwsFailure, Xml};
use super::view::yen;
use crate::app::AppState;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use serde::Deserialize;

/// What the subscription costs each month.
const PLAN: (&str, u64) = ("抹茶の定期便 / Monthly matcha", 980);
const SCRIPT: &str = include_str!("../../templates/demo_autopay.js");
/// The cookie Widgets.js keeps the buyer's access token in (as Amazon's does).
const TOKEN_COOKIE: &str = "amazon_Login_accessToken";

/// Auto Pay's part of the demo: an MWS client of the built-in emulator.
pub struct AutoPay {
    mws: MwsClient,
}

impl AutoPay {
    pub fn new(emulator: String, helpers_token: Option<(String, String)>) -> AutoPay {
        AutoPay {
            mws: MwsClient::new(emulator, helpers_token),
        }
    }
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/demo/autopay", get(start))
        .route("/demo/autopay/confirm", post(confirm))
        .route("/demo/autopay/agreements/{id}", get(agreement_page))
        .route("/demo/autopay/agreements/{id}/charge", post(charge))
        .route("/demo/autopay/agreements/{id}/refund", post(refund))
        .route(
            "/demo/static/autopay.js",
            get(|| async {
                (
                    [(
                        header::CONTENT_TYPE,
                        "application/javascript; charset=utf-8",
                    )],
                    SCRIPT,
                )
            }),
        )
}

/// The templates of this page.
pub fn add_templates(env: &mut minijinja::Environment<'static>) {
    for (name, source) in [
        (
            "demo_autopay.html",
            include_str!("../../templates/demo_autopay.html"),
        ),
        (
            "demo_autopay_agreement.html",
            include_str!("../../templates/demo_autopay_agreement.html"),
        ),
    ] {
        if let Err(e) = env.add_template(name, source) {
            tracing::error!(%e, name, "template does not parse");
        }
    }
}

fn auto_pay(state: &AppState) -> Option<&AutoPay> {
    state.demo.as_ref().and_then(|d| d.auto_pay.as_ref())
}

/// Renders a page of Auto Pay with its CSRF token. The page may run the emulator's script and
/// frame its widgets, and nothing else from elsewhere.
fn render(
    state: &AppState,
    headers: &HeaderMap,
    status: StatusCode,
    name: &str,
    ctx: minijinja::Value,
) -> Response {
    let csrf = super::CSRF.token(headers, || state.random_hex(16));
    let emulator = auto_pay(state)
        .and_then(|a| kessai_http::origin_of(a.mws.base()))
        .unwrap_or_default();
    let ctx = minijinja::context! { csrf => csrf.value.clone(), ..ctx };
    let html = state
        .templates
        .get_template(name)
        .and_then(|t| t.render(ctx));
    let html = match html {
        Ok(h) => h,
        Err(e) => {
            tracing::error!(%e, name, "template failed");
            return (
                StatusCode::INTERNAL_SERVER_ERROR,
                "page could not be rendered",
            )
                .into_response();
        }
    };
    let csp = format!(
        "default-src 'none'; script-src 'self' {emulator}; frame-src {emulator}; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    );
    let mut response = (
        status,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8".to_owned()),
            (header::CONTENT_SECURITY_POLICY, csp),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff".to_owned()),
            (header::REFERRER_POLICY, "no-referrer".to_owned()),
        ],
        html,
    )
        .into_response();
    if let Some((name, value)) = csrf.header() {
        response.headers_mut().insert(name, value);
    }
    response
}

fn problem(f: &MwsFailure) -> minijinja::Value {
    minijinja::context! { message => f.message.clone(), code => f.code.clone() }
}

/// `GET /demo/autopay`: the plan, the button and (after sign-in) the widgets.
async fn start(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let Some(auto) = auto_pay(&state) else {
        return render(
            &state,
            &headers,
            StatusCode::OK,
            "demo_autopay.html",
            minijinja::context! { title => "Auto Pay", available => false, plan => PLAN.0, price => PLAN.1 },
        );
    };
    let (status, seller, failure) = match auto.mws.seller().await {
        Ok(s) => (StatusCode::OK, Some(s.clone()), None),
        Err(f) => (StatusCode::BAD_GATEWAY, None, Some(problem(&f))),
    };
    render(
        &state,
        &headers,
        status,
        "demo_autopay.html",
        minijinja::context! {
            title => "Auto Pay", available => seller.is_some(), plan => PLAN.0, price => PLAN.1,
            emulator => auto.mws.base(),
            seller_id => seller.as_ref().map(|s| s.id.clone()),
            client_id => seller.as_ref().map(|s| s.lwa_client_id.clone()),
            error => failure,
        },
    )
}

fn see_other(url: &str) -> Response {
    (StatusCode::SEE_OTHER, [(header::LOCATION, url.to_owned())]).into_response()
}

fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|p| p.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| {
            percent_encoding::percent_decode_str(v)
                .decode_utf8_lossy()
                .into_owned()
        })
}

/// A billing agreement id as Amazon writes them (`C01-1234567-1234567`, `B…` live).
fn agreement_id(text: &str) -> Option<&str> {
    let ok = text.len() == 19
        && text.starts_with(['B', 'C'])
        && text
            .bytes()
            .skip(1)
            .all(|b| b.is_ascii_digit() || b == b'-');
    ok.then_some(text)
}

#[derive(Debug, Deserialize)]
pub struct ConfirmForm {
    #[serde(rename = "billingAgreementId")]
    id: Option<String>,
    csrf: Option<String>,
}

/// The page of a refused or failed Auto Pay step: the plan, the error, a retry link.
fn trouble(state: &AppState, headers: &HeaderMap, status: StatusCode, f: MwsFailure) -> Response {
    render(
        state,
        headers,
        status,
        "demo_autopay.html",
        minijinja::context! {
            title => "Auto Pay", available => false, plan => PLAN.0, price => PLAN.1,
            error => problem(&f), retry => true,
        },
    )
}

/// The page for a failure of [`owned_agreement`] or [`belongs_to`]: 403 for an agreement or
/// payment that is not the signed-in buyer's, 502 for anything Amazon Pay could not answer.
fn refusal(state: &AppState, headers: &HeaderMap, f: MwsFailure) -> Response {
    match f.code.as_str() {
        "InvalidAddressConsentToken" | NOT_YOURS => trouble(
            state,
            headers,
            StatusCode::FORBIDDEN,
            MwsFailure {
                code: f.code,
                message: "このお支払い方法の設定はサインイン中の購入者のものではありません / This billing agreement is not the signed-in buyer's.".into(),
            },
        ),
        "invalid_token" | "invalid_client" => trouble(state, headers, StatusCode::FORBIDDEN, f),
        _ => trouble(state, headers, StatusCode::BAD_GATEWAY, f),
    }
}

/// The code of a capture or refund that belongs to another agreement.
const NOT_YOURS: &str = "NotThisBillingAgreement";

/// The billing agreement `id` as the signed-in buyer may see it: the buyer's access token (the
/// cookie Widgets.js keeps) must have been issued to this shop, and Amazon must show the agreement
/// to that token, which it does only for the buyer's own (`InvalidAddressConsentToken`
/// otherwise). Every page and action on an agreement goes through here, so a buyer cannot read,
/// confirm, charge or refund another buyer's agreement by its id.
async fn owned_agreement(
    auto: &AutoPay,
    headers: &HeaderMap,
    id: &str,
    now: time::OffsetDateTime,
) -> Result<Xml, MwsFailure> {
    let seller = auto.mws.seller().await?.clone();
    let token = cookie(headers, TOKEN_COOKIE).ok_or(MwsFailure {
        code: "invalid_token".into(),
        message: "The buyer is not signed in with Amazon (no access token).".into(),
    })?;
    let info = auto.mws.lwa_get("/auth/o2/tokeninfo", &token).await?;
    if info["aud"].as_str() != Some(seller.lwa_client_id.as_str()) {
        return Err(MwsFailure {
            code: "invalid_client".into(),
            message: "The access token was issued to another client.".into(),
        });
    }
    auto.mws
        .call(
            "GetBillingAgreementDetails",
            &[
                ("AmazonBillingAgreementId", id.to_owned()),
                ("AddressConsentToken", token),
            ],
            now,
        )
        .await
}

/// Checks that a capture or refund id (`<order reference>-C0NNNNN`, `-R0NNNNN`) was made on the
/// agreement `id`: its order reference's parent must be the agreement.
async fn belongs_to(
    auto: &AutoPay,
    payment_id: &str,
    id: &str,
    now: time::OffsetDateTime,
) -> Result<(), MwsFailure> {
    let not_yours = || MwsFailure {
        code: NOT_YOURS.into(),
        message: format!("{payment_id} was not made on billing agreement {id}."),
    };
    let (order_reference, _) = payment_id.rsplit_once('-').ok_or_else(not_yours)?;
    let details = auto
        .mws
        .call(
            "GetOrderReferenceDetails",
            &[("AmazonOrderReferenceId", order_reference.to_owned())],
            now,
        )
        .await
        .map_err(|f| match f.code.as_str() {
            "InvalidOrderReferenceId" | "InvalidParameterValue" => not_yours(),
            _ => f,
        })?;
    if details.get_in("ParentDetails", "Id").as_deref() == Some(id) {
        Ok(())
    } else {
        Err(not_yours())
    }
}

/// One charge of the plan on the agreement: synchronous, captured at once. The capture's id, or
/// why it was declined.
async fn charge_once(
    state: &AppState,
    auto: &AutoPay,
    id: &str,
) -> Result<Result<String, String>, MwsFailure> {
    let xml = auto
        .mws
        .call(
            "AuthorizeOnBillingAgreement",
            &[
                ("AmazonBillingAgreementId", id.to_owned()),
                (
                    "AuthorizationReferenceId",
                    format!("demo{}", state.random_hex(8)),
                ),
                ("AuthorizationAmount.Amount", PLAN.1.to_string()),
                ("AuthorizationAmount.CurrencyCode", "JPY".into()),
                ("SellerAuthorizationNote", String::new()),
                ("TransactionTimeout", "0".into()),
                ("CaptureNow", "true".into()),
                ("SellerOrderAttributes.StoreName", state.store_name.clone()),
            ],
            state.now(),
        )
        .await?;
    let status = xml
        .get_in("AuthorizationStatus", "State")
        .unwrap_or_default();
    if status == "Declined" {
        let reason = xml
            .get_in("AuthorizationStatus", "ReasonCode")
            .unwrap_or_default();
        return Ok(Err(reason));
    }
    xml.get_in("IdList", "member").map(Ok).ok_or(MwsFailure {
        code: String::new(),
        message: "The authorization was not captured.".into(),
    })
}

fn after_charge(id: &str, outcome: Result<String, String>) -> Response {
    match outcome {
        Ok(capture) => see_other(&format!(
            "/demo/autopay/agreements/{id}?capture={capture}&charged=1"
        )),
        Err(reason) => see_other(&format!("/demo/autopay/agreements/{id}?declined={reason}")),
    }
}

/// `POST /demo/autopay/confirm`: the buyer pressed 申し込む. The token's audience is checked,
/// then the agreement is set, confirmed, validated and charged for the first month.
async fn confirm(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<ConfirmForm>,
) -> Response {
    let Some(auto) = auto_pay(&state) else {
        return see_other("/demo/autopay");
    };
    if !super::CSRF.check(&headers, form.csrf.as_deref()) {
        return super::forged(&state);
    }
    let Some(id) = form.id.as_deref().and_then(agreement_id) else {
        return trouble(
            &state,
            &headers,
            StatusCode::BAD_REQUEST,
            MwsFailure {
                code: "InvalidParameterValue".into(),
                message: "お支払い方法の設定がまだありません / There is no billing agreement yet: sign in and choose in the widgets first.".into(),
            },
        );
    };
    let now = state.now();
    let agreement = ("AmazonBillingAgreementId", id.to_owned());
    if let Err(f) = owned_agreement(auto, &headers, id, now).await {
        return refusal(&state, &headers, f);
    }
    let steps = async {
        auto.mws
            .call(
                "SetBillingAgreementDetails",
                &[
                    agreement.clone(),
                    (
                        "BillingAgreementAttributes.SellerNote",
                        format!("{} {}", PLAN.0, yen(PLAN.1)),
                    ),
                    (
                        "BillingAgreementAttributes.SellerBillingAgreementAttributes.StoreName",
                        state.store_name.clone(),
                    ),
                ],
                now,
            )
            .await?;
        auto.mws
            .call(
                "ConfirmBillingAgreement",
                std::slice::from_ref(&agreement),
                now,
            )
            .await?;
        let valid = auto
            .mws
            .call("ValidateBillingAgreement", &[agreement], now)
            .await?;
        if valid.get("ValidationResult").as_deref() != Some("Success") {
            return Ok(Err(valid.get("FailureReasonCode").unwrap_or_default()));
        }
        charge_once(&state, auto, id).await
    };
    match steps.await {
        Ok(outcome) => after_charge(id, outcome),
        Err(f) => trouble(&state, &headers, StatusCode::BAD_GATEWAY, f),
    }
}

#[derive(Debug, Deserialize)]
pub struct PageQuery {
    capture: Option<String>,
    refund: Option<String>,
    declined: Option<String>,
    charged: Option<String>,
}

fn amount(xml: &Xml, parent: &str) -> Option<String> {
    let a = xml.get_in(parent, "Amount")?;
    Some(
        match a.split('.').next().and_then(|n| n.parse::<u64>().ok()) {
            Some(n) => yen(n),
            None => a,
        },
    )
}

/// `GET /demo/autopay/agreements/{id}`: the agreement, the last capture and refund, as the
/// emulator reports them.
async fn agreement_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(q): Query<PageQuery>,
) -> Response {
    let Some(auto) = auto_pay(&state) else {
        return see_other("/demo/autopay");
    };
    let Some(id) = agreement_id(&id).map(str::to_owned) else {
        return see_other("/demo/autopay");
    };
    let now = state.now();
    let details = async {
        let ba = owned_agreement(auto, &headers, &id, now).await?;
        // A capture or refund shown on the page must be on this agreement.
        let payment = |action: &'static str, field: &'static str, payment_id: Option<String>| {
            let id = &id;
            async move {
                let Some(payment_id) = payment_id else {
                    return Ok(None);
                };
                belongs_to(auto, &payment_id, id, now).await?;
                auto.mws
                    .call(action, &[(field, payment_id)], now)
                    .await
                    .map(Some)
            }
        };
        let capture = payment("GetCaptureDetails", "AmazonCaptureId", q.capture.clone()).await?;
        let refund = payment("GetRefundDetails", "AmazonRefundId", q.refund.clone()).await?;
        Ok::<_, MwsFailure>((ba, capture, refund))
    };
    let (ba, capture, refund) = match details.await {
        Ok(d) => d,
        Err(f) => return refusal(&state, &headers, f),
    };
    let state_text = ba
        .get_in("BillingAgreementStatus", "State")
        .unwrap_or_default();
    let address = [
        "PostalCode",
        "StateOrRegion",
        "City",
        "AddressLine1",
        "AddressLine2",
    ]
    .iter()
    .filter_map(|k| ba.get_in("PhysicalDestination", k))
    .collect::<Vec<_>>()
    .join(" ");
    let capture = capture.map(|c| {
        minijinja::context! {
            id => c.get("AmazonCaptureId"),
            state => c.get_in("CaptureStatus", "State"),
            amount => amount(&c, "CaptureAmount"),
            refunded => amount(&c, "RefundedAmount"),
            refundable => c.get_in("CaptureStatus", "State").as_deref() == Some("Completed"),
        }
    });
    let refund = refund.map(|r| {
        minijinja::context! {
            id => r.get("AmazonRefundId"),
            state => r.get_in("RefundStatus", "State"),
            amount => amount(&r, "RefundAmount"),
        }
    });
    render(
        &state,
        &headers,
        StatusCode::OK,
        "demo_autopay_agreement.html",
        minijinja::context! {
            title => "Auto Pay", id => id, state => state_text.clone(),
            open => state_text == "Open",
            buyer => ba.get_in("Buyer", "Name"), email => ba.get_in("Buyer", "Email"),
            address => address,
            remaining => amount(&ba, "CurrentRemainingBalance"),
            plan => PLAN.0, price => PLAN.1,
            capture => capture, refund => refund,
            charged => q.charged.is_some(), declined => q.declined,
        },
    )
}

#[derive(Debug, Deserialize)]
pub struct ActionForm {
    csrf: Option<String>,
    capture: Option<String>,
    amount: Option<String>,
}

/// `POST …/charge`: a later month's charge.
async fn charge(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<ActionForm>,
) -> Response {
    let Some(auto) = auto_pay(&state) else {
        return see_other("/demo/autopay");
    };
    if !super::CSRF.check(&headers, form.csrf.as_deref()) {
        return super::forged(&state);
    }
    let Some(id) = agreement_id(&id) else {
        return see_other("/demo/autopay");
    };
    if let Err(f) = owned_agreement(auto, &headers, id, state.now()).await {
        return refusal(&state, &headers, f);
    }
    match charge_once(&state, auto, id).await {
        Ok(outcome) => after_charge(id, outcome),
        Err(f) => see_other(&format!(
            "/demo/autopay/agreements/{id}?declined={}",
            if f.code.is_empty() { "Error" } else { &f.code }
        )),
    }
}

/// `POST …/refund`: refunds `amount` yen of a capture.
async fn refund(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<ActionForm>,
) -> Response {
    let Some(auto) = auto_pay(&state) else {
        return see_other("/demo/autopay");
    };
    if !super::CSRF.check(&headers, form.csrf.as_deref()) {
        return super::forged(&state);
    }
    let (Some(id), Some(capture)) = (agreement_id(&id), form.capture) else {
        return see_other("/demo/autopay");
    };
    let amount = form
        .amount
        .as_deref()
        .map(str::trim)
        .and_then(|a| a.parse::<u64>().ok())
        .filter(|a| *a > 0);
    let back = |extra: &str| {
        see_other(&format!(
            "/demo/autopay/agreements/{id}?capture={}{extra}",
            url_part(&capture)
        ))
    };
    let now = state.now();
    if let Err(f) = async {
        owned_agreement(auto, &headers, id, now).await?;
        belongs_to(auto, &capture, id, now).await
    }
    .await
    {
        return refusal(&state, &headers, f);
    }
    let Some(amount) = amount else {
        return back("&declined=InvalidRefundAmount");
    };
    let answer = auto
        .mws
        .call(
            "Refund",
            &[
                ("AmazonCaptureId", capture.clone()),
                ("RefundReferenceId", format!("demo{}", state.random_hex(8))),
                ("RefundAmount.Amount", amount.to_string()),
                ("RefundAmount.CurrencyCode", "JPY".into()),
            ],
            now,
        )
        .await;
    match answer {
        Ok(xml) => match xml.get("AmazonRefundId") {
            Some(r) => back(&format!("&refund={}", url_part(&r))),
            None => back("&declined=Error"),
        },
        Err(f) => back(&format!(
            "&declined={}",
            url_part(if f.code.is_empty() { "Error" } else { &f.code })
        )),
    }
}

fn url_part(text: &str) -> String {
    percent_encoding::utf8_percent_encode(text, percent_encoding::NON_ALPHANUMERIC).to_string()
}
