//! Identifiers as newtypes, parsed once at the edge.

use std::fmt;

/// Why a text is not an acceptable identifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("is empty")]
    Empty,
    #[error("is longer than {max} characters")]
    TooLong { max: usize },
    #[error("may contain only the letters A-Z and a-z, the digits 0-9, '-' and '_'")]
    InvalidCharacters,
}

fn check_token(text: &str, max: usize) -> Result<(), IdError> {
    if text.is_empty() {
        return Err(IdError::Empty);
    }
    if text.chars().count() > max {
        return Err(IdError::TooLong { max });
    }
    if !text
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(IdError::InvalidCharacters);
    }
    Ok(())
}

macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident, $max:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            pub const MAX_LEN: usize = $max;

            pub fn parse(text: &str) -> Result<Self, IdError> {
                check_token(text, $max)?;
                Ok($name(text.to_owned()))
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

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

string_id!(
    /// A merchant's order id: up to 100 of `[A-Za-z0-9_-]`, unique per merchant.
    OrderId,
    100
);
string_id!(
    /// The merchant's account id at the gateway (MDK `merchantCcid`).
    MerchantCcid,
    64
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_id_rules() {
        assert!(OrderId::parse("order-1_A").is_ok());
        assert_eq!(OrderId::parse(""), Err(IdError::Empty));
        assert_eq!(
            OrderId::parse(&"a".repeat(101)),
            Err(IdError::TooLong { max: 100 })
        );
        assert!(OrderId::parse(&"a".repeat(100)).is_ok());
        assert_eq!(OrderId::parse("a/b"), Err(IdError::InvalidCharacters));
        assert_eq!(OrderId::parse("注文"), Err(IdError::InvalidCharacters));
    }
}
