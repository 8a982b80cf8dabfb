//! The buyer's way through the gateway: back from Amazon's sign-in to Kessai's confirmation page,
//! to Amazon's confirmation, back to Kessai, and on to the merchant's success/cancel/error URL.
//!
//! Every step that changes the order stores the new state before the browser is sent on. Every
//! step that changes the order is a POST of Kessai's own form, carrying the browser's CSRF token
//! ([`kessai_http::csrf`]); a GET (a prefetcher, a link scanner, a reload) changes nothing.

use crate::app::AppState;
use crate::operations::{self, Actor, Outcome};
use crate::util::{amazon_failure, history};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use base64::Engine as _;
use kessai_amazonpay::wire::{self, Price};
use kessai_core::{
    Event, Field, Intent, Kind, Money, OperationKind, OperationStatus, OrderState, PushKind,
    ResultCode,
};
use kessai_store::{ConfirmScreen, OrderRecord, StoreError, Unit, Write};
use serde::Deserialize;
use sha2::{Digest, Sha256};

pub fn templates() -> minijinja::Environment<'static> {
    let mut env = minijinja::Environment::new();
    for (name, source) in [
        ("base.html", include_str!("../templates/base.html")),
        ("confirm.html", include_str!("../templates/confirm.html")),
        ("handoff.html", include_str!("../templates/handoff.html")),
        ("message.html", include_str!("../templates/message.html")),
        ("cancel.html", include_str!("../templates/cancel.html")),
        ("shop.html", include_str!("../templates/shop.html")),
        (
            "demo_order.html",
            include_str!("../templates/demo_order.html"),
        ),
    ] {
        if let Err(e) = env.add_template(name, source) {
            tracing::error!(%e, name, "template does not parse");
        }
    }
    env.add_filter("yen", |v: u64| crate::util::yen_text(v));
    env
}

/// Where the merchant sends the buyer to finish a merchant-hosted confirmation (`payRedirectUrl`).
pub fn pay_redirect_url(state: &AppState, record: &OrderRecord) -> String {
    format!("{}/amazonpay/pay/{}", state.base_url, record.public_ref)
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/amazonpay/review/{reference}", get(review))
        .route("/amazonpay/confirm/{reference}", post(confirm))
        .route("/amazonpay/pay/{reference}", get(pay))
        .route("/amazonpay/result/{reference}", get(result))
        .route(
            "/amazonpay/cancel/{reference}",
            get(cancel_page).post(cancel),
        )
        .route("/amazonpay/abandon/{reference}", post(abandon))
        .route("/assets/kessai.css", get(css))
        .route("/favicon.ico", get(|| async { StatusCode::NO_CONTENT }))
}

async fn css() -> Response {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        include_str!("../templates/kessai.css"),
    )
        .into_response()
}

/// The gateway's CSRF cookie (its own name: cookies do not tell ports apart).
const CSRF: kessai_http::csrf::Csrf = kessai_http::csrf::Csrf::new("kessai_csrf");

/// The form field that carries the CSRF token.
#[derive(Debug, Deserialize)]
pub struct CsrfForm {
    csrf: Option<String>,
}

/// The page for a POST that did not come from Kessai's page in this browser.
fn forged(state: &AppState) -> Response {
    let r = ResultCode::new(
        Kind::MalformedBody,
        "This form did not come from Kessai's page in this browser (CSRF check). Go back, reload the page and try again.",
    );
    problem(state, StatusCode::FORBIDDEN, &r, None)
}

/// Where forms of pages about `record` may lead: Amazon Pay, and the merchant's return URLs.
fn order_targets(state: &AppState, record: &OrderRecord) -> Vec<Option<String>> {
    vec![
        Some(state.hand_off_for(record.dummy).form_target()),
        record.success_url.clone(),
        record.cancel_url.clone(),
        record.error_url.clone(),
    ]
}

/// The pages of no particular order may lead to any Amazon Pay this gateway talks to.
fn amazon_targets(state: &AppState) -> Vec<Option<String>> {
    state.hand_offs().map(|h| Some(h.form_target())).collect()
}

/// Renders a page whose forms stay on Kessai or go to Amazon Pay.
pub fn render(state: &AppState, status: StatusCode, name: &str, ctx: minijinja::Value) -> Response {
    render_page(state, status, name, ctx, &amazon_targets(state), None)
}

