//! Outcomes a caller may ask the emulator to simulate (Amazon's sandbox simulation codes).

use super::charge::Decline;
use super::session::CancelReason;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Simulated {
    /// The authorization is pending (`AuthorizationInitiated`), then authorized.
    Pending,
    /// The authorization is declined.
    Decline(Decline),
    /// The checkout is canceled when the merchant completes it.
    Cancel(CancelReason),
    /// The refund settles as declined.
    RefundDeclined,
    /// A code the emulator does not simulate.
    Other(String),
}

impl Simulated {
    pub fn parse(code: &str) -> Simulated {
        match code {
            "AuthorizationInitiated" => Simulated::Pending,
            "RefundDeclined" => Simulated::RefundDeclined,
            _ => {
                if let Some(d) = Decline::ALL.into_iter().find(|d| d.name() == code) {
                    Simulated::Decline(d)
                } else if let Some(r) = [
                    CancelReason::BuyerCanceled,
                    CancelReason::AmazonCanceled,
                    CancelReason::Declined,
                ]
                .into_iter()
                .find(|r| r.name() == code)
                {
                    Simulated::Cancel(r)
                } else {
                    Simulated::Other(code.to_owned())
                }
            }
        }
    }

    /// The code as the caller gave it.
    pub fn code(&self) -> &str {
        match self {
            Simulated::Pending => "AuthorizationInitiated",
            Simulated::Decline(d) => d.name(),
            Simulated::Cancel(r) => r.name(),
            Simulated::RefundDeclined => "RefundDeclined",
            Simulated::Other(code) => code,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip() {
        for code in [
            "AuthorizationInitiated",
            "RefundDeclined",
            "HardDeclined",
            "SoftDeclined",
            "AmazonRejected",
            "ProcessingFailure",
            "TransactionTimedOut",
            "BuyerCanceled",
            "AmazonCanceled",
            "Declined",
            "Expired",
        ] {
            assert_eq!(Simulated::parse(code).code(), code);
        }
        assert_eq!(
            Simulated::parse("Expired"),
            Simulated::Other("Expired".into())
        );
    }
}
