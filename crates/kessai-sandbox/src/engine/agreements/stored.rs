//! How `Money` and `Currency` (which carry no serde of their own) are written in the stored
//! JSON of a record: `{"minor": 1000, "currency": "JPY"}` and `"JPY"`.

use kessai_core::{Currency, Money};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

#[derive(Serialize, Deserialize)]
struct Stored {
    minor: i64,
    currency: String,
}

fn currency_of<E: serde::de::Error>(code: &str) -> Result<Currency, E> {
    Currency::parse(code).ok_or_else(|| E::custom(format!("unknown currency {code}")))
}

pub mod money {
    use super::*;

    pub fn serialize<S: Serializer>(m: &Money, s: S) -> Result<S::Ok, S::Error> {
        Stored {
            minor: m.minor(),
            currency: m.currency().code().to_owned(),
        }
        .serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Money, D::Error> {
        let v = Stored::deserialize(d)?;
        Ok(Money::new(v.minor, currency_of(&v.currency)?))
    }
}

pub mod opt_money {
    use super::*;

    pub fn serialize<S: Serializer>(m: &Option<Money>, s: S) -> Result<S::Ok, S::Error> {
        m.map(|m| Stored {
            minor: m.minor(),
            currency: m.currency().code().to_owned(),
        })
        .serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Money>, D::Error> {
        Option::<Stored>::deserialize(d)?
            .map(|v| Ok(Money::new(v.minor, currency_of(&v.currency)?)))
            .transpose()
    }
}

pub mod currency {
    use super::*;

    pub fn serialize<S: Serializer>(c: &Currency, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(c.code())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Currency, D::Error> {
        let code = String::deserialize(d)?;
        currency_of::<D::Error>(&code)
    }
}