/// Renders a page: `targets` are the URLs its forms may end up at (redirects included), so the
/// CSP's `form-action` names their origins and nothing else; `csrf` is the token its forms carry.
fn render_page(
    state: &AppState,
    status: StatusCode,
    name: &str,
    ctx: minijinja::Value,
    targets: &[Option<String>],
    csrf: Option<&kessai_http::csrf::Token>,
) -> Response {
    match state
        .templates
        .get_template(name)
        .and_then(|t| t.render(ctx))
    {
        Ok(html) => {
            let mut response = (
                status,
                [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
                kessai_http::page_headers(targets),
                html,
            )
                .into_response();
            if let Some((name, value)) = csrf.and_then(kessai_http::csrf::Token::header) {
                response.headers_mut().insert(name, value);
            }
            response
        }
        Err(e) => {
            tracing::error!(%e, name, "template failed");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "page could not be rendered",
            )
                .into_response()
        }
    }
}

/// A page for the buyer when something is wrong; it names the result code.
fn problem(
    state: &AppState,
    status: StatusCode,
    result: &ResultCode,
    retry: Option<String>,
) -> Response {
    problem_to(state, status, result, retry, &amazon_targets(state))
}

/// As [`problem`], for a page whose retry button may lead on to `targets` (an order's
/// [`order_targets`]: its result may send the buyer to the merchant).
fn problem_to(
    state: &AppState,
    status: StatusCode,
    result: &ResultCode,
    retry: Option<String>,
    targets: &[Option<String>],
) -> Response {
    render_page(
        state,
        status,
        "message.html",
        minijinja::context! {
            title => "Kessai", heading => "お手続きを続けられません / Cannot continue",
            class => "error", message => result.message, mstatus => result.mstatus(),
            code => result.code(), retry => retry,
        },
        targets,
        None,
    )
}

#[derive(Debug, Deserialize)]
pub struct SessionQuery {
    #[serde(rename = "amazonCheckoutSessionId")]
    id: Option<String>,
}

fn see_other(url: &str) -> Response {
    (StatusCode::SEE_OTHER, [(header::LOCATION, url.to_owned())]).into_response()
}

/// Loads the order behind a buyer URL and checks that the session id it came back with is its
/// own.
async fn order_for(
    state: &AppState,
    reference: &str,
    session: Option<&str>,
) -> Result<OrderRecord, Response> {
    let record = match state.store.order_by_ref(reference).await {
        Ok(Some(r)) => r,
        Ok(None) => {
            let r = ResultCode::new(Kind::UnknownOrderId, "This payment link is not known.");
            return Err(problem(state, StatusCode::NOT_FOUND, &r, None));
        }
        Err(e) => {
            let r = crate::util::store_failure(e);
            let status = if r.kind == Kind::DatabaseUnavailable {
                StatusCode::SERVICE_UNAVAILABLE
            } else {
                StatusCode::INTERNAL_SERVER_ERROR
            };
            return Err(problem(state, status, &r, None));
        }
    };
    match not_own_session(state, &record, session) {
        Some(refused) => Err(refused),
        None => Ok(record),
    }
}

/// The refusal page when the session id a buyer URL came back with is not the order's own.
fn not_own_session(
    state: &AppState,
    record: &OrderRecord,
    session: Option<&str>,
) -> Option<Response> {
    match session {
        Some(id) if record.checkout_session_id.as_deref() != Some(id) => {
            let r = ResultCode::field(
                Kind::CheckoutSessionMismatch,
                Field::AmazonCheckoutSessionId,
                "is not the Amazon Pay checkout session of this order.",
            );
            Some(problem(state, StatusCode::BAD_REQUEST, &r, None))
        }
        _ => None,
    }
}

/// The session id a cancel came back with, where the order has one bound to compare it with. A
/// buyer who cancels at Amazon before ever reaching the review URL has no session bound: the
/// cancel then moves nothing that a session could tell apart (nothing was authorized).
fn bound_only(record: &OrderRecord, session: Option<String>) -> Option<String> {
    session.filter(|_| record.checkout_session_id.is_some())
}

/// As [`order_for`], under the order's lock, read again once the lock is held (another request
/// may have moved the order while this one waited).
async fn locked_order_for(
    state: &AppState,
    reference: &str,
    session: Option<&str>,
) -> Result<(OrderRecord, tokio::sync::OwnedMutexGuard<()>), Response> {
    let record = order_for(state, reference, session).await?;
    let guard = state.locks.lock(&record.merchant, &record.order_id).await;
    let record = order_for(state, reference, None).await?;
    Ok((record, guard))
}

