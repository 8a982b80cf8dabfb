//! Typed ids of the engine's objects, and how amounts are kept in the emulator's file.

use kessai_core::{Currency, Money};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

macro_rules! typed_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub fn new(id: impl Into<String>) -> $name {
                $name(id.into())
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

typed_id!(
    /// A merchant (seller) registered with the emulator.
    MerchantId
);
typed_id!(
    /// A checkout session (a UUID).
    SessionId
);
typed_id!(
    /// A charge permission: `P01-…` (one-time or recurring consent).
    PermissionId
);
typed_id!(
    /// A payment authorization (a charge): `S01-…-C…`.
    ChargeId
);
typed_id!(
    /// A refund: `S01-…-R…`.
    RefundId
);

/// Money as the emulator's file keeps it: `{"minor": 1000, "currency": "JPY"}`.
#[derive(Serialize, Deserialize)]
struct StoredMoney {
    minor: i64,
    currency: String,
}

pub(crate) mod money {
    use super::*;

    pub fn serialize<S: Serializer>(m: &Money, s: S) -> Result<S::Ok, S::Error> {
        StoredMoney {
            minor: m.minor(),
            currency: m.currency().code().to_owned(),
        }
        .serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Money, D::Error> {
        let stored = StoredMoney::deserialize(d)?;
        let currency = Currency::parse(&stored.currency)
            .ok_or_else(|| serde::de::Error::custom("unknown currency"))?;
        Ok(Money::new(stored.minor, currency))
    }
}

pub(crate) mod opt_money {
    use super::*;

    pub fn serialize<S: Serializer>(m: &Option<Money>, s: S) -> Result<S::Ok, S::Error> {
        m.map(|m| StoredMoney {
            minor: m.minor(),
            currency: m.currency().code().to_owned(),
        })
        .serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Money>, D::Error> {
        let stored = Option::<StoredMoney>::deserialize(d)?;
        stored
            .map(|m| {
                Currency::parse(&m.currency)
                    .map(|c| Money::new(m.minor, c))
                    .ok_or_else(|| serde::de::Error::custom("unknown currency"))
            })
            .transpose()
    }
}

pub(crate) mod currency {
    use super::*;

    pub fn serialize<S: Serializer>(c: &Currency, s: S) -> Result<S::Ok, S::Error> {
        c.code().serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Currency, D::Error> {
        let code = String::deserialize(d)?;
        Currency::parse(&code).ok_or_else(|| serde::de::Error::custom("unknown currency"))
    }
}

/// `a + b` of one currency (the engine only adds amounts it has checked share a currency).
pub fn plus(a: Money, b: Money) -> Money {
    Money::new(a.minor().saturating_add(b.minor()), a.currency())
}
