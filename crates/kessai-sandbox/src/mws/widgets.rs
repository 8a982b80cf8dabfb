//! The Auto Pay widgets: `Widgets.js` (what a merchant page includes, as it includes Amazon's),
//! and the pages it frames into the merchant's page: the address book, the wallet and the
//! billing-agreement consent. Each frame talks back to the page by `postMessage`.
//!
//! A frame is opened with the buyer's access token; the page it gets carries a frame token (128
//! random bits, kept here and bound to that buyer, seller and agreement). Every change a frame
//! asks for (`POST /mws/widgets/action`) must carry it: a page of another site, which can
//! neither read the frame nor guess the token, cannot choose for the buyer.

use super::buyer::{self, Csp};
use super::login::LwaScope;
use crate::buyers::{self, INSTRUMENTS};
use crate::engine::agreements::service::Scope;
use crate::engine::agreements::{
    BillingAgreement, BuyerChange, EngineError, Environment, PaymentMethod, Refusal, SellerId,
};
use crate::server::AppState;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use serde::Deserialize;
use serde_json::json;
use std::collections::HashMap;
use std::sync::Mutex;

/// Where merchants load the script (Amazon's JP paths, sandbox and live).
pub const SCRIPT_PATHS: [&str; 2] = [
    "/OffAmazonPayments/jp/sandbox/lpa/js/Widgets.js",
    "/OffAmazonPayments/jp/lpa/js/Widgets.js",
];
const WIDGETS_JS: &str = include_str!("../../static/widgets.js");
const FRAME_JS: &str = include_str!("../../static/widget-frame.js");
const HANDOFF_JS: &str = include_str!("../../static/lwa-handoff.js");
const WIDGETS_CSS: &str = include_str!("../../static/widgets.css");
/// The most frames kept; beyond it the one closest to expiry goes first.
const MAX_FRAMES: usize = 10_000;

/// The payment methods the wallet offers: three that pay and one that is declined.
const WALLET: [&str; 4] = ["visa-1111", "mc-4444", "jcb-0005", "visa-3434"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WidgetKind {
    AddressBook,
    Wallet,
    Consent,
}

impl WidgetKind {
    fn parse(text: &str) -> Option<WidgetKind> {
        Some(match text {
            "addressbook" => WidgetKind::AddressBook,
            "wallet" => WidgetKind::Wallet,
            "consent" => WidgetKind::Consent,
            _ => return None,
        })
    }
    fn as_str(self) -> &'static str {
        match self {
            WidgetKind::AddressBook => "addressbook",
            WidgetKind::Wallet => "wallet",
            WidgetKind::Consent => "consent",
        }
    }
}

/// One open widget frame: whose, on which agreement (once it has one), until when.
#[derive(Debug, Clone)]
struct Frame {
    kind: WidgetKind,
    seller: SellerId,
    environment: Environment,
    buyer_id: String,
    agreement: Option<String>,
    expires_at: i64,
}

/// The frames handed out, by frame token.
#[derive(Default)]
pub struct Frames {
    map: Mutex<HashMap<String, Frame>>,
}

impl Frames {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, Frame>> {
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn open(&self, token: String, frame: Frame, now: i64) {
        let mut map = self.map();
        map.retain(|_, f| f.expires_at > now);
        while map.len() >= MAX_FRAMES {
            let Some(first) = map
                .iter()
                .min_by_key(|(_, f)| f.expires_at)
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            map.remove(&first);
        }
        map.insert(token, frame);
    }

    fn get(&self, token: &str, now: i64) -> Option<Frame> {
        self.map()
            .get(token)
            .filter(|f| f.expires_at > now)
            .cloned()
    }

