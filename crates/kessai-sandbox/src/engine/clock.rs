//! The engine's time: how long Amazon's objects live, and how the emulator writes a moment.
//!
//! The engine never reads a clock: every operation is given `now` (the emulator's clock, which
//! tests advance).

/// A checkout session not completed within a day is canceled (`Expired`).
pub const CHECKOUT_SESSION_TTL: i64 = 24 * 3600;
/// An authorization not captured within 30 days is canceled (`ExpiredUnused`).
pub const AUTHORIZATION_TTL: i64 = 30 * 24 * 3600;
/// A one-time charge permission closes after 180 days.
pub const ONE_TIME_PERMISSION_TTL: i64 = 180 * 24 * 3600;
/// A one-time charge permission asked for with `extendExpiration` (its length is not documented;
/// `docs/decisions.md`).
pub const EXTENDED_PERMISSION_TTL: i64 = 2 * ONE_TIME_PERMISSION_TTL;
/// A pending authorization (or a late capture) settles this long after it was asked for.
pub const PENDING_SETTLES_AFTER: i64 = 30;
/// A refund settles this long after it was asked for.
pub const REFUND_SETTLES_AFTER: i64 = 30;
/// Captures later than this after the authorization are processed asynchronously.
pub const LATE_CAPTURE_AFTER: i64 = 7 * 24 * 3600;
/// The period of a recurring charge permission's limit.
pub const PERIOD: i64 = 30 * 24 * 3600;

/// Formats emulator time as Amazon does: `20190714T155300Z`.
pub fn timestamp(unix: i64) -> String {
    let t =
        time::OffsetDateTime::from_unix_timestamp(unix).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    t.format(time::macros::format_description!(
        "[year][month][day]T[hour][minute][second]Z"
    ))
    .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #[test]
    fn timestamps_are_compact_utc() {
        assert_eq!(super::timestamp(1_563_119_580), "20190714T155300Z");
    }
}