/// Applies `event` and stores it with a history entry for the browser step.
async fn advance(
    state: &AppState,
    record: &OrderRecord,
    event: Event,
    step: &str,
    result: &ResultCode,
) -> Result<OrderRecord, ResultCode> {
    let mut next = record.clone();
    next.order = record.order.apply(event).map_err(ResultCode::from)?;
    next.version += 1;
    next.updated_at = state.now_text();
    let entry = history(
        step,
        &format!("{{\"step\":\"{step}\"}}"),
        result,
        state.now_text(),
    );
    let mut unit = Unit::new(&record.merchant, &record.order_id)
        .with(Write::UpdateOrder(next.clone()))
        .with(Write::History(entry));
    if next.order.state.is_closed() {
        // The buyer's authorization ended here (canceled): the merchant's authorize push.
        let amount = next.order.amount;
        if let Some(push) = crate::pushes::record(
            state,
            &next,
            PushKind::Authorize,
            result,
            amount,
            None,
            None,
        ) {
            unit = unit.with(push);
        }
    }
    match state.store.apply(&unit).await {
        Ok(()) => Ok(next),
        Err(StoreError::Conflict) => Err(ResultCode::field(
            Kind::ConcurrentCommand,
            Field::OrderId,
            "was changed at the same time; reload the page.",
        )),
        Err(e) => Err(crate::util::store_failure(e)),
    }
}

/// Sends the buyer to the merchant's URL for the outcome, with `orderId`, `mstatus`,
/// `vResultCode` and the tamper check `authParams`/`vAuthInfo`.
async fn to_merchant(state: &AppState, record: &OrderRecord, result: &ResultCode) -> Response {
    let target = match result.kind {
        // A pending authorization is not a failure: the buyer goes on to the shop, which reads
        // mstatus "pending" and waits for the push.
        Kind::Success | Kind::AuthorizationPending => record.success_url.as_ref(),
        Kind::AmazonBuyerCanceled => record.cancel_url.as_ref(),
        _ => record.error_url.as_ref(),
    };
    let Some(target) = target else {
        let (heading, class) = if result.is_success() {
            ("ご注文ありがとうございました / Thank you", "ok")
        } else if result.kind == Kind::AuthorizationPending {
            ("お支払いを確認しています / Payment being confirmed", "ok")
        } else {
            (
                "お支払いは完了していません / Payment not completed",
                "error",
            )
        };
        return render(
            state,
            StatusCode::OK,
            "message.html",
            minijinja::context! {
                title => "Kessai", heading => heading, class => class,
                message => format!("Order {}: {}", record.order_id, result.message),
                mstatus => result.mstatus(), code => result.code(),
            },
        );
    };
    // The tamper check is signed with the merchant's secret; without it, refuse rather than
    // send a check anyone could forge.
    let secret = match state.store.merchant(&record.merchant).await {
        Ok(Some(m)) => m.secret_hex.expose().clone(),
        Ok(None) => {
            let r = ResultCode::new(Kind::Internal, "The merchant of this order is not known.");
            return problem(state, StatusCode::INTERNAL_SERVER_ERROR, &r, None);
        }
        Err(e) => {
            tracing::error!(%e, "cannot read the merchant for the return URL");
            let r = ResultCode::new(
                Kind::Internal,
                "The gateway cannot read the merchant now; reload this page in a moment.",
            );
            return problem(state, StatusCode::SERVICE_UNAVAILABLE, &r, None);
        }
    };
    let code = result.code();
    let values = [record.order_id.as_str(), result.mstatus(), code.as_str()];
    let names = "orderId,mstatus,vResultCode";
    let auth_params = base64::engine::general_purpose::STANDARD
        .encode(names)
        .replace('=', "*")
        .replace('/', "-")
        .replace('+', "_");
    let mut h = Sha256::new();
    h.update(record.merchant.as_str());
    for v in values {
        h.update(v);
    }
    h.update(&secret);
    let v_auth_info = hex::encode(h.finalize());
    let url = match url::Url::parse(target) {
        Ok(mut u) => {
            u.query_pairs_mut()
                .append_pair("orderId", values[0])
                .append_pair("mstatus", values[1])
                .append_pair("vResultCode", values[2])
                .append_pair("authParams", &auth_params)
                .append_pair("vAuthInfo", &v_auth_info);
            u.to_string()
        }
        Err(_) => target.clone(),
    };
    see_other(&url)
}

/// The result an order in a final browser state reports.
pub(crate) fn pending_result() -> ResultCode {
    ResultCode::new(
        Kind::AuthorizationPending,
        "Amazon Pay is confirming the payment; the result follows by push.",
    )
}