    fn bind(&self, token: &str, agreement: &str) {
        if let Some(f) = self.map().get_mut(token) {
            f.agreement = Some(agreement.to_owned());
        }
    }
}

pub fn router() -> Router<AppState> {
    let mut r = Router::new();
    for path in SCRIPT_PATHS {
        r = r.route(path, get(|| async { buyer::script(WIDGETS_JS) }));
    }
    r.route(
        "/mws/static/widget-frame.js",
        get(|| async { buyer::script(FRAME_JS) }),
    )
    .route(
        "/mws/static/lwa-handoff.js",
        get(|| async { buyer::script(HANDOFF_JS) }),
    )
    .route("/mws/static/widgets.css", get(css))
    .route("/mws/widgets/action", post(action))
    .route("/mws/widgets/{kind}", get(widget_page))
}

async fn css() -> Response {
    (
        [(axum::http::header::CONTENT_TYPE, "text/css; charset=utf-8")],
        WIDGETS_CSS,
    )
        .into_response()
}

/// What `Widgets.js` puts in a frame's URL.
#[derive(Debug, Deserialize)]
pub struct FrameQuery {
    #[serde(rename = "sellerId")]
    seller_id: Option<String>,
    /// The merchant page's origin: the only one that may frame the page and hear from it.
    origin: Option<String>,
    access_token: Option<String>,
    #[serde(rename = "amazonBillingAgreementId")]
    agreement: Option<String>,
    /// `sandbox` or `live`: which script the page loaded.
    env: Option<String>,
    /// The page's name for this frame, echoed in each message.
    frame: Option<String>,
}

/// A widget that cannot be shown: the page tells its merchant page (`onError`) and the buyer.
struct WidgetError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

fn widget_error(status: StatusCode, code: &'static str, message: impl Into<String>) -> WidgetError {
    WidgetError {
        status,
        code,
        message: message.into(),
    }
}

async fn widget_page(
    State(state): State<AppState>,
    Path(kind): Path<String>,
    Query(q): Query<FrameQuery>,
) -> Response {
    let origin = q
        .origin
        .as_deref()
        .and_then(kessai_http::origin_of)
        .filter(|o| Some(o.as_str()) == q.origin.as_deref());
    let Some(origin) = origin else {
        return buyer::error_page(
            &state,
            StatusCode::BAD_REQUEST,
            "origin (the merchant page's origin) is missing or not an http(s) origin.",
        );
    };
    let frame_name: String = q
        .frame
        .clone()
        .unwrap_or_default()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .take(64)
        .collect();
    let (status, page) = match open_frame(&state, &kind, &q).await {
        Ok(ctx) => (StatusCode::OK, ctx),
        Err(e) => (
            e.status,
            minijinja::context! {
                title => "Amazon Pay", kind => kind, error_code => e.code, error_message => e.message,
            },
        ),
    };
    buyer::render(
        &state,
        status,
        "widget.html",
        minijinja::context! { origin => origin, frame => frame_name, ..page },
        Csp::widget(&origin),
        None,
    )
}

/// Checks the token and the agreement, opens the frame; the page's context.
async fn open_frame(
    state: &AppState,
    kind: &str,
    q: &FrameQuery,
) -> Result<minijinja::Value, WidgetError> {
    let bad = |code, m: &str| widget_error(StatusCode::BAD_REQUEST, code, m);
    let kind = WidgetKind::parse(kind).ok_or_else(|| {
        widget_error(
            StatusCode::NOT_FOUND,
            "InvalidWidget",
            "There is no such widget (addressbook, wallet, consent).",
        )
    })?;
    let environment = match q.env.as_deref() {
        Some("live") => Environment::Live,
        _ => Environment::Sandbox,
    };
    let now = state.now();
    let token = q
        .access_token
        .as_deref()
        .ok_or_else(|| {
            widget_error(
                StatusCode::UNAUTHORIZED,
                "BuyerSessionExpired",
                "The buyer is not signed in: call amazon.Login.authorize first.",
            )
        })
        .and_then(|t| {
            state.mws.buyer.tokens.find(t, now).map_err(|p| {
                widget_error(
                    StatusCode::UNAUTHORIZED,
                    "BuyerSessionExpired",
                    p.to_string(),
                )
            })
        })?;
    let seller_id = q
        .seller_id
        .as_deref()
        .ok_or_else(|| bad("InvalidSellerId", "sellerId is missing."))?;
    if seller_id != token.seller().as_str() {
        return Err(widget_error(
            StatusCode::FORBIDDEN,
            "InvalidSellerId",
            "The buyer signed in at another seller's client (the token's client id is not this seller's).",
        ));
    }
    if !token.allows(LwaScope::PaymentsWidget) {
        return Err(widget_error(
            StatusCode::FORBIDDEN,
            "InvalidScope",
            "The access token lacks the payments:widget scope.",
        ));
    }
    let seller = state
        .mws
        .agreements
        .store()
        .seller(token.seller())
        .await
        .map_err(|e| {
            widget_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalServerError",
                e.to_string(),
            )
        })?
        .ok_or_else(|| bad("InvalidSellerId", "The seller does not exist."))?;
    let agreement = match q.agreement.as_deref().filter(|a| !a.is_empty()) {
        None if kind == WidgetKind::Consent => {
            return Err(bad(
                "InvalidParameterValue",
                "The consent widget needs amazonBillingAgreementId.",
            ))
        }
        None => None,
        Some(id) => {
            let scope = Scope {
                seller: &seller,
                environment,
                now,
            };
            let ba = state
                .mws
                .agreements
                .agreement(scope, id)
                .await
                .ok()
                .filter(|b| b.buyer_id() == token.buyer_id())
                .ok_or_else(|| {
                    bad(
                        "InvalidBillingAgreementId",
                        "This billing agreement is not this buyer's at this seller.",
                    )
                })?;
            Some(ba)
        }
    };
    let who = token
        .buyer()
        .ok_or_else(|| bad("BuyerSessionExpired", "Unknown buyer."))?;
    let page_token = state.ids.hex(16);
    state.mws.buyer.frames.open(
        page_token.clone(),
        Frame {
            kind,
            seller: seller.id().clone(),
            environment,
            buyer_id: who.id.to_owned(),
            agreement: agreement.as_ref().map(|b| b.id().as_str().to_owned()),
            expires_at: token.expires_at(),
        },
        now,
    );
    let chosen = agreement.as_ref().and_then(|b| match kind {
        WidgetKind::AddressBook => b.address_id().map(str::to_owned),
        WidgetKind::Wallet => b.payment_method().map(|m| m.instrument_id().to_owned()),
        WidgetKind::Consent => None,
    });
    let options: Vec<minijinja::Value> = match kind {
        WidgetKind::AddressBook => who
            .addresses
            .iter()
            .map(|a| minijinja::context! {
                id => a.id, label => format!("{} 〒{} {}{}{} {}", a.name, a.postal_code, a.state_or_region, a.city, a.line1, a.line2),
            })
            .collect(),
        WidgetKind::Wallet => INSTRUMENTS
            .iter()
            .filter(|i| WALLET.contains(&i.id))
            .map(|i| minijinja::context! { id => i.id, label => i.label })
            .collect(),
        WidgetKind::Consent => Vec::new(),
    };
    let checked = chosen.clone().or_else(|| {
        options
            .first()
            .and_then(|o| o.get_attr("id").ok())
            .map(|v| v.to_string())
    });
    Ok(minijinja::context! {
        title => "Amazon Pay",
        kind => kind.as_str(),
        buyer => who.name,
        page => page_token,
        agreement => agreement.as_ref().map(|b| b.id().as_str().to_owned()),
        state => agreement.as_ref().map(|b| b.state().as_str()),
        chosen => chosen.is_some(),
        checked => checked,
        consent => agreement.as_ref().is_some_and(BillingAgreement::consent),
        options => options,
    })
}

