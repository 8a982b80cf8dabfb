//! The buyer's pages: sign-in (buyer, address, payment method) and confirmation.
//!
//! Plain HTML forms that work without JavaScript; the first submit button of every page moves on
//! with the defaults. Pages carry a strict Content-Security-Policy and load nothing from elsewhere.
//! Every form carries the browser's CSRF token ([`kessai_http::csrf`]): a page of another site
//! cannot sign a buyer in, pay or cancel for them.

use crate::buyers::{self, BUYERS, INSTRUMENTS};
use crate::engine::{BuyerChoice, Fetch, Session, SessionId, SessionState};
use crate::server::AppState;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Form, Router};
use serde::Deserialize;

pub fn templates() -> minijinja::Environment<'static> {
    let mut env = minijinja::Environment::new();
    let sources = [
        ("base.html", include_str!("../templates/base.html")),
        ("signin.html", include_str!("../templates/signin.html")),
        ("confirm.html", include_str!("../templates/confirm.html")),
        ("error.html", include_str!("../templates/error.html")),
        ("home.html", include_str!("../templates/home.html")),
        (
            "not_found.html",
            include_str!("../templates/not_found.html"),
        ),
    ];
    for (name, source) in sources {
        if let Err(e) = env.add_template(name, source) {
            tracing::error!(%e, name, "template does not parse");
        }
    }
    env
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(home))
        .route("/checkout/signin", get(signin_page).post(signin_submit))
        .route("/checkout/confirm", get(confirm_page).post(confirm_submit))
        .route("/static/checkout.css", get(css))
        .route(crate::notify::CERT_PATH, get(sns_cert))
        .route("/favicon.ico", get(|| async { StatusCode::NO_CONTENT }))
}

const CSS: &str = include_str!("../static/checkout.css");

/// `GET /`: what this server is and where its documentation is.
async fn home(State(state): State<AppState>) -> Response {
    render(
        &state,
        StatusCode::OK,
        "home.html",
        minijinja::context! {
            title => "Emulator", base_url => state.base_url.clone(),
            helpers => !matches!(state.helpers, crate::server::TestHelpers::Off),
        },
        &[],
        None,
    )
}

/// The page for a path no route has (Amazon Pay's API paths answer JSON errors of their own).
pub async fn not_found(State(state): State<AppState>) -> Response {
    render(
        &state,
        StatusCode::NOT_FOUND,
        "not_found.html",
        minijinja::context! {
            title => "Not found", heading => "ページが見つかりません / Page not found",
            message => "There is no page at this address on the Amazon Pay emulator.",
        },
        &[],
        None,
    )
}

/// The page for a known path asked with a method it does not take.
pub async fn wrong_method(State(state): State<AppState>) -> Response {
    render(
        &state,
        StatusCode::METHOD_NOT_ALLOWED,
        "not_found.html",
        minijinja::context! {
            title => "Method not allowed", heading => "この操作はできません / Method not allowed",
            message => "This page of the Amazon Pay emulator does not take this HTTP method.",
        },
        &[],
        None,
    )
}

async fn sns_cert(State(state): State<AppState>) -> Response {
    (
        [(header::CONTENT_TYPE, "application/x-pem-file")],
        state.signer.cert_pem.clone(),
    )
        .into_response()
}

async fn css() -> Response {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], CSS).into_response()
}

/// The emulator's CSRF cookie (its own name: cookies do not tell ports apart).
const CSRF: kessai_http::csrf::Csrf = kessai_http::csrf::Csrf::new("kessai_emulator_csrf");

