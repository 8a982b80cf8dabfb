//! Typed identifiers of the billing-agreement domain, in Amazon's formats.
//!
//! Sandbox agreements are `C03-NNNNNNN-NNNNNNN` (live `B03-…`), order references `S03-…` (live
//! `P03-…`); an order reference's authorizations, captures and refunds carry its id followed by
//! `-A`, `-C` or `-R` and six digits (`S03-1234567-1234567-A012345`).

use kessai_core::IdSource;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Which of Amazon's two worlds an object lives in (the path it was made on).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Environment {
    Sandbox,
    Live,
}

impl Environment {
    pub fn as_str(self) -> &'static str {
        match self {
            Environment::Sandbox => "Sandbox",
            Environment::Live => "Live",
        }
    }
}

/// Longest id text looked up; anything longer names nothing.
const MAX_ID_LEN: usize = 64;

macro_rules! text_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// The id a client sent, to look up (`None` if it cannot name anything).
            pub fn lookup(text: &str) -> Option<$name> {
                let ok = !text.is_empty()
                    && text.len() <= MAX_ID_LEN
                    && text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
                ok.then(|| $name(text.to_owned()))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

text_id!(
    /// A seller (merchant) id: `A` and 13 upper-case letters or digits.
    SellerId
);
text_id!(
    /// `C03-NNNNNNN-NNNNNNN` (sandbox) or `B03-…` (live).
    BillingAgreementId
);
text_id!(
    /// `S03-NNNNNNN-NNNNNNN` (sandbox) or `P03-…` (live).
    OrderReferenceId
);
text_id!(
    /// `<order reference>-A0NNNNN`.
    AuthorizationId
);
text_id!(
    /// `<order reference>-C0NNNNN`.
    CaptureId
);
text_id!(
    /// `<order reference>-R0NNNNN`.
    RefundId
);

/// JP's region digits in every id.
const REGION: &str = "03";

fn root(letter: char, ids: &dyn IdSource) -> String {
    format!("{letter}{REGION}-{}-{}", ids.digits(7), ids.digits(7))
}

fn child(parent: &OrderReferenceId, letter: char, ids: &dyn IdSource) -> String {
    format!("{}-{letter}0{}", parent.0, ids.digits(5))
}

impl SellerId {
    pub fn generate(ids: &dyn IdSource) -> SellerId {
        SellerId(format!(
            "A{}",
            ids.pick(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", 13)
        ))
    }
}

impl BillingAgreementId {
    pub fn generate(env: Environment, ids: &dyn IdSource) -> BillingAgreementId {
        let letter = match env {
            Environment::Sandbox => 'C',
            Environment::Live => 'B',
        };
        BillingAgreementId(root(letter, ids))
    }
}

impl OrderReferenceId {
    pub fn generate(env: Environment, ids: &dyn IdSource) -> OrderReferenceId {
        let letter = match env {
            Environment::Sandbox => 'S',
            Environment::Live => 'P',
        };
        OrderReferenceId(root(letter, ids))
    }
}

impl AuthorizationId {
    pub fn generate(parent: &OrderReferenceId, ids: &dyn IdSource) -> AuthorizationId {
        AuthorizationId(child(parent, 'A', ids))
    }
}

impl CaptureId {
    pub fn generate(parent: &OrderReferenceId, ids: &dyn IdSource) -> CaptureId {
        CaptureId(child(parent, 'C', ids))
    }
}

impl RefundId {
    pub fn generate(parent: &OrderReferenceId, ids: &dyn IdSource) -> RefundId {
        RefundId(child(parent, 'R', ids))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use kessai_core::SeededIds;

    fn shape(text: &str, pattern: &str) -> bool {
        text.len() == pattern.len()
            && text.chars().zip(pattern.chars()).all(|(c, p)| match p {
                'N' => c.is_ascii_digit(),
                _ => c == p,
            })
    }

    #[test]
    fn ids_follow_amazons_formats() {
        let ids = SeededIds::seeded(7);
        let ba = BillingAgreementId::generate(Environment::Sandbox, &ids);
        assert!(shape(ba.as_str(), "C03-NNNNNNN-NNNNNNN"), "{ba}");
        let live = BillingAgreementId::generate(Environment::Live, &ids);
        assert!(shape(live.as_str(), "B03-NNNNNNN-NNNNNNN"), "{live}");
        let oro = OrderReferenceId::generate(Environment::Sandbox, &ids);
        assert!(shape(oro.as_str(), "S03-NNNNNNN-NNNNNNN"), "{oro}");
        let auth = AuthorizationId::generate(&oro, &ids);
        assert!(shape(auth.as_str(), &format!("{oro}-A0NNNNN")), "{auth}");
        let capture = CaptureId::generate(&oro, &ids);
        assert!(shape(capture.as_str(), &format!("{oro}-C0NNNNN")));
        let refund = RefundId::generate(&oro, &ids);
        assert!(shape(refund.as_str(), &format!("{oro}-R0NNNNN")));
        let seller = SellerId::generate(&ids);
        assert_eq!(seller.as_str().len(), 14);
        assert!(seller.as_str().starts_with('A'));
    }

    #[test]
    fn lookups_refuse_what_cannot_be_an_id() {
        assert!(BillingAgreementId::lookup("C03-1234567-1234567").is_some());
        assert!(BillingAgreementId::lookup("").is_none());
        assert!(BillingAgreementId::lookup("C03 1").is_none());
        assert!(BillingAgreementId::lookup(&"C".repeat(65)).is_none());
    }
}