/// A frame's request: its token, what to do, the value chosen.
#[derive(Debug, Deserialize)]
pub struct ActionForm {
    page: Option<String>,
    op: Option<String>,
    value: Option<String>,
}

fn refuse(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    (
        status,
        Json(json!({"error": code, "message": message.into()})),
    )
        .into_response()
}

fn answer(ba: &BillingAgreement) -> Response {
    let constraints: Vec<&str> = ba.constraints().iter().map(|c| c.id()).collect();
    Json(json!({
        "amazonBillingAgreementId": ba.id().as_str(),
        "state": ba.state().as_str(),
        "consent": ba.consent(),
        "constraints": constraints,
    }))
    .into_response()
}

fn engine_refusal(e: EngineError) -> Response {
    match e {
        EngineError::Refused(Refusal::UnknownBillingAgreement(id)) => refuse(
            StatusCode::NOT_FOUND,
            "InvalidBillingAgreementId",
            format!("There is no billing agreement {id} of this buyer."),
        ),
        EngineError::Refused(r) => refuse(
            StatusCode::CONFLICT,
            "BillingAgreementNotModifiable",
            r.to_string(),
        ),
        e => {
            tracing::error!(%e, "widget change failed");
            refuse(
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalServerError",
                "The emulator could not store the change.",
            )
        }
    }
}

