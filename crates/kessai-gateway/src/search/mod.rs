//! The MDK's Search command (`/paynow-search/v2/Search/search`, `/test-paynow-search/…`): a
//! merchant's orders and their transactions, read-only.
//!
//! Same envelope and `authHash` as the payment commands ([`crate::app`] authenticates); the
//! request is read into a typed `kessai_store::SearchQuery` ([`request`]), the store finds the
//! orders, and the typed [`SearchAnswer`] is written by [`crate::mdk::render_search`]. A refused
//! request changes nothing (Search writes nothing, not even history).

pub mod request;

use crate::app::AppState;
use crate::commands::CommandName;
use crate::mdk;
use axum::body::Body;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use kessai_core::{Kind, OrderState, ResultCode, Yen};
use kessai_store::{FoundOrder, SearchResult};
use request::SearchRequest;
use time::OffsetDateTime;

/// Search's answer as typed values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchAnswer {
    pub result: ResultCode,
    /// What was found (a refused search has nothing).
    pub found: Option<Found>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// More orders matched than `maxCount`.
    pub over_max_count: bool,
    /// Newest first.
    pub orders: Vec<OrderInfo>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderInfo {
    pub order_id: String,
    pub state: OrderState,
    /// The last successful MDK command (`Authorize`, `Capture`, …).
    pub last_success_command: Option<String>,
    /// The last successful entry of any kind (buyer steps and notifications included).
    pub last_success_detail: Option<String>,
    pub proper: AmazonPayOrder,
    pub transactions: Vec<TransactionInfo>,
}

/// `properOrderInfo` of an Amazon Pay order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AmazonPayOrder {
    pub accounting_type: u8,
    pub consent_status: Option<&'static str>,
    pub original_order_id: Option<String>,
    pub pay_confirm_screen_type: u8,
    pub center_order_id: Option<String>,
    pub center_transaction_id: Option<String>,
    pub amount: Yen,
    pub authorized: Yen,
    pub captured: Yen,
    pub refunded: Yen,
    pub dummy: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransactionInfo {
    pub id: i64,
    pub command: String,
    pub mstatus: String,
    pub v_result_code: String,
    pub message: String,
    pub at: OffsetDateTime,
    pub amount: Option<Yen>,
}

impl SearchAnswer {
    fn failure(result: ResultCode) -> SearchAnswer {
        SearchAnswer {
            result,
            found: None,
        }
    }
}

/// Handles one request on a `…-search` path.
pub async fn entry(
    state: &AppState,
    command: &str,
    service_type: &str,
    test_path: bool,
    headers: &HeaderMap,
    body: Body,
) -> Response {
    let started = std::time::Instant::now();
    let request_id = state.random_hex(16);
    let (answer, merchant, txn_version) =
        handle(state, command, service_type, test_path, headers, body).await;
    let found = answer.found.as_ref().map_or(0, |f| f.orders.len());
    tracing::info!(
        request_id = %request_id,
        merchant = %merchant.as_deref().unwrap_or("-"),
        command = %command,
        code = %answer.result.code(),
        mstatus = answer.result.mstatus(),
        found,
        duration_ms = started.elapsed().as_millis() as u64,
        "mdk search"
    );
    let cust_txn = state.random_hex(16);
    let body = mdk::render_search(
        &answer,
        &mdk::ResponseMeta {
            txn_version: txn_version.as_deref(),
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

async fn handle(
    state: &AppState,
    command: &str,
    service_type: &str,
    test_path: bool,
    headers: &HeaderMap,
    body: Body,
) -> (SearchAnswer, Option<String>, Option<String>) {
    let failed = |result| (SearchAnswer::failure(result), None, None);
    let bytes = match axum::body::to_bytes(body, mdk::MAX_BODY + 1).await {
        Ok(b) if b.len() <= mdk::MAX_BODY => b,
        _ => {
            return failed(ResultCode::new(
                Kind::BodyTooLarge,
                "The body is larger than 64 KiB (65536 bytes).",
            ))
        }
    };
    if command != "Search" || service_type != "search" {
        return failed(ResultCode::new(
            Kind::UnknownCommand,
            format!("No command {command} for service {service_type}; the search path is /paynow-search/v2/Search/search."),
        ));
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let request = match crate::app::authenticate(state, &bytes, content_type, test_path).await {
        Ok(r) => r,
        Err(result) => return failed(result),
    };
    let merchant = Some(request.merchant.ccid.to_string());
    let txn_version = mdk::txn_version(&request.params);
    let answer = match SearchRequest::parse(&request.params, request.merchant.ccid, test_path) {
        Err(result) => SearchAnswer::failure(result),
        Ok(parsed) => run(state, parsed).await,
    };
    (answer, merchant, txn_version)
}

async fn run(state: &AppState, request: SearchRequest) -> SearchAnswer {
    let result = if request.matches_nothing {
        SearchResult {
            orders: Vec::new(),
            more: false,
        }
    } else {
        match state.store.search(&request.query).await {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(error = %e, "search failed");
                return SearchAnswer::failure(ResultCode::new(
                    Kind::Internal,
                    "The search failed inside the gateway; nothing was changed. Retry later.",
                ));
            }
        }
    };
    let newest_only = request.query.newest_only;
    let orders = result
        .orders
        .into_iter()
        .map(|f| order_info(f, newest_only))
        .collect::<Result<Vec<_>, String>>();
    match orders {
        Ok(orders) => SearchAnswer {
            result: ResultCode::success(),
            found: Some(Found {
                over_max_count: result.more,
                orders,
            }),
        },
        Err(e) => {
            tracing::error!(error = %e, "a found order cannot be shown");
            SearchAnswer::failure(ResultCode::new(
                Kind::Internal,
                "A stored order could not be read; nothing was changed.",
            ))
        }
    }
}

fn order_info(found: FoundOrder, newest_only: bool) -> Result<OrderInfo, String> {
    let FoundOrder {
        order,
        transactions,
    } = found;
    let success = |t: &&kessai_store::Transaction| t.mstatus == "success";
    let last_success_command = transactions
        .iter()
        .rev()
        .filter(success)
        .find(|t| CommandName::parse(&t.command).is_some())
        .map(|t| t.command.clone());
    let last_success_detail = transactions
        .iter()
        .rev()
        .find(success)
        .map(|t| t.command.clone());
    let shown = if newest_only {
        transactions.len().saturating_sub(1)
    } else {
        0
    };
    let transactions = transactions
        .into_iter()
        .skip(shown)
        .map(|t| {
            let at = OffsetDateTime::parse(&t.at, &time::format_description::well_known::Rfc3339)
                .map_err(|e| format!("history {} time {:?}: {e}", t.id, t.at))?;
            Ok(TransactionInfo {
                id: t.id,
                command: t.command,
                mstatus: t.mstatus,
                v_result_code: t.v_result_code,
                message: t.message,
                at,
                amount: t.amount,
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    Ok(OrderInfo {
        order_id: order.order_id.to_string(),
        state: order.order.state,
        last_success_command,
        last_success_detail,
        proper: AmazonPayOrder {
            accounting_type: order.accounting_type(),
            consent_status: order.consent.map(|c| c.state.as_str()),
            original_order_id: order.original_order_id.as_ref().map(ToString::to_string),
            pay_confirm_screen_type: order.confirm_screen.type_code(),
            center_order_id: order.charge_permission_id.clone(),
            center_transaction_id: order.charge_id.clone(),
            amount: order.order.amount,
            authorized: order.order.authorized,
            captured: order.order.captured,
            refunded: order.order.refunded,
            dummy: order.dummy,
        },
        transactions,
    })
}