fn outcome_of(record: &OrderRecord) -> Option<ResultCode> {
    match record.order.state {
        OrderState::Authorized
        | OrderState::Consented
        | OrderState::Captured
        | OrderState::PartiallyRefunded
        | OrderState::Refunded => Some(ResultCode::success()),
        OrderState::AuthorizationPending => Some(pending_result()),
        OrderState::BuyerCanceled => Some(ResultCode::new(
            Kind::AmazonBuyerCanceled,
            "The buyer canceled the payment.",
        )),
        OrderState::Declined => Some(ResultCode::new(
            Kind::AmazonDeclined,
            "Amazon Pay declined the payment.",
        )),
        OrderState::Expired => Some(ResultCode::new(
            Kind::AmazonCheckoutExpired,
            "The checkout expired.",
        )),
        OrderState::Canceled => Some(ResultCode::new(
            Kind::OrderClosed,
            "The merchant canceled this order.",
        )),
        _ => None,
    }
}

/// The page for a checkout session Amazon Pay could not be asked about; its retry reloads the
/// review URL.
fn session_unreadable(
    state: &AppState,
    record: &OrderRecord,
    reference: &str,
    cs_id: &str,
    e: &kessai_amazonpay::AmazonPayError,
) -> Response {
    let retry = Some(format!(
        "/amazonpay/review/{reference}?amazonCheckoutSessionId={cs_id}"
    ));
    problem_to(
        state,
        StatusCode::BAD_GATEWAY,
        &amazon_failure(e),
        retry,
        &order_targets(state, record),
    )
}

fn session_mismatch(state: &AppState, why: &str) -> Response {
    let r = ResultCode::field(
        Kind::CheckoutSessionMismatch,
        Field::AmazonCheckoutSessionId,
        format!("is not the Amazon Pay checkout session of this order: it {why}"),
    );
    problem(state, StatusCode::BAD_REQUEST, &r, None)
}

/// The order behind a review URL, with the checkout session the buyer came back with bound to
/// it. An order that has none yet (or, before the buyer got further, another one: the button
/// pressed twice) takes this one once Amazon's copy shows it is what the order's signed payload
/// described ([`crate::handoff::check_session`]); the binding is stored before the page is
/// shown. Returns the session as read from Amazon when it was read here.
async fn order_with_session(
    state: &AppState,
    reference: &str,
    session: Option<&str>,
) -> Result<(OrderRecord, Option<wire::CheckoutSession>), Response> {
    let record = order_for(state, reference, None).await?;
    let Some(id) = session else {
        return Ok((record, None));
    };
    if record.checkout_session_id.as_deref() == Some(id) {
        return Ok((record, None));
    }
    let (record, _guard) = locked_order_for(state, reference, None).await?;
    if record.checkout_session_id.as_deref() == Some(id) {
        return Ok((record, None));
    }
    if record.order.state != OrderState::Started {
        return Err(session_mismatch(
            state,
            "came after the order had moved on with another session.",
        ));
    }
    let amazon = state.amazon_for(record.dummy);
    let cs = match amazon.get_checkout_session(id).await {
        Ok(cs) => cs,
        Err(kessai_amazonpay::AmazonPayError::Api { status: 404, .. }) => {
            return Err(session_mismatch(state, "does not exist at Amazon Pay."))
        }
        Err(e) => return Err(session_unreadable(state, &record, reference, id, &e)),
    };
    let review_url = crate::handoff::review_url(&state.base_url, &record.public_ref);
    let expected = crate::handoff::Expected {
        store_id: amazon.store_id(),
        review_url: &review_url,
        order_id: record.order_id.as_str(),
        amount: Money::jpy(record.order.amount),
        intent: crate::commands::authorize::payment_intent(&record),
        recurring: record
            .consent
            .as_ref()
            .map(crate::commands::authorize::recurring_metadata),
    };
    if let Err(why) = crate::handoff::check_session(&cs, &expected) {
        tracing::warn!(order = %record.order_id, session = id, %why, "checkout session refused");
        return Err(session_mismatch(state, &why));
    }
    let mut next = record.clone();
    next.checkout_session_id = Some(id.to_owned());
    next.version += 1;
    next.updated_at = state.now_text();
    let entry = history(
        "CheckoutSessionBound",
        &serde_json::json!({ "step": "CheckoutSessionBound", "checkoutSessionId": id }).to_string(),
        &ResultCode::success(),
        state.now_text(),
    );
    let unit = Unit::new(&record.merchant, &record.order_id)
        .with(Write::UpdateOrder(next.clone()))
        .with(Write::History(entry));
    match state.store.apply(&unit).await {
        Ok(()) => Ok((next, Some(cs))),
        Err(StoreError::Conflict) => {
            let r = ResultCode::field(
                Kind::ConcurrentCommand,
                Field::OrderId,
                "was changed at the same time; reload the page.",
            );
            Err(problem(state, StatusCode::CONFLICT, &r, None))
        }
        Err(e) => {
            let r = crate::util::store_failure(e);
            Err(problem(state, StatusCode::SERVICE_UNAVAILABLE, &r, None))
        }
    }
}

