//! Elements several objects' details share: prices, statuses, the buyer, addresses,
//! constraints, id lists.

use super::timestamp;
use crate::buyers;
use crate::engine::agreements::*;
use kessai_core::Money;
use serde::Serialize;

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Price {
    currency_code: &'static str,
    amount: String,
}

impl From<Money> for Price {
    fn from(m: Money) -> Price {
        Price {
            currency_code: m.currency().code(),
            amount: m.to_decimal_string(),
        }
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Status {
    pub(super) state: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) last_update_timestamp: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) last_updated_timestamp: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) reason_code: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) reason_description: Option<String>,
}

impl Status {
    /// Payment objects and order references write `LastUpdateTimestamp`.
    pub(super) fn of(
        state: &'static str,
        at: Timestamp,
        reason: Option<&'static str>,
        description: Option<&str>,
    ) -> Status {
        Status {
            state,
            last_update_timestamp: Some(timestamp(at)),
            last_updated_timestamp: None,
            reason_code: reason,
            reason_description: description.map(str::to_owned),
        }
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Address {
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    address_line1: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    address_line2: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    city: Option<String>,
    state_or_region: String,
    postal_code: String,
    country_code: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    phone: Option<String>,
}

/// The buyer's address; `full` false leaves only what Amazon shows before consent to share it
/// (city, prefecture, postal code, country).
pub(super) fn address(buyer_id: &str, address_id: Option<&str>, full: bool) -> Option<Address> {
    let buyer = buyers::buyer(buyer_id)?;
    let a = buyer.addresses.iter().find(|a| Some(a.id) == address_id)?;
    let some = |s: &str| (full && !s.is_empty()).then(|| s.to_owned());
    Some(Address {
        name: some(a.name),
        address_line1: some(a.line1),
        address_line2: some(a.line2),
        city: Some(a.city.to_owned()),
        state_or_region: a.state_or_region.to_owned(),
        postal_code: a.postal_code.to_owned(),
        country_code: "JP",
        phone: some(a.phone),
    })
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Destination {
    pub(super) destination_type: &'static str,
    pub(super) physical_destination: Address,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Buyer {
    name: String,
    email: String,
    phone: String,
}

pub(super) fn buyer(buyer_id: &str) -> Option<Buyer> {
    buyers::buyer(buyer_id).map(|b| Buyer {
        name: b.name.to_owned(),
        email: b.email.to_owned(),
        phone: b.phone.to_owned(),
    })
}

#[derive(Debug, Serialize)]
pub struct IdList {
    member: Vec<String>,
}

pub(super) fn id_list(ids: impl Iterator<Item = String>) -> IdList {
    IdList {
        member: ids.collect(),
    }
}

#[derive(Debug, Serialize)]
pub struct ConstraintXml {
    #[serde(rename = "ConstraintID")]
    id: &'static str,
    #[serde(rename = "Description")]
    description: &'static str,
}

#[derive(Debug, Serialize)]
pub struct Constraints {
    #[serde(rename = "Constraint")]
    constraint: Vec<ConstraintXml>,
}

pub(super) fn constraints(list: Vec<(&'static str, &'static str)>) -> Option<Constraints> {
    (!list.is_empty()).then(|| Constraints {
        constraint: list
            .into_iter()
            .map(|(id, description)| ConstraintXml { id, description })
            .collect(),
    })
}
