//! Result pushes (結果通知) to merchants, as values: which result, and where a push stands.

/// Which result a push record reports; each goes to its own URL of the order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PushKind {
    /// The buyer's authorization ended (authorized, declined, canceled, expired): `authorizePushUrl`.
    Authorize,
    /// `capturePushUrl`.
    Capture,
    /// `cancelPushUrl`.
    Cancel,
    /// Refunds are reported at `cancelPushUrl` too.
    Refund,
    /// A ReAuthorize charge's result: `authorizePushUrl`.
    ReAuthorize,
    /// An UpdateAuthorize's new authorization: `authorizePushUrl`.
    UpdateAuthorize,
    /// A recurring consent ended: `cancelPushUrl`.
    Terminate,
}

impl PushKind {
    pub const ALL: [PushKind; 7] = [
        PushKind::Authorize,
        PushKind::Capture,
        PushKind::Cancel,
        PushKind::Refund,
        PushKind::ReAuthorize,
        PushKind::UpdateAuthorize,
        PushKind::Terminate,
    ];

    /// The record's `txnType`.
    pub fn as_str(self) -> &'static str {
        match self {
            PushKind::Authorize => "Authorize",
            PushKind::Capture => "Capture",
            PushKind::Cancel => "Cancel",
            PushKind::Refund => "Refund",
            PushKind::ReAuthorize => "ReAuthorize",
            PushKind::UpdateAuthorize => "UpdateAuthorize",
            PushKind::Terminate => "Terminate",
        }
    }

    pub fn parse(text: &str) -> Option<PushKind> {
        PushKind::ALL.into_iter().find(|k| k.as_str() == text)
    }
}

/// Where a push record stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PushStatus {
    /// Waiting for (another) delivery attempt.
    Pending,
    /// The merchant answered 2xx.
    Delivered,
    /// Retried for the whole retry window without a 2xx.
    Failed,
    /// The target is not allowed (a private address in live mode); never sent.
    Refused,
}

impl PushStatus {
    pub const ALL: [PushStatus; 4] = [
        PushStatus::Pending,
        PushStatus::Delivered,
        PushStatus::Failed,
        PushStatus::Refused,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            PushStatus::Pending => "Pending",
            PushStatus::Delivered => "Delivered",
            PushStatus::Failed => "Failed",
            PushStatus::Refused => "Refused",
        }
    }

    pub fn parse(text: &str) -> Option<PushStatus> {
        PushStatus::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

/// Seconds to wait after `attempts` failed deliveries: 10 s doubling, capped at one hour.
pub fn push_backoff(attempts: u32) -> i64 {
    let exp = attempts.min(16);
    (10_i64 << exp).min(3600)
}

/// How long a push is retried before it is given up (`Failed`): 25 hours.
pub const PUSH_RETRY_WINDOW_SECS: i64 = 25 * 3600;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_backoff_is_capped() {
        for k in PushKind::ALL {
            assert_eq!(PushKind::parse(k.as_str()), Some(k));
        }
        for s in PushStatus::ALL {
            assert_eq!(PushStatus::parse(s.as_str()), Some(s));
        }
        assert_eq!(push_backoff(0), 10);
        assert_eq!(push_backoff(1), 20);
        assert_eq!(push_backoff(9), 3600);
        assert_eq!(push_backoff(1000), 3600);
        // Retried for at least 24 hours: the attempts within the window span it.
        let mut t = 0;
        let mut n = 0;
        while t < PUSH_RETRY_WINDOW_SECS {
            t += push_backoff(n);
            n += 1;
        }
        assert!(t >= 24 * 3600 && n > 20, "{n} attempts over {t} s");
    }
}