async fn review(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(reference): Path<String>,
    Query(q): Query<SessionQuery>,
) -> Response {
    let (record, fetched) = match order_with_session(&state, &reference, q.id.as_deref()).await {
        Ok(found) => found,
        Err(resp) => return resp,
    };
    if let Some(done) = outcome_of(&record) {
        return to_merchant(&state, &record, &done).await;
    }
    let Some(cs_id) = record.checkout_session_id.clone() else {
        let r = ResultCode::field(
            Kind::FieldMissing,
            Field::AmazonCheckoutSessionId,
            "is missing: open this page from Amazon Pay's button.",
        );
        return problem(&state, StatusCode::BAD_REQUEST, &r, None);
    };
    let cs = match fetched {
        Some(cs) => cs,
        None => match state
            .amazon_for(record.dummy)
            .get_checkout_session(&cs_id)
            .await
        {
            Ok(cs) => cs,
            Err(e) => return session_unreadable(&state, &record, &reference, &cs_id, &e),
        },
    };
    if cs.buyer.is_none() {
        let r = ResultCode::new(
            Kind::BuyerNotSignedIn,
            "The buyer has not signed in at Amazon Pay yet.",
        );
        return problem(&state, StatusCode::CONFLICT, &r, None);
    }
    let record = match record.order.state {
        OrderState::Started => match advance(
            &state,
            &record,
            Event::BuyerSignedIn,
            "BuyerSignedIn",
            &ResultCode::success(),
        )
        .await
        {
            Ok(r) => r,
            Err(r) => return problem(&state, StatusCode::CONFLICT, &r, None),
        },
        _ => record,
    };
    if record.order.state != OrderState::PreAuth {
        let r = ResultCode::new(
            Kind::AuthorizationInProgress,
            "This order is already being paid; please wait and reload.",
        );
        return problem_to(
            &state,
            StatusCode::CONFLICT,
            &r,
            Some(format!(
                "/amazonpay/result/{reference}?amazonCheckoutSessionId={cs_id}"
            )),
            &order_targets(&state, &record),
        );
    }
    if let ConfirmScreen::Merchant { url } = &record.confirm_screen {
        // The merchant's own confirmation screen: it reads the order with GetAddress, may set
        // the final amount with UpdateAuthorize, and sends the buyer to payRedirectUrl.
        return match url::Url::parse(url) {
            Ok(mut u) => {
                u.query_pairs_mut()
                    .append_pair("orderId", record.order_id.as_str());
                see_other(u.as_str())
            }
            Err(_) => see_other(url),
        };
    }
    confirm_page(&state, &headers, &record, &reference, &cs)
}

/// Kessai's confirmation page: what the buyer is about to agree to, and the button that goes on
/// to Amazon Pay.
fn confirm_page(
    state: &AppState,
    headers: &HeaderMap,
    record: &OrderRecord,
    reference: &str,
    cs: &wire::CheckoutSession,
) -> Response {
    let payment = cs
        .payment_preferences
        .as_ref()
        .and_then(|p| p.first())
        .and_then(|p| p.payment_descriptor.clone())
        .unwrap_or_default();
    let recurring = record.consent.map(|c| {
        minijinja::context! {
            every => frequency_words(c.frequency),
            amount => c.amount.get(),
            consent_only => !c.with_authorization,
        }
    });
    let csrf = CSRF.token(headers, || state.random_hex(16));
    render_page(
        state,
        StatusCode::OK,
        "confirm.html",
        minijinja::context! {
            title => "Confirm", order_id => record.order_id.as_str(), amount => record.order.amount.get(),
            address => cs.shipping_address.as_ref().map(wire::Address::one_line).unwrap_or_default(), payment => payment, reference => reference,
            csrf => csrf.value.clone(), recurring => recurring,
        },
        &order_targets(state, record),
        Some(&csrf),
    )
}