/// Renders a page. `return_to` are the URLs the page's forms may end up redirecting to, so
/// `form-action` can name them and nothing else; `csrf` is the token its forms carry.
fn render(
    state: &AppState,
    status: StatusCode,
    name: &str,
    ctx: minijinja::Value,
    return_to: &[Option<String>],
    csrf: Option<&kessai_http::csrf::Token>,
) -> Response {
    let html = state
        .templates
        .get_template(name)
        .and_then(|t| t.render(ctx));
    match html {
        Ok(html) => {
            let mut response = (
                status,
                [(header::CONTENT_TYPE, "text/html; charset=utf-8".to_owned())],
                kessai_http::page_headers(return_to),
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

pub(crate) fn error_page(state: &AppState, status: StatusCode, message: &str) -> Response {
    render(
        state,
        status,
        "error.html",
        minijinja::context! { title => "Error", message => message },
        &[],
        None,
    )
}

/// The page for a form that did not come from this browser's page.
fn forged(state: &AppState) -> Response {
    error_page(
        state,
        StatusCode::FORBIDDEN,
        "This form did not come from this browser's page (CSRF check). Go back, reload the page and try again.",
    )
}

#[derive(Debug, Deserialize)]
pub struct SessionQuery {
    #[serde(rename = "amazonCheckoutSessionId")]
    id: Option<String>,
}

fn return_urls(rec: &Session) -> Vec<Option<String>> {
    let w = rec.urls();
    vec![w.review.clone(), w.result.clone(), w.cancel.clone()]
}

fn amount_text(rec: &Session) -> Option<String> {
    rec.payment().charge_amount.map(|m| {
        let amount = m.to_decimal_string();
        match m.currency() {
            kessai_core::Currency::Jpy => format!("¥{}", grouped(&amount)),
            other => format!("{amount} {}", other.code()),
        }
    })
}

/// `3240` → `3,240`; anything but plain digits as it is.
fn grouped(amount: &str) -> String {
    if amount.is_empty() || !amount.bytes().all(|b| b.is_ascii_digit()) {
        return amount.to_owned();
    }
    let mut out = String::new();
    for (i, c) in amount.chars().enumerate() {
        if i > 0 && (amount.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The session a buyer page is about, after due transitions; or the error page to show.
async fn session_for_page(
    state: &AppState,
    q: SessionQuery,
) -> Result<(String, Session), Response> {
    let Some(id) = q.id else {
        return Err(error_page(
            state,
            StatusCode::BAD_REQUEST,
            "amazonCheckoutSessionId is missing.",
        ));
    };
    // Read as last committed, without waiting for the lock that serialises changes.
    let rec = match state
        .snapshot(&Fetch::Session(SessionId::new(id.as_str())))
        .await
    {
        Ok(snapshot) => snapshot
            .session_for_buyer(&SessionId::new(id.as_str()))
            .cloned(),
        Err(e) => {
            return Err(error_page(
                state,
                StatusCode::INTERNAL_SERVER_ERROR,
                &e.message,
            ))
        }
    };
    match rec {
        Some(rec) => Ok((id, rec)),
        None => Err(error_page(
            state,
            StatusCode::NOT_FOUND,
            "This checkout session does not exist.",
        )),
    }
}

async fn signin_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<SessionQuery>,
) -> Response {
    let (id, rec) = match session_for_page(&state, q).await {
        Ok(found) => found,
        Err(page) => return page,
    };
    if rec.state() != SessionState::Open {
        return error_page(
            &state,
            StatusCode::CONFLICT,
            &format!("This checkout session is {}.", rec.state().name()),
        );
    }
    // A PayOnly session collects no address: one choice per buyer.
    let ships = rec.product().ships();
    let addresses: Vec<minijinja::Value> = BUYERS
        .iter()
        .flat_map(|b| {
            let per_buyer = if ships { b.addresses.len() } else { 1 };
            b.addresses.iter().take(per_buyer).map(move |a| {
                minijinja::context! {
                    value => format!("{}|{}", b.id, a.id),
                    buyer => b.name,
                    postal => a.postal_code,
                    text => format!("{}{}{} {}", a.state_or_region, a.city, a.line1, a.line2),
                }
            })
        })
        .collect();
    let instruments: Vec<minijinja::Value> = INSTRUMENTS
        .iter()
        .map(|i| minijinja::context! { id => i.id, label => i.label })
        .collect();
    let csrf = CSRF.token(&headers, || state.ids.hex(16));
    render(
        &state,
        StatusCode::OK,
        "signin.html",
        minijinja::context! {
            title => "Sign in",
            id => id,
            amount => amount_text(&rec),
            note => rec.metadata().note_to_buyer.clone(),
            addresses => addresses,
            ships => ships,
            instruments => instruments,
            csrf => csrf.value.clone(),
        },
        &return_urls(&rec),
        Some(&csrf),
    )
}

#[derive(Debug, Deserialize)]
pub struct SigninForm {
    #[serde(rename = "amazonCheckoutSessionId")]
    id: String,
    address: Option<String>,
    instrument: Option<String>,
    action: Option<String>,
    csrf: Option<String>,
}

/// Appends `amazonCheckoutSessionId` to a merchant URL, keeping its own query.
pub fn with_session(url: &str, id: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) => {
            u.query_pairs_mut()
                .append_pair("amazonCheckoutSessionId", id);
            u.to_string()
        }
        Err(_) => url.to_owned(),
    }
}

fn see_other(url: &str) -> Response {
    (StatusCode::SEE_OTHER, [(header::LOCATION, url.to_owned())]).into_response()
}

/// Where the buyer goes after canceling: `checkoutCancelUrl`, else the review URL.
pub fn cancel_redirect(rec: &Session) -> Option<String> {
    let w = rec.urls();
    w.cancel
        .clone()
        .or_else(|| w.review.clone())
        .map(|u| with_session(&u, rec.id().as_str()))
}

/// Signs the buyer in with a choice (or the defaults); returns where the browser goes next.
pub async fn do_sign_in(
    state: &AppState,
    id: &str,
    choice: Option<BuyerChoice>,
) -> Result<String, String> {
    let choice = choice.unwrap_or_else(BuyerChoice::default_choice);
    let session = SessionId::new(id);
    state
        .change(&[Fetch::Session(session.clone())], |engine, now| {
            engine
                .sign_in(&session, choice, now)
                .map(|rec| rec.urls().review.clone())
        })
        .await
        .map_err(|e| e.message)?
        .map_err(|e| e.to_string())?
        .as_deref()
        .map(|u| with_session(u, id))
        .ok_or_else(|| "The checkout session has no checkoutReviewReturnUrl.".to_owned())
}

/// The buyer cancels; returns where the browser goes next.
pub async fn do_cancel(state: &AppState, id: &str) -> Result<String, String> {
    let session = SessionId::new(id);
    state
        .change(&[Fetch::Session(session.clone())], |engine, now| {
            engine.buyer_cancel(&session, now).map(cancel_redirect)
        })
        .await
        .map_err(|e| e.message)?
        .map_err(|e| e.to_string())?
        .ok_or_else(|| "The checkout session has no return URL.".to_owned())
}

/// The buyer confirms; returns where the browser goes next (`checkoutResultReturnUrl`).
pub async fn do_confirm(state: &AppState, id: &str) -> Result<String, String> {
    let session = SessionId::new(id);
    state
        .change(&[Fetch::Session(session.clone())], |engine, now| {
            engine
                .confirm(&session, now)
                .map(|rec| rec.urls().result.clone())
        })
        .await
        .map_err(|e| e.message)?
        .map_err(|e| e.to_string())?
        .as_deref()
        .map(|u| with_session(u, id))
        .ok_or_else(|| "The checkout session has no checkoutResultReturnUrl.".to_owned())
}

async fn signin_submit(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<SigninForm>,
) -> Response {
    if !CSRF.check(&headers, form.csrf.as_deref()) {
        return forged(&state);
    }
    let result = if form.action.as_deref() == Some("cancel") {
        do_cancel(&state, &form.id).await
    } else {
        let default = buyers::default_choice();
        let (buyer_id, address_id) = form
            .address
            .as_deref()
            .and_then(|v| v.split_once('|'))
            .map(|(b, a)| (b.to_owned(), a.to_owned()))
            .unwrap_or_else(|| (default.0.id.into(), default.1.id.into()));
        let choice = BuyerChoice::new(
            buyer_id,
            address_id,
            form.instrument.unwrap_or_else(|| default.2.id.into()),
        );
        do_sign_in(&state, &form.id, Some(choice)).await
    };
    match result {
        Ok(url) => see_other(&url),
        Err(message) => error_page(&state, StatusCode::CONFLICT, &message),
    }
}

async fn confirm_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<SessionQuery>,
) -> Response {
    let (id, rec) = match session_for_page(&state, q).await {
        Ok(found) => found,
        Err(page) => return page,
    };
    if rec.state() != SessionState::Open || !rec.payable() {
        return error_page(
            &state,
            StatusCode::CONFLICT,
            &format!(
                "This checkout session is {} and not ready for payment.",
                rec.state().name()
            ),
        );
    }
    let chosen = rec.choice().and_then(|c| c.resolve().ok());
    let payment = chosen
        .map(|(_, _, i)| i.descriptor.to_owned())
        .unwrap_or_default();
    let address = chosen
        .map(|(_, a, _)| crate::v2::render::address(a).one_line())
        .unwrap_or_default();
    let csrf = CSRF.token(&headers, || state.ids.hex(16));
    render(
        &state,
        StatusCode::OK,
        "confirm.html",
        minijinja::context! {
            title => "Confirm",
            id => id,
            amount => amount_text(&rec),
            payment => payment,
            address => address,
            csrf => csrf.value.clone(),
        },
        &return_urls(&rec),
        Some(&csrf),
    )
}

#[derive(Debug, Deserialize)]
pub struct ConfirmForm {
    #[serde(rename = "amazonCheckoutSessionId")]
    id: String,
    action: Option<String>,
    csrf: Option<String>,
}

async fn confirm_submit(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<ConfirmForm>,
) -> Response {
    if !CSRF.check(&headers, form.csrf.as_deref()) {
        return forged(&state);
    }
    let result = if form.action.as_deref() == Some("cancel") {
        do_cancel(&state, &form.id).await
    } else {
        do_confirm(&state, &form.id).await
    };
    match result {
        Ok(url) => see_other(&url),
        Err(message) => error_page(&state, StatusCode::CONFLICT, &message),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn yen_amounts_have_a_thousands_separator() {
        assert_eq!(super::grouped("3240"), "3,240");
        assert_eq!(super::grouped("100000"), "100,000");
        assert_eq!(super::grouped("980"), "980");
        assert_eq!(super::grouped("12.5"), "12.5");
    }
}
