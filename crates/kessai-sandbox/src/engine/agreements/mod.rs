//! Amazon Pay "Auto Pay": billing agreements, the order references charged on them, their
//! authorizations, captures and refunds. Protocol-neutral: typed records and pure rules
//! (`plan_*` return the next record or a typed [`Refusal`]), the time-driven transitions
//! (`fall_due`), and [`Agreements`], which runs each command against the SQLite file under one
//! lock for changes and writes each change with its notifications in one transaction. No HTTP
//! and no XML here: the MWS face (`crate::mws`) translates.

pub mod agreement;
pub mod ids;
pub mod order_reference;
pub mod payment;
pub mod refusal;
pub mod seller;
pub mod service;
pub mod simulation;
pub mod store;
mod stored;

pub use agreement::{
    AgreementAttributes, BillingAgreement, BillingAgreementReason, BillingAgreementState,
    BuyerChange, Constraint, PaymentMethod, Validation,
};
pub use ids::{
    AuthorizationId, BillingAgreementId, CaptureId, Environment, OrderReferenceId, RefundId,
    SellerId,
};
pub use order_reference::{
    OrderAttributes, OrderReference, OrderReferenceConstraint, OrderReferenceReason,
    OrderReferenceState,
};
pub use payment::{
    Authorization, AuthorizationReason, AuthorizationState, Capture, CaptureReason, CaptureState,
    Refund, RefundReason, RefundState,
};
pub use refusal::Refusal;
pub use seller::Seller;
pub use service::{Agreements, EngineError, Notice, Outbox};

/// Seconds since the Unix epoch on the emulator's clock.
pub type Timestamp = i64;
pub const HOUR: i64 = 3600;
pub const DAY: i64 = 24 * HOUR;

/// The calendar month (UTC) `at` falls in: its first second and the first second of the next.
pub fn month_bounds(at: Timestamp) -> (Timestamp, Timestamp) {
    let t =
        time::OffsetDateTime::from_unix_timestamp(at).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let start = time::Date::from_calendar_date(t.year(), t.month(), 1)
        .map(|d| d.midnight().assume_utc().unix_timestamp())
        .unwrap_or(at);
    let (year, month) = match t.month() {
        time::Month::December => (t.year() + 1, time::Month::January),
        m => (t.year(), m.next()),
    };
    let end = time::Date::from_calendar_date(year, month, 1)
        .map(|d| d.midnight().assume_utc().unix_timestamp())
        .unwrap_or(at);
    (start, end)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_run_from_the_first_to_the_first_in_utc() {
        // 2024-05-15T12:00:00Z
        assert_eq!(month_bounds(1_715_774_400), (1_714_521_600, 1_717_200_000));
        // 2024-12-31T23:59:59Z → December 2024 … January 2025
        assert_eq!(month_bounds(1_735_689_599), (1_733_011_200, 1_735_689_600));
        assert_eq!(month_bounds(1_735_689_600).0, 1_735_689_600);
    }
}