/// "毎月 / every month", "2週間ごと / every 2 weeks", …
fn frequency_words(f: kessai_core::Frequency) -> String {
    use kessai_core::FrequencyUnit as U;
    let n = f.value();
    let (ja, en) = match f.unit() {
        U::Year => ("年", "year"),
        U::Month => ("か月", "month"),
        U::Week => ("週間", "week"),
        U::Day => ("日", "day"),
    };
    if n == 1 {
        let ja1 = match f.unit() {
            U::Year => "毎年",
            U::Month => "毎月",
            U::Week => "毎週",
            U::Day => "毎日",
        };
        format!("{ja1} / every {en}")
    } else {
        format!("{n}{ja}ごと / every {n} {en}s")
    }
}

/// `payRedirectUrl`: where the merchant sends the buyer who waits in `PreAuth` (the merchant-hosted
/// confirmation; on Kessai's own page it is the same last step). It
/// shows Kessai's last step (the final amount, one button on to Amazon Pay); it works while the
/// order waits in `PreAuth`, and once the buyer went on it is refused (E319) and changes nothing.
async fn pay(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(reference): Path<String>,
) -> Response {
    let record = match order_for(&state, &reference, None).await {
        Ok(r) => r,
        Err(resp) => return resp,
    };
    // (An order confirmed on Kessai's own page has the same last step: GetAddress answers its
    // payRedirectUrl too while it waits in PreAuth.)
    if record.order.state != OrderState::PreAuth {
        return problem(&state, StatusCode::CONFLICT, &pay_link_used(), None);
    }
    let Some(cs_id) = record.checkout_session_id.clone() else {
        let r = ResultCode::new(Kind::Internal, "no checkout session");
        return problem(&state, StatusCode::INTERNAL_SERVER_ERROR, &r, None);
    };
    match state
        .amazon_for(record.dummy)
        .get_checkout_session(&cs_id)
        .await
    {
        Ok(cs) => confirm_page(&state, &headers, &record, &reference, &cs),
        Err(e) => problem_to(
            &state,
            StatusCode::BAD_GATEWAY,
            &amazon_failure(&e),
            Some(format!("/amazonpay/pay/{reference}")),
            &order_targets(&state, &record),
        ),
    }
}

fn pay_link_used() -> ResultCode {
    ResultCode::new(
        Kind::PayRedirectUsed,
        "This payment link was already used, or the order has moved on; it works once.",
    )
}

async fn confirm(
    State(state): State<AppState>,
    Path(reference): Path<String>,
    headers: HeaderMap,
    Form(form): Form<CsrfForm>,
) -> Response {
    if !CSRF.check(&headers, form.csrf.as_deref()) {
        return forged(&state);
    }
    let (record, _guard) = match locked_order_for(&state, &reference, None).await {
        Ok(found) => found,
        Err(resp) => return resp,
    };
    if record.order.state != OrderState::PreAuth {
        if matches!(record.confirm_screen, ConfirmScreen::Merchant { .. }) {
            return problem(&state, StatusCode::CONFLICT, &pay_link_used(), None);
        }
        if let Some(done) = outcome_of(&record) {
            return to_merchant(&state, &record, &done).await;
        }
        let r = ResultCode::from(kessai_core::Refusal::InvalidTransition {
            state: record.order.state,
            event: Event::BuyerConfirmed,
        });
        return problem(
            &state,
            StatusCode::CONFLICT,
            &ResultCode {
                kind: Kind::AuthorizationInProgress,
                ..r
            },
            None,
        );
    }
    let Some(cs_id) = record.checkout_session_id.clone() else {
        return problem(
            &state,
            StatusCode::INTERNAL_SERVER_ERROR,
            &ResultCode::new(Kind::Internal, "no checkout session"),
            None,
        );
    };
    let intent = crate::commands::authorize::payment_intent(&record);
    let update = wire::UpdateCheckoutSessionRequest {
        web_checkout_details: Some(wire::WebCheckoutDetailsRequest {
            checkout_review_return_url: None,
            checkout_result_return_url: Some(format!(
                "{}/amazonpay/result/{reference}",
                state.base_url
            )),
            checkout_cancel_url: None,
        }),
        payment_details: Some(wire::PaymentDetailsRequest {
            payment_intent: Some(intent),
            can_handle_pending_authorization: Some(true),
            charge_amount: Some(Price::from_money(Money::jpy(record.order.amount))),
            total_order_amount: None,
            presentment_currency: Some("JPY".into()),
            extend_expiration: None,
        }),
        merchant_metadata: None,
        platform_id: None,
    };
    let cs = match state
        .amazon_for(record.dummy)
        .update_checkout_session(&cs_id, &update)
        .await
    {
        Ok(cs) => cs,
        Err(e) => return problem(&state, StatusCode::BAD_GATEWAY, &amazon_failure(&e), None),
    };
    let Some(redirect) = cs.web_checkout_details.amazon_pay_redirect_url else {
        let r = ResultCode::new(
            Kind::AmazonAnswerNotUnderstood,
            "Amazon Pay gave no amazonPayRedirectUrl after the update.",
        );
        return problem(&state, StatusCode::BAD_GATEWAY, &r, None);
    };
    if let Err(r) = advance(
        &state,
        &record,
        Event::BuyerConfirmed,
        "BuyerConfirmed",
        &ResultCode::success(),
    )
    .await
    {
        return problem(&state, StatusCode::CONFLICT, &r, None);
    }
    see_other(&redirect)
}

