//! The demo shop at `/`: a tiny merchant that sells two items and pays through Kessai's MDK API
//! over HTTP, exactly as an external merchant would (authHash and all). It keeps its own list of
//! orders in memory; the gateway's record is the truth.

use crate::app::AppState;
use crate::buyer::render;
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use kessai_core::MerchantCcid;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::sync::Mutex;

const ITEMS: &[(&str, &str, u64)] = &[
    ("tea", "抹茶セット / Matcha set", 3_240),
    ("mug", "有田焼マグカップ / Arita mug", 1_980),
];

pub struct Demo {
    ccid: MerchantCcid,
    base_url: String,
    http: reqwest::Client,
    orders: Mutex<BTreeMap<String, DemoOrder>>,
}

#[derive(Debug, Clone, Serialize)]
struct LogLine {
    command: String,
    mstatus: String,
    code: String,
    message: String,
}

#[derive(Debug, Clone, Serialize)]
struct DemoOrder {
    id: String,
    item: String,
    amount: u64,
    capture_now: bool,
    status: String,
    address: Option<String>,
    log: Vec<LogLine>,
}

impl Demo {
    pub fn new(ccid: MerchantCcid, base_url: String) -> Demo {
        Demo {
            ccid,
            base_url,
            http: reqwest::Client::new(),
            orders: Mutex::new(BTreeMap::new()),
        }
    }

    fn with_orders<T>(&self, f: impl FnOnce(&mut BTreeMap<String, DemoOrder>) -> T) -> T {
        match self.orders.lock() {
            Ok(mut o) => f(&mut o),
            Err(p) => f(&mut p.into_inner()),
        }
    }

    /// Calls one MDK command in test mode and returns `result`.
    async fn call(
        &self,
        state: &AppState,
        command: &str,
        mut params: Map<String, Value>,
    ) -> Result<Map<String, Value>, String> {
        let merchant = state
            .store
            .merchant(&self.ccid)
            .await
            .map_err(|e| e.to_string())?
            .ok_or("the demo merchant does not exist")?;
        params.insert("txnVersion".into(), "2.0.0".into());
        params.insert("dummyRequest".into(), "1".into());
        params.insert("merchantCcid".into(), self.ccid.as_str().into());
        let body = crate::mdk::encode_request(
            &Value::Object(params),
            self.ccid.as_str(),
            merchant.secret_hex.expose(),
        );
        let answer: Value = self
            .http
            .post(format!(
                "{}/test-paynow/v2/{command}/amazonpay",
                self.base_url
            ))
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .map_err(|e| e.to_string())?
            .json()
            .await
            .map_err(|e| e.to_string())?;
        match answer.get("result") {
            Some(Value::Object(r)) => Ok(r.clone()),
            _ => Err("the gateway's answer has no result".into()),
        }
    }

    fn log(&self, id: &str, command: &str, result: &Map<String, Value>) {
        let s = |k: &str| {
            result
                .get(k)
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned()
        };
        self.with_orders(|orders| {
            if let Some(o) = orders.get_mut(id) {
                o.log.push(LogLine {
                    command: command.into(),
                    mstatus: s("mstatus"),
                    code: s("vResultCode"),
                    message: s("merrMsg"),
                });
                if s("mstatus") == "success" {
                    o.status = match command {
                        "Capture" => "captured".into(),
                        "Cancel" => "canceled".into(),
                        "Refund" => format!("refunded (refundable ¥{})", s("refundableAmount")),
                        "Authorize" => "waiting for the buyer".into(),
                        _ => o.status.clone(),
                    };
                }
            }
        });
    }
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(shop))
        .route("/demo/buy", post(buy))
        .route("/demo/orders/{id}", get(order_page))
        .route("/demo/orders/{id}/{action}", post(order_action))
}

fn no_demo() -> Response {
    (
        StatusCode::NOT_FOUND,
        "Kessai gateway. The demo shop is disabled.",
    )
        .into_response()
}

fn oops(state: &AppState, message: &str) -> Response {
    render(
        state,
        StatusCode::BAD_GATEWAY,
        "message.html",
        minijinja::context! { title => "Demo shop", heading => "Demo shop error", class => "error", message => message },
    )
}

async fn shop(State(state): State<AppState>) -> Response {
    let Some(demo) = &state.demo else {
        return no_demo();
    };
    let items: Vec<Value> = ITEMS
        .iter()
        .map(|(id, name, price)| json!({"id": id, "name": name, "price": price}))
        .collect();
    let orders: Vec<DemoOrder> = demo.with_orders(|o| o.values().rev().cloned().collect());
    render(
        &state,
        StatusCode::OK,
        "shop.html",
        minijinja::context! { title => "Demo shop", items => items, orders => orders },
    )
}

#[derive(Debug, Deserialize)]
struct BuyForm {
    item: String,
    capture: Option<String>,
}