/// `POST /mws/widgets/action`: `op` = `create` (a Draft agreement for the address book or
/// wallet that has none), `address`, `payment` or `consent` (`value` = `true`/`false`).
async fn action(State(state): State<AppState>, Form(form): Form<ActionForm>) -> Response {
    let now = state.now();
    let frames = &state.mws.buyer.frames;
    let Some((token, frame)) = form
        .page
        .as_deref()
        .and_then(|t| frames.get(t, now).map(|f| (t.to_owned(), f)))
    else {
        return refuse(
            StatusCode::FORBIDDEN,
            "InvalidFrameToken",
            "This request did not come from an open widget (its frame token is missing, unknown or expired). Reload the page.",
        );
    };
    let engine = &state.mws.agreements;
    let value = form.value.unwrap_or_default();
    let change = match (form.op.as_deref(), frame.kind) {
        (Some("create"), WidgetKind::AddressBook | WidgetKind::Wallet) => {
            if let Some(id) = &frame.agreement {
                return match engine.store().agreement(id).await {
                    Ok(Some(ba)) => answer(&ba),
                    Ok(None) => refuse(StatusCode::NOT_FOUND, "InvalidBillingAgreementId", "gone"),
                    Err(e) => engine_refusal(e.into()),
                };
            }
            let seller = match engine.store().seller(&frame.seller).await {
                Ok(Some(s)) => s,
                Ok(None) => {
                    return refuse(
                        StatusCode::NOT_FOUND,
                        "InvalidSellerId",
                        "The seller does not exist.",
                    )
                }
                Err(e) => return engine_refusal(e.into()),
            };
            return match engine
                .create_agreement(&seller, frame.environment, &frame.buyer_id, None, None, now)
                .await
            {
                Ok(ba) => {
                    frames.bind(&token, ba.id().as_str());
                    answer(&ba)
                }
                Err(e) => engine_refusal(e),
            };
        }
        (Some("address"), WidgetKind::AddressBook) => {
            let mine = buyers::buyer(&frame.buyer_id)
                .is_some_and(|b| b.addresses.iter().any(|a| a.id == value));
            if !mine {
                return refuse(
                    StatusCode::BAD_REQUEST,
                    "InvalidParameterValue",
                    "value must be one of the buyer's address ids.",
                );
            }
            BuyerChange::Address(value)
        }
        (Some("payment"), WidgetKind::Wallet) => {
            let Some(instrument) = buyers::instrument(&value).filter(|i| WALLET.contains(&i.id))
            else {
                return refuse(
                    StatusCode::BAD_REQUEST,
                    "InvalidParameterValue",
                    "value must be one of the wallet's payment methods.",
                );
            };
            let declines = instrument.simulation == buyers::Simulation::Declined;
            BuyerChange::PaymentMethod(PaymentMethod::new(instrument.id, declines))
        }
        (Some("consent"), WidgetKind::Consent) => match value.as_str() {
            "true" => BuyerChange::Consent(true),
            "false" => BuyerChange::Consent(false),
            _ => {
                return refuse(
                    StatusCode::BAD_REQUEST,
                    "InvalidParameterValue",
                    "value must be true or false.",
                )
            }
        },
        _ => {
            return refuse(
                StatusCode::BAD_REQUEST,
                "InvalidParameterValue",
                format!(
                    "This {} widget does not take op {}.",
                    frame.kind.as_str(),
                    form.op.as_deref().unwrap_or("(none)")
                ),
            )
        }
    };
    let Some(id) = frame.agreement else {
        return refuse(
            StatusCode::CONFLICT,
            "InvalidBillingAgreementId",
            "This widget has no billing agreement yet (op=create first).",
        );
    };
    match engine.buyer_change(&id, &frame.buyer_id, change, now).await {
        Ok(ba) => answer(&ba),
        Err(e) => engine_refusal(e),
    }
}
