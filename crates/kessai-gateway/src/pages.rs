//! The gateway's answers for addresses it has no route for: a page for browsers, and an MDK
//! answer for what looks like an MDK request (the MDK reads JSON, never a page).

use crate::app::AppState;
use crate::buyer::render;
use crate::reply::Answer;
use axum::extract::State;
use axum::http::{header, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use kessai_core::{Kind, ResultCode};

/// The gateway's own templates beside the buyer pages'.
pub fn add_templates(env: &mut minijinja::Environment<'static>) {
    if let Err(e) = env.add_template(
        "not_found.html",
        include_str!("../templates/not_found.html"),
    ) {
        tracing::error!(%e, "template does not parse");
    }
}

/// Whether `path` is under one of the MDK's service names.
fn mdk_path(path: &str) -> bool {
    let service = path.trim_start_matches('/').split('/').next().unwrap_or("");
    matches!(
        service,
        "paynow" | "test-paynow" | "paynow-search" | "test-paynow-search"
    )
}

/// An MDK failure answer (HTTP 200, `mstatus` failure), as every MDK path answers.
fn mdk_failure(state: &AppState, message: String) -> Response {
    let answer = Answer::failure(ResultCode::new(Kind::UnknownCommand, message), None);
    let request_id = state.random_hex(16);
    let cust_txn = state.random_hex(16);
    let body = crate::mdk::render(
        &answer,
        &crate::mdk::ResponseMeta {
            txn_version: None,
            request_id: &request_id,
            cust_txn: &cust_txn,
        },
    )
    .to_string();
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response()
}

/// No route for this path.
pub async fn not_found(State(state): State<AppState>, method: Method, uri: Uri) -> Response {
    if method == Method::POST && mdk_path(uri.path()) {
        return mdk_failure(
            &state,
            format!(
                "No MDK command at {}; commands are POST /{{paynow|test-paynow}}/v2/{{Command}}/amazonpay.",
                uri.path()
            ),
        );
    }
    render(
        &state,
        StatusCode::NOT_FOUND,
        "not_found.html",
        minijinja::context! {
            title => "Not found", heading => "ページが見つかりません / Page not found",
            message => "There is no page at this address on this Kessai gateway.",
        },
    )
}

/// A route exists for this path, but not for this method.
pub async fn wrong_method(State(state): State<AppState>) -> Response {
    render(
        &state,
        StatusCode::METHOD_NOT_ALLOWED,
        "not_found.html",
        minijinja::context! {
            title => "Method not allowed", heading => "この操作はできません / Method not allowed",
            message => "This address of the Kessai gateway does not take this HTTP method (MDK commands are POST requests; pages are opened with GET).",
        },
    )
}
