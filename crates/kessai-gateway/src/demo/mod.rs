//! The demo shop at `/`: a tiny merchant that sells two items and pays through Kessai's MDK API
//! over HTTP, exactly as an external merchant would (authHash and all). It keeps nothing of its
//! own: the order list, each order's state and the actions offered come from the gateway's
//! answers (Search, GetAddress), so links keep working after a restart.
//!
//! Every payment pattern of the protocol is offered: one-time with Kessai's confirmation page or
//! with the shop's own (`payConfirmScreenType` 1: GetAddress, a shipping fee, UpdateAuthorize),
//! a subscription with its first charge, a consent alone then "charge now" (ReAuthorize), a plan
//! change (UpdateConsent), its end (Terminate), and a change of amount (UpdateAuthorize).

mod autopay;
mod client;
mod mws;
mod view;

use crate::app::AppState;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use client::{Failure, MdkClient};
use kessai_core::MerchantCcid;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use view::{yen, Action, OrderView};

/// What the shop sells: id (part of each order id), name, price.
const ITEMS: &[(&str, &str, u64)] = &[
    ("tea", "抹茶セット / Matcha set", 3_240),
    ("mug", "有田焼マグカップ / Arita mug", 1_980),
];

/// Shipping fees the buyer picks on the shop's own confirmation page.
const SHIPPING: &[(&str, &str, u64)] = &[
    ("standard", "通常便 / Standard", 500),
    ("express", "お急ぎ便 / Express", 900),
];

/// The demo's CSRF cookie: the gateway's pages have their own.
const CSRF: kessai_http::csrf::Csrf = kessai_http::csrf::Csrf::new("kessai_demo_csrf");

pub struct Demo {
    mdk: MdkClient,
    /// The Auto Pay page's client of the built-in emulator; `None` with an external one.
    auto_pay: Option<autopay::AutoPay>,
}

impl Demo {
    pub fn new(ccid: MerchantCcid, base_url: String, auto_pay: Option<AutoPayEmulator>) -> Demo {
        Demo {
            mdk: MdkClient::new(ccid, base_url),
            auto_pay: auto_pay.map(|e| autopay::AutoPay::new(e.base_url, e.helpers_token)),
        }
    }
}

/// The built-in emulator, for the Auto Pay page (its MWS face, widgets and seller helper).
#[derive(Debug, Clone)]
pub struct AutoPayEmulator {
    pub base_url: String,
    /// The helper token header and value, when the emulator asks for one.
    pub helpers_token: Option<(String, String)>,
}

/// The demo shop's templates beside the buyer pages', and the `yen` filter (`3240` → `¥3,240`).
pub fn add_templates(env: &mut minijinja::Environment<'static>) {
    env.add_filter("yen", |amount: u64| yen(amount));
    for (name, source) in [
        ("shop.html", include_str!("../../templates/shop.html")),
        (
            "demo_order.html",
            include_str!("../../templates/demo_order.html"),
        ),
        (
            "demo_confirm.html",
            include_str!("../../templates/demo_confirm.html"),
        ),
    ] {
        if let Err(e) = env.add_template(name, source) {
            tracing::error!(%e, name, "template does not parse");
        }
    }
    autopay::add_templates(env);
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(shop))
        .route("/demo/buy", post(buy))
        .route("/demo/orders/{id}", get(order_page))
        .route(
            "/demo/orders/{id}/confirm",
            get(confirm_page).post(confirm_submit),
        )
        .route("/demo/orders/{id}/{action}", post(order_action))
        .merge(autopay::router())
}

fn no_demo() -> Response {
    (
        StatusCode::NOT_FOUND,
        "Kessai gateway. The demo shop is disabled.",
    )
        .into_response()
}

