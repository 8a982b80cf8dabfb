//! Amazon's error answer: an HTTP status and `{"reasonCode": …, "message": …}`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use kessai_amazonpay::wire::ErrorCode;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub reason_code: ErrorCode,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, reason_code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            reason_code,
            message: message.into(),
        }
    }

    pub fn bad_request(reason_code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, reason_code, message)
    }

    pub fn unprocessable(reason_code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, reason_code, message)
    }

    pub fn not_found(what: &str, id: &str) -> Self {
        ApiError::new(
            StatusCode::NOT_FOUND,
            ErrorCode::ResourceNotFound,
            format!("{what} {id} was not found."),
        )
    }

    pub fn missing(field: &str) -> Self {
        ApiError::bad_request(
            ErrorCode::MissingParameterValue,
            format!("The mandatory parameter {field} is missing or empty."),
        )
    }

    pub fn invalid(field: &str, why: impl std::fmt::Display) -> Self {
        ApiError::bad_request(
            ErrorCode::InvalidParameterValue,
            format!("The value provided for {field} is invalid: {why}"),
        )
    }

    pub fn internal(detail: impl std::fmt::Display) -> Self {
        tracing::error!(%detail, "internal error");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::InternalServerError,
            "The emulator failed to store the change; nothing was changed.",
        )
    }

    pub fn body(&self) -> String {
        serde_json::json!({"reasonCode": self.reason_code.as_str(), "message": self.message})
            .to_string()
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status,
            [(axum::http::header::CONTENT_TYPE, "application/json")],
            self.body(),
        )
            .into_response()
    }
}