async fn result(
    State(state): State<AppState>,
    Path(reference): Path<String>,
    Query(q): Query<SessionQuery>,
) -> Response {
    let (record, _guard) = match locked_order_for(&state, &reference, q.id.as_deref()).await {
        Ok(found) => found,
        Err(resp) => return resp,
    };
    if let Some(done) = outcome_of(&record) {
        return to_merchant(&state, &record, &done).await;
    }
    if record.order.state != OrderState::Authorizing {
        let r = ResultCode::new(
            Kind::NotAuthorizedYet,
            "The buyer has not confirmed this order yet.",
        );
        return problem(&state, StatusCode::CONFLICT, &r, None);
    }
    let retry = Some(format!(
        "/amazonpay/result/{reference}?amazonCheckoutSessionId={}",
        record.checkout_session_id.as_deref().unwrap_or_default()
    ));
    // A retry may end at the merchant's return URLs: the page's form-action names them.
    let targets = order_targets(&state, &record);
    let actor = Actor {
        command: "AuthorizeResult".into(),
        request: "{\"step\":\"CheckoutResult\"}".into(),
        reports: true,
    };
    // An authorization whose answer was lost before is resolved first (same idempotency key).
    let outcome = match pending_operation(&state, &record).await {
        Ok(Some(op)) => operations::drive(&state, record, op, &actor).await,
        Ok(None) => {
            let intent = Intent {
                kind: OperationKind::CompleteCheckout,
                amount: record.order.amount,
                note: None,
            };
            operations::execute(&state, record, intent, &actor).await
        }
        Err(r) => {
            return problem_to(
                &state,
                StatusCode::INTERNAL_SERVER_ERROR,
                &r,
                retry,
                &targets,
            )
        }
    };
    match outcome {
        Outcome::Done { record, result, .. } | Outcome::Refused { record, result, .. } => {
            match outcome_of(&record) {
                Some(_) => to_merchant(&state, &record, &result).await,
                // Nothing moved (e.g. the order changed at the same time): the page says so.
                None => problem_to(&state, StatusCode::CONFLICT, &result, retry, &targets),
            }
        }
        Outcome::NotYet {
            result, buyer_url, ..
        } => {
            // The buyer has not confirmed at Amazon yet (a reload, a prefetch, a back button):
            // nothing is decided; send them back to Amazon's page.
            problem_to(
                &state,
                StatusCode::CONFLICT,
                &result,
                buyer_url.or(retry),
                &targets,
            )
        }
        Outcome::Unknown { result } => {
            problem_to(&state, StatusCode::BAD_GATEWAY, &result, retry, &targets)
        }
    }
}

/// The order's pending operation, if it has one.
async fn pending_operation(
    state: &AppState,
    record: &OrderRecord,
) -> Result<Option<kessai_store::OperationRecord>, ResultCode> {
    let Some(key) = &record.in_flight else {
        return Ok(None);
    };
    let ops = state
        .store
        .operations(&record.merchant, &record.order_id)
        .await
        .map_err(|e| ResultCode::new(Kind::Internal, e.to_string()))?;
    Ok(ops
        .into_iter()
        .find(|o| &o.key == key && o.status == OperationStatus::Pending))
}

/// Stores the buyer's cancellation, then sends the buyer to the merchant.
async fn finish(
    state: &AppState,
    record: OrderRecord,
    event: Event,
    result: ResultCode,
) -> Response {
    match advance(state, &record, event, "AuthorizeResult", &result).await {
        Ok(after) => to_merchant(state, &after, &result).await,
        Err(r) => problem(state, StatusCode::CONFLICT, &r, None),
    }
}

