//! The XML of the MWS face: typed answer elements (serde, rendered by quick-xml) and the one
//! envelope every answer is written in. Element names and nesting follow Amazon's models.

mod agreement;
mod document;
mod order_reference;
mod payment;
mod shared;

pub use agreement::*;
pub use document::*;
pub use order_reference::*;
pub use payment::*;
pub use shared::*;

use crate::engine::agreements::Timestamp;

/// The namespace of every API answer.
pub const NS: &str = "http://mws.amazonservices.com/schema/OffAmazonPayments/2013-01-01";
/// The namespace of notification data.
pub const IPN_NS: &str = "https://mws.amazonservices.com/ipn/OffAmazonPayments/2013-01-01";

/// `2024-05-01T12:34:56.000Z`.
pub fn timestamp(unix: Timestamp) -> String {
    let t =
        time::OffsetDateTime::from_unix_timestamp(unix).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    t.format(time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].000Z"
    ))
    .unwrap_or_default()
}
