//! A test hook, off unless set: `KESSAI_TEST_ABORT_AT=<point>[:<operation kind>]` makes the gateway
//! `abort()` (no unwinding, no cleanup: as a power cut would) the first time it reaches that point,
//! so crash-recovery tests can stop a real process exactly there. Points:
//!
//! - `after-intent`: the pending operation is stored, Amazon not yet called;
//! - `after-amazon`: Amazon answered, the outcome not yet stored;
//! - `after-commit`: the outcome stored, the answer not yet sent;
//! - `push-after-post`: a push was delivered (2xx), not yet marked delivered;
//! - `ipn-after-fetch`: a notification's object was fetched from Amazon, the change not yet stored.
//!
//! The optional kind (`CompleteCheckout`, `Capture`, `CancelCharge`, `Refund`) narrows the first
//! three to one kind of operation. Never set in production.

use kessai_core::OperationKind;

/// The environment variable read at start.
pub const ENV: &str = "KESSAI_TEST_ABORT_AT";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Point {
    AfterIntent,
    AfterAmazon,
    AfterCommit,
    PushAfterPost,
    IpnAfterFetch,
}

impl Point {
    pub fn parse(text: &str) -> Option<Point> {
        match text {
            "after-intent" => Some(Point::AfterIntent),
            "after-amazon" => Some(Point::AfterAmazon),
            "after-commit" => Some(Point::AfterCommit),
            "push-after-post" => Some(Point::PushAfterPost),
            "ipn-after-fetch" => Some(Point::IpnAfterFetch),
            _ => None,
        }
    }
}

/// Where to abort, if anywhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AbortAt {
    point: Option<Point>,
    kind: Option<OperationKind>,
}

impl AbortAt {
    /// Reads `value` (of [`ENV`]); `None` if it is not a known point.
    pub fn parse(value: &str) -> Option<AbortAt> {
        let (point, kind) = match value.split_once(':') {
            Some((p, k)) => (p, Some(OperationKind::parse(k)?)),
            None => (value, None),
        };
        Some(AbortAt {
            point: Some(Point::parse(point)?),
            kind,
        })
    }

    /// Aborts the process if this is the point (and kind) the hook names.
    pub fn reached(&self, point: Point, kind: Option<OperationKind>) {
        if self.point == Some(point) && (self.kind.is_none() || self.kind == kind) {
            tracing::error!(?point, ?kind, "{ENV}: aborting here, as asked");
            std::process::abort();
        }
    }
}