async fn buyer_cancels(state: &AppState, reference: &str, session: Option<&str>) -> Response {
    let (record, _guard) = match locked_order_for(state, reference, None).await {
        Ok(found) => found,
        Err(resp) => return resp,
    };
    let session = bound_only(&record, session.map(str::to_owned));
    if let Some(resp) = not_own_session(state, &record, session.as_deref()) {
        return resp;
    }
    if let Some(done) = outcome_of(&record) {
        return to_merchant(state, &record, &done).await;
    }
    if record.in_flight.is_some() || record.order.state == OrderState::Authorizing {
        // The buyer had confirmed on Kessai's page: Amazon's checkout session decides. A buyer
        // who paid is not canceled by a stale link; one who canceled at Amazon is.
        let actor = Actor {
            command: "BuyerCanceled".into(),
            request: "{\"step\":\"BuyerCanceled\"}".into(),
            reports: true,
        };
        let outcome = match pending_operation(state, &record).await {
            Ok(Some(op)) => operations::drive(state, record, op, &actor).await,
            Ok(None) => {
                let intent = Intent {
                    kind: OperationKind::CompleteCheckout,
                    amount: record.order.amount,
                    note: None,
                };
                operations::execute(state, record, intent, &actor).await
            }
            Err(r) => return problem(state, StatusCode::INTERNAL_SERVER_ERROR, &r, None),
        };
        return match outcome {
            Outcome::Done { record, result, .. } | Outcome::Refused { record, result, .. } => {
                match outcome_of(&record) {
                    Some(_) => to_merchant(state, &record, &result).await,
                    None => problem(state, StatusCode::CONFLICT, &result, None),
                }
            }
            // Amazon's session is still open and the buyer says cancel: the order is closed
            // here; nothing was authorized, and Amazon's session expires unused.
            Outcome::NotYet { record, .. } => {
                let result =
                    ResultCode::new(Kind::AmazonBuyerCanceled, "The buyer canceled the payment.");
                finish(state, record, Event::BuyerCanceled, result).await
            }
            Outcome::Unknown { result } => problem(state, StatusCode::BAD_GATEWAY, &result, None),
        };
    }
    let result = ResultCode::new(Kind::AmazonBuyerCanceled, "The buyer canceled the payment.");
    finish(state, record, Event::BuyerCanceled, result).await
}

/// Where Amazon Pay sends the buyer who canceled there (`checkoutCancelUrl`). A GET records
/// nothing (prefetchers and link scanners follow links): it shows a page whose form confirms.
async fn cancel_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(reference): Path<String>,
    Query(q): Query<SessionQuery>,
) -> Response {
    let record = match order_for(&state, &reference, None).await {
        Ok(r) => r,
        Err(resp) => return resp,
    };
    let session = bound_only(&record, q.id);
    if let Some(resp) = not_own_session(&state, &record, session.as_deref()) {
        return resp;
    }
    if let Some(done) = outcome_of(&record) {
        return to_merchant(&state, &record, &done).await;
    }
    let csrf = CSRF.token(&headers, || state.random_hex(16));
    let action = match &session {
        Some(id) => format!(
            "/amazonpay/cancel/{reference}?amazonCheckoutSessionId={}",
            form_urlencoded::byte_serialize(id.as_bytes()).collect::<String>()
        ),
        None => format!("/amazonpay/cancel/{reference}"),
    };
    render_page(
        &state,
        StatusCode::OK,
        "cancel.html",
        minijinja::context! {
            title => "Cancel", order_id => record.order_id.as_str(), action => action,
            csrf => csrf.value.clone(),
        },
        &order_targets(&state, &record),
        Some(&csrf),
    )
}

async fn cancel(
    State(state): State<AppState>,
    Path(reference): Path<String>,
    Query(q): Query<SessionQuery>,
    headers: HeaderMap,
    Form(form): Form<CsrfForm>,
) -> Response {
    if !CSRF.check(&headers, form.csrf.as_deref()) {
        return forged(&state);
    }
    buyer_cancels(&state, &reference, q.id.as_deref()).await
}

async fn abandon(
    State(state): State<AppState>,
    Path(reference): Path<String>,
    headers: HeaderMap,
    Form(form): Form<CsrfForm>,
) -> Response {
    if !CSRF.check(&headers, form.csrf.as_deref()) {
        return forged(&state);
    }
    buyer_cancels(&state, &reference, None).await
}