/// Renders a demo page with its CSRF token; its forms stay on the gateway or, after a redirect,
/// go to Amazon Pay.
fn page(
    state: &AppState,
    headers: &HeaderMap,
    status: StatusCode,
    name: &str,
    ctx: minijinja::Value,
) -> Response {
    let csrf = CSRF.token(headers, || state.random_hex(16));
    let ctx = minijinja::context! { csrf => csrf.value.clone(), ..ctx };
    let html = state
        .templates
        .get_template(name)
        .and_then(|t| t.render(ctx));
    match html {
        Ok(html) => {
            let targets = [Some(state.hand_off.form_target())];
            let mut response = (
                status,
                [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
                kessai_http::page_headers(&targets),
                html,
            )
                .into_response();
            if let Some((name, value)) = csrf.header() {
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

/// A page that says what went wrong, in words with the code.
fn trouble(state: &AppState, status: StatusCode, heading: &str, failure: &Failure) -> Response {
    crate::buyer::render(
        state,
        status,
        "message.html",
        minijinja::context! {
            title => "Demo shop", heading => heading, class => "error",
            message => failure.message.clone(),
            mstatus => "failure", code => failure.code.clone(),
        },
    )
}

fn forged(state: &AppState) -> Response {
    let failure = Failure {
        message: "This form did not come from the demo shop's page in this browser (CSRF check). Go back, reload the page and try again.".into(),
        code: String::new(),
    };
    trouble(state, StatusCode::FORBIDDEN, "Demo shop", &failure)
}

fn see_other(url: &str) -> Response {
    (StatusCode::SEE_OTHER, [(header::LOCATION, url.to_owned())]).into_response()
}

fn item_of(order_id: &str) -> Option<&'static (&'static str, &'static str, u64)> {
    let item = order_id.strip_prefix("demo-")?.split('-').next()?;
    ITEMS.iter().find(|(id, _, _)| *id == item)
}

fn items_json() -> Vec<Value> {
    ITEMS
        .iter()
        .map(|(id, name, price)| json!({"id": id, "name": name, "price": price}))
        .collect()
}

/// The shop's orders, newest first, as the gateway's Search finds them.
async fn orders(state: &AppState, demo: &Demo) -> Result<Vec<OrderView>, Failure> {
    let found = demo
        .mdk
        .search(state, json!({"common": {"orderId": "demo-*"}}))
        .await?;
    let mut views: Vec<OrderView> = found.iter().filter_map(OrderView::from_search).collect();
    // Newest first: an order id is `demo-{item}-{unix seconds}{random}`.
    let stamp = |id: &str| id.splitn(3, '-').nth(2).unwrap_or("").to_owned();
    views.sort_by_key(|o| std::cmp::Reverse(stamp(&o.id)));
    Ok(views)
}

async fn one_order(state: &AppState, demo: &Demo, id: &str) -> Result<Option<OrderView>, Failure> {
    let found = demo
        .mdk
        .search(state, json!({"common": {"orderId": id}}))
        .await?;
    Ok(found
        .iter()
        .filter_map(OrderView::from_search)
        .find(|o| o.id == id))
}

async fn shop_page(
    state: &AppState,
    demo: &Demo,
    headers: &HeaderMap,
    status: StatusCode,
    error: Option<Failure>,
) -> Response {
    let (list, list_error) = match orders(state, demo).await {
        Ok(list) => (list, None),
        Err(f) => (Vec::new(), Some(f)),
    };
    let names: Vec<(String, String)> = list
        .iter()
        .map(|o| {
            let name = item_of(&o.id).map(|i| i.1).unwrap_or("");
            (o.id.clone(), name.to_owned())
        })
        .collect();
    page(
        state,
        headers,
        status,
        "shop.html",
        minijinja::context! {
            title => "Demo shop", items => items_json(), orders => list, names => names
                .into_iter().collect::<std::collections::BTreeMap<_, _>>(),
            error => error, list_error => list_error,
        },
    )
}

async fn shop(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let Some(demo) = &state.demo else {
        return no_demo();
    };
    shop_page(&state, demo, &headers, StatusCode::OK, None).await
}

#[derive(Debug, Deserialize)]
struct BuyForm {
    csrf: Option<String>,
    item: String,
    /// `once`, `once-shop`, `subscribe` or `consent`.
    pattern: Option<String>,
    capture: Option<String>,
}

async fn buy(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<BuyForm>,
) -> Response {
    let Some(demo) = &state.demo else {
        return no_demo();
    };
    if !CSRF.check(&headers, form.csrf.as_deref()) {
        return forged(&state);
    }
    let Some((item, name, price)) = ITEMS.iter().find(|(id, _, _)| *id == form.item) else {
        let f = Failure {
            message: format!("The shop does not sell {:?}.", form.item),
            code: String::new(),
        };
        return shop_page(&state, demo, &headers, StatusCode::BAD_REQUEST, Some(f)).await;
    };
    let id = format!("demo-{item}-{}{}", state.clock.unix(), state.ids.hex(3));
    let base = &demo.mdk.base_url;
    let back = format!("{base}/demo/orders/{id}");
    let capture = form.capture.as_deref() == Some("true");
    let mut params = Map::new();
    params.insert("orderId".into(), id.clone().into());
    params.insert("amount".into(), price.to_string().into());
    params.insert("withCapture".into(), capture.to_string().into());
    params.insert("noteToBuyer".into(), format!("Kessai demo: {name}").into());
    params.insert("successUrl".into(), back.clone().into());
    params.insert("cancelUrl".into(), back.clone().into());
    params.insert("errorUrl".into(), back.into());
    match form.pattern.as_deref().unwrap_or("once") {
        "once" => {}
        "once-shop" => {
            params.insert("payConfirmScreenType".into(), "1".into());
            params.insert(
                "payConfirmScreenUrl".into(),
                format!("{base}/demo/orders/{id}/confirm").into(),
            );
        }
        pattern @ ("subscribe" | "consent") => {
            params.insert("accountingType".into(), "1".into());
            params.insert("frequencyUnit".into(), "Month".into());
            params.insert("frequencyValue".into(), "1".into());
            let auth = if pattern == "subscribe" { "1" } else { "0" };
            params.insert("consentAuthType".into(), auth.into());
            if pattern == "consent" {
                params.remove("withCapture");
            }
        }
        other => {
            let f = Failure {
                message: format!("There is no way to pay called {other:?}."),
                code: String::new(),
            };
            return shop_page(&state, demo, &headers, StatusCode::BAD_REQUEST, Some(f)).await;
        }
    }
    match demo.mdk.call(&state, "Authorize", params).await {
        // The gateway's page that sends the buyer on to Amazon Pay, as the MDK hands it over.
        Ok(result) => match result.get("responseContents").and_then(Value::as_str) {
            Some(html) => (
                [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
                html.to_owned(),
            )
                .into_response(),
            None => {
                let f = Failure {
                    message: "The gateway's Authorize answer has no responseContents.".into(),
                    code: String::new(),
                };
                shop_page(&state, demo, &headers, StatusCode::BAD_GATEWAY, Some(f)).await
            }
        },
        Err(f) => {
            let f = Failure {
                message: format!("The payment could not be started: {}", f.message),
                code: f.code,
            };
            shop_page(&state, demo, &headers, StatusCode::OK, Some(f)).await
        }
    }
}

/// What the buyer's return from Amazon Pay says, in words.
fn arrival(query: &[(String, String)], signed: bool) -> Option<(String, bool)> {
    let get = |k: &str| query.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    let mstatus = get("mstatus")?;
    let code = get("vResultCode").unwrap_or("");
    if !signed {
        return Some((
            format!("The return from Amazon Pay is not signed by the gateway (vAuthInfo does not match); it is ignored. ({code})"),
            false,
        ));
    }
    Some(match mstatus {
        "success" => ("Thank you: the payment went through.".into(), true),
        "pending" => (
            "Amazon Pay is still checking the payment; this page shows the result once it is known."
                .into(),
            true,
        ),
        _ if code.starts_with("E402") => ("You canceled the payment at Amazon Pay.".into(), false),
        _ if code.starts_with("E401") => (format!("Amazon Pay declined the payment ({code})."), false),
        _ => (format!("The payment did not go through ({code})."), false),
    })
}

async fn order_view_page(
    state: &AppState,
    demo: &Demo,
    headers: &HeaderMap,
    id: &str,
    arrived: Option<(String, bool)>,
    error: Option<(Action, Failure)>,
) -> Response {
    let order = match one_order(state, demo, id).await {
        Ok(Some(o)) => o,
        Ok(None) => {
            let f = Failure {
                message: format!("The gateway has no order {id}."),
                code: String::new(),
            };
            return trouble(state, StatusCode::NOT_FOUND, "No such order", &f);
        }
        Err(f) => {
            return trouble(
                state,
                StatusCode::BAD_GATEWAY,
                "The gateway did not answer",
                &f,
            )
        }
    };
    // A subscription set up is not "a payment went through".
    let arrived = arrived.map(|(words, ok)| {
        match ok && order.subscription && words.starts_with("Thank you") {
            true if order.state == "Consented" => (
                "Thank you: your subscription is set up; nothing is charged yet.".to_owned(),
                ok,
            ),
            true => (
                "Thank you: your subscription is set up and the first payment went through."
                    .to_owned(),
                ok,
            ),
            false => (words, ok),
        }
    });
    let paid = !matches!(
        order.state.as_str(),
        "Started"
            | "PreAuth"
            | "Authorizing"
            | "Canceled"
            | "Declined"
            | "Expired"
            | "BuyerCanceled"
    );
    let address = if paid {
        let mut params = Map::new();
        params.insert("orderId".into(), id.into());
        demo.mdk
            .call(state, "GetAddress", params)
            .await
            .ok()
            .map(|r| {
                let s = |k: &str| r.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
                format!(
                    "{} 〒{} {}{} {}",
                    s("shippingName"),
                    s("shippingPostalCode"),
                    s("shippingPrefecture"),
                    s("shippingAddress1"),
                    s("shippingAddress2")
                )
            })
    } else {
        None
    };
    let charges = if order.subscription {
        demo.mdk
            .search(state, json!({"amazonpay": {"originalOrderId": id}}))
            .await
            .map(|found| found.iter().filter_map(OrderView::from_search).collect())
            .unwrap_or_default()
    } else {
        Vec::<OrderView>::new()
    };
    let item = item_of(id);
    let (error_action, error) = match error {
        Some((a, f)) => (Some(a), Some(f)),
        None => (None, None),
    };
    page(
        state,
        headers,
        StatusCode::OK,
        "demo_order.html",
        minijinja::context! {
            title => "Order", order => order.clone(), item => item.map(|i| i.1),
            refundable => order.refundable(), address => address, charges => charges,
            arrived => arrived.as_ref().map(|a| a.0.clone()),
            arrived_ok => arrived.as_ref().map(|a| a.1),
            error_action => error_action, error => error,
            units => ["Month", "Week", "Day", "Year"],
        },
    )
}

async fn order_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Response {
    let Some(demo) = &state.demo else {
        return no_demo();
    };
    let query: Vec<(String, String)> = form_urlencoded::parse(raw.unwrap_or_default().as_bytes())
        .into_owned()
        .collect();
    let arrived = if query.iter().any(|(k, _)| k == "mstatus") {
        let signed = match demo.mdk.secret(&state).await {
            Ok(secret) => {
                client::return_is_signed(demo.mdk.ccid.as_str(), &secret, &query)
                    && query.iter().any(|(k, v)| k == "orderId" && *v == id)
            }
            Err(_) => false,
        };
        arrival(&query, signed)
    } else {
        None
    };
    order_view_page(&state, demo, &headers, &id, arrived, None).await
}

/// A form field the buyer filled in (blank counts as not given).
fn given(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

#[derive(Debug, Deserialize)]
struct ActionForm {
    csrf: Option<String>,
    amount: Option<String>,
    #[serde(rename = "frequencyUnit")]
    frequency_unit: Option<String>,
    #[serde(rename = "frequencyValue")]
    frequency_value: Option<String>,
}

async fn order_action(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((id, segment)): Path<(String, String)>,
    Form(form): Form<ActionForm>,
) -> Response {
    let Some(demo) = &state.demo else {
        return no_demo();
    };
    if !CSRF.check(&headers, form.csrf.as_deref()) {
        return forged(&state);
    }
    let Some(action) = Action::parse(&segment) else {
        let f = Failure {
            message: format!("The demo shop has no action {segment:?}."),
            code: String::new(),
        };
        return trouble(&state, StatusCode::NOT_FOUND, "No such action", &f);
    };
    let mut params = Map::new();
    let mut target = id.clone();
    if action == Action::ChargeNow {
        // A charge is an order of its own against the subscription's consent.
        let item = item_of(&id).map(|i| i.0).unwrap_or("tea");
        target = format!("demo-{item}-{}{}", state.clock.unix(), state.ids.hex(3));
        params.insert("originalOrderId".into(), id.clone().into());
        params.insert("withCapture".into(), "true".into());
    }
    params.insert("orderId".into(), target.clone().into());
    if let Some(amount) = given(&form.amount) {
        params.insert("amount".into(), amount.into());
    }
    if action == Action::ChangePlan {
        for (key, value) in [
            ("frequencyUnit", given(&form.frequency_unit)),
            ("frequencyValue", given(&form.frequency_value)),
        ] {
            if let Some(v) = value {
                params.insert(key.into(), v.into());
            }
        }
    }
    match demo.mdk.call(&state, action.command(), params).await {
        Ok(_) => see_other(&format!("/demo/orders/{target}")),
        Err(f) => {
            let f = Failure {
                message: format!("{}: {}", action.attempt(), f.message),
                code: f.code,
            };
            order_view_page(&state, demo, &headers, &id, None, Some((action, f))).await
        }
    }
}

/// The shop's own confirmation page (`payConfirmScreenUrl`): the buyer signed in at Amazon Pay;
/// the shop shows the address (GetAddress), lets the buyer pick the shipping, and sets the final
/// amount (UpdateAuthorize) before sending the buyer on to `payRedirectUrl`.
async fn confirm_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let Some(demo) = &state.demo else {
        return no_demo();
    };
    confirm_view(&state, demo, &headers, &id, None).await
}

async fn confirm_view(
    state: &AppState,
    demo: &Demo,
    headers: &HeaderMap,
    id: &str,
    error: Option<Failure>,
) -> Response {
    let Some((_, name, price)) = item_of(id) else {
        let f = Failure {
            message: format!("{id} is not an order of the demo shop."),
            code: String::new(),
        };
        return trouble(state, StatusCode::NOT_FOUND, "No such order", &f);
    };
    let mut params = Map::new();
    params.insert("orderId".into(), id.into());
    let address = match demo.mdk.call(state, "GetAddress", params).await {
        Ok(r) => r,
        Err(f) => {
            return trouble(
                state,
                StatusCode::OK,
                "ご注文を確認できません / Cannot confirm this order",
                &f,
            )
        }
    };
    let s = |k: &str| {
        address
            .get(k)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned()
    };
    let shipping: Vec<Value> = SHIPPING
        .iter()
        .map(|(id, label, fee)| json!({"id": id, "label": label, "fee": fee, "total": price + fee}))
        .collect();
    page(
        state,
        headers,
        StatusCode::OK,
        "demo_confirm.html",
        minijinja::context! {
            title => "Confirm your order", order_id => id, item => name, price => price,
            name => s("shippingName"), postal => s("shippingPostalCode"),
            address => format!("{}{} {} {}", s("shippingPrefecture"), s("shippingAddress1"),
                s("shippingAddress2"), s("shippingAddress3")),
            can_pay => !s("payRedirectUrl").is_empty(),
            shipping => shipping, error => error,
        },
    )
}

#[derive(Debug, Deserialize)]
struct ConfirmForm {
    csrf: Option<String>,
    shipping: Option<String>,
}

async fn confirm_submit(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<ConfirmForm>,
) -> Response {
    let Some(demo) = &state.demo else {
        return no_demo();
    };
    if !CSRF.check(&headers, form.csrf.as_deref()) {
        return forged(&state);
    }
    let Some((_, _, price)) = item_of(&id) else {
        return see_other(&format!("/demo/orders/{id}"));
    };
    let fee = SHIPPING
        .iter()
        .find(|(s, _, _)| Some(*s) == form.shipping.as_deref())
        .map(|s| s.2)
        .unwrap_or(SHIPPING[0].2);
    let mut params = Map::new();
    params.insert("orderId".into(), id.clone().into());
    params.insert("amount".into(), (price + fee).to_string().into());
    let outcome = demo.mdk.call(&state, "UpdateAuthorize", params).await;
    match outcome
        .as_ref()
        .ok()
        .and_then(|r| r.get("payRedirectUrl"))
        .and_then(Value::as_str)
    {
        Some(url) if url.starts_with("http") => see_other(url),
        _ => {
            let f = match outcome {
                Err(f) => Failure {
                    message: format!("The final amount could not be set: {}", f.message),
                    code: f.code,
                },
                Ok(_) => Failure {
                    message: "The gateway's UpdateAuthorize answer has no payRedirectUrl.".into(),
                    code: String::new(),
                },
            };
            confirm_view(&state, demo, &headers, &id, Some(f)).await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_order_id_names_its_item() {
        assert_eq!(
            item_of("demo-tea-1700000000abcdef").map(|i| i.2),
            Some(3_240)
        );
        assert_eq!(item_of("demo-mug-1").map(|i| i.0), Some("mug"));
        assert!(item_of("demo-1700000000-abcdef").is_none());
        assert!(item_of("shop-tea-1").is_none());
    }

    fn env() -> minijinja::Environment<'static> {
        let mut env = crate::buyer::templates();
        add_templates(&mut env);
        env
    }

    fn sample(state: &str, proper: Value) -> OrderView {
        let info = json!({"orderId": "demo-tea-1", "orderStatus": state, "properOrderInfo": proper,
            "transactionInfos": {"transactionInfo": [{"command": "Authorize", "mstatus": "success",
            "vResultCode": "S000000000000000", "txnDatetime": "20260301123456", "amount": "3240"}]}});
        OrderView::from_search(info.as_object().unwrap_or(&Map::new()))
            .unwrap_or_else(|| panic!("view"))
    }

    #[test]
    fn pages_show_words_amounts_and_the_allowed_actions() {
        let env = env();
        let order = sample(
            "Captured",
            json!({"amount": "3240", "capturedAmount": "3240", "refundedAmount": "0"}),
        );
        let error = Failure {
            message: "The refund failed: amount is too high".into(),
            code: "E307F00200000000".into(),
        };
        let html = env
            .get_template("demo_order.html")
            .and_then(|t| {
                t.render(minijinja::context! {
                    title => "Order", order => order.clone(), item => "Matcha", refundable => 3240,
                    csrf => "c0ffee", error_action => Some(Action::Refund), error => Some(error),
                    units => ["Month"], charges => Vec::<OrderView>::new(),
                })
            })
            .unwrap_or_else(|e| panic!("{e:#}"));
        assert!(html.contains("captured ¥3,240"), "{html}");
        assert!(html.contains("/demo/orders/demo-tea-1/refund"));
        assert!(
            !html.contains("/demo/orders/demo-tea-1/capture"),
            "no capture once captured"
        );
        assert!(html.contains("E307F00200000000"));
        assert_eq!(html.matches("name=\"csrf\" value=\"c0ffee\"").count(), 1);
        assert!(html.contains("2026-03-01 12:34:56"));
        let html = env
            .get_template("shop.html")
            .and_then(|t| {
                t.render(minijinja::context! {
                    title => "Demo shop", items => items_json(), orders => vec![order],
                    names => std::collections::BTreeMap::from([("demo-tea-1", "Matcha")]),
                    csrf => "c0ffee", error => None::<Failure>, list_error => None::<Failure>,
                })
            })
            .unwrap_or_else(|e| panic!("{e:#}"));
        assert!(html.contains("¥3,240") && html.contains("¥1,980"), "{html}");
        assert!(!html.contains('￥'));
        assert!(html.contains(">Matcha<"));
        let html = env
            .get_template("demo_confirm.html")
            .and_then(|t| t.render(minijinja::context! {
                title => "Confirm", order_id => "demo-tea-1", item => "Matcha", price => 3240,
                name => "山田", postal => "100-0001", address => "東京都千代田区", can_pay => true,
                shipping => vec![json!({"id": "standard", "label": "Standard", "fee": 500, "total": 3740})],
                csrf => "c0ffee", error => None::<Failure>,
            }))
            .unwrap_or_else(|e| panic!("{e:#}"));
        assert!(
            html.contains("¥3,740") && html.contains("name=\"csrf\""),
            "{html}"
        );
    }

    #[test]
    fn a_return_in_words() {
        let q = |m: &str, c: &str| {
            vec![
                ("mstatus".to_owned(), m.to_owned()),
                ("vResultCode".to_owned(), c.to_owned()),
            ]
        };
        assert_eq!(
            arrival(&q("success", "S000000000000000"), true).map(|a| a.1),
            Some(true)
        );
        let (words, ok) = arrival(&q("failure", "E401000000000000"), true).unwrap_or_default();
        assert!(!ok && words.contains("declined") && words.contains("E401"));
        let (words, ok) = arrival(&q("success", "S000000000000000"), false).unwrap_or_default();
        assert!(!ok && words.contains("not signed"));
        assert!(arrival(&[], true).is_none());
    }
}