async fn buy(State(state): State<AppState>, Form(form): Form<BuyForm>) -> Response {
    let Some(demo) = &state.demo else {
        return no_demo();
    };
    let Some((item, name, price)) = ITEMS.iter().find(|(id, _, _)| *id == form.item) else {
        return oops(&state, "No such item.");
    };
    let stamp = state.clock.unix();
    let id = format!("demo-{stamp}-{}", state.ids.hex(3));
    let back = format!("{}/demo/orders/{id}", demo.base_url);
    demo.with_orders(|o| {
        o.insert(
            id.clone(),
            DemoOrder {
                id: id.clone(),
                item: (*name).into(),
                amount: *price,
                capture_now: form.capture.as_deref() == Some("true"),
                status: "new".into(),
                address: None,
                log: vec![],
            },
        )
    });
    let mut params = Map::new();
    params.insert("orderId".into(), id.clone().into());
    params.insert("amount".into(), price.to_string().into());
    params.insert(
        "withCapture".into(),
        if form.capture.as_deref() == Some("true") {
            "true"
        } else {
            "false"
        }
        .into(),
    );
    params.insert("noteToBuyer".into(), format!("Kessai demo: {item}").into());
    params.insert("successUrl".into(), back.clone().into());
    params.insert("cancelUrl".into(), back.clone().into());
    params.insert("errorUrl".into(), back.into());
    match demo.call(&state, "Authorize", params).await {
        Ok(result) => {
            demo.log(&id, "Authorize", &result);
            match result.get("responseContents").and_then(Value::as_str) {
                Some(html) => (
                    [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
                    html.to_owned(),
                )
                    .into_response(),
                None => oops(
                    &state,
                    &format!(
                        "Authorize failed: {}",
                        result.get("merrMsg").and_then(Value::as_str).unwrap_or("")
                    ),
                ),
            }
        }
        Err(e) => oops(&state, &e),
    }
}

#[derive(Debug, Deserialize)]
struct ReturnQuery {
    mstatus: Option<String>,
    #[serde(rename = "vResultCode")]
    v_result_code: Option<String>,
}

async fn order_page(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<ReturnQuery>,
) -> Response {
    let Some(demo) = &state.demo else {
        return no_demo();
    };
    if let (Some(mstatus), Some(code)) = (&q.mstatus, &q.v_result_code) {
        demo.with_orders(|o| {
            if let Some(order) = o.get_mut(&id) {
                if order.status == "waiting for the buyer" {
                    order.status = match (mstatus.as_str(), order.capture_now) {
                        ("success", true) => "captured (paid at Amazon Pay)".to_owned(),
                        ("success", false) => "authorized (paid at Amazon Pay)".to_owned(),
                        ("pending", _) => format!("Amazon Pay is confirming the payment ({code})"),
                        _ => format!("not paid ({code})"),
                    };
                    order.log.push(LogLine {
                        command: "buyer returned".into(),
                        mstatus: mstatus.clone(),
                        code: code.clone(),
                        message: String::new(),
                    });
                }
            }
        });
        if mstatus == "success" {
            let mut params = Map::new();
            params.insert("orderId".into(), id.clone().into());
            if let Ok(r) = demo.call(&state, "GetAddress", params).await {
                let s = |k: &str| r.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
                let address = format!(
                    "{} 〒{} {}{} {}",
                    s("shippingName"),
                    s("shippingPostalCode"),
                    s("shippingPrefecture"),
                    s("shippingAddress1"),
                    s("shippingAddress2")
                );
                demo.with_orders(|o| {
                    if let Some(order) = o.get_mut(&id) {
                        order.address = Some(address);
                    }
                });
            }
        }
    }
    let Some(order) = demo.with_orders(|o| o.get(&id).cloned()) else {
        return oops(
            &state,
            "This demo order is not known (the demo shop forgets its orders when Kessai restarts).",
        );
    };
    render(
        &state,
        StatusCode::OK,
        "demo_order.html",
        minijinja::context! { title => "Order", order => order },
    )
}

#[derive(Debug, Deserialize)]
struct ActionForm {
    amount: Option<String>,
}

async fn order_action(
    State(state): State<AppState>,
    Path((id, action)): Path<(String, String)>,
    Form(form): Form<ActionForm>,
) -> Response {
    let Some(demo) = &state.demo else {
        return no_demo();
    };
    let command = match action.as_str() {
        "capture" => "Capture",
        "cancel" => "Cancel",
        "refund" => "Refund",
        _ => return oops(&state, "No such action."),
    };
    let mut params = Map::new();
    params.insert("orderId".into(), id.clone().into());
    if let Some(a) = form.amount.filter(|a| !a.trim().is_empty()) {
        params.insert("amount".into(), a.trim().into());
    }
    match demo.call(&state, command, params).await {
        Ok(result) => demo.log(&id, command, &result),
        Err(e) => return oops(&state, &e),
    }
    (
        StatusCode::SEE_OTHER,
        [(header::LOCATION, format!("/demo/orders/{id}"))],
    )
        .into_response()
}

/// The demo shop's templates beside the buyer pages'.
pub fn add_templates(_env: &mut minijinja::Environment<'static>) {}
