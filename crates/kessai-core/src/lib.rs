//! The domain of Kessai: money, identifiers, the one-time order state machine and result codes.
//!
//! This crate does no I/O (beyond reading the system clock in `SystemClock`), knows no wire format
//! and has no async code. Every function takes values and returns values, so the rules of an order
//! can be tested exhaustively without a server; time and randomness come in as a [`Clock`] and an
//! [`IdSource`].

pub mod clock;
pub mod consent;
pub mod ids;
pub mod money;
pub mod operation;
pub mod order;
pub mod push;
pub mod result_code;
pub mod secret;

pub use clock::{Clock, ManualClock, SystemClock};
pub use consent::{Consent, ConsentEvent, ConsentState, Frequency, FrequencyUnit};
pub use ids::{IdError, IdSource, MerchantCcid, OrderId, SeededIds};
pub use money::{AmountError, Currency, Money, MoneyError, Yen};
pub use operation::{Intent, OperationKind, OperationStatus};
pub use order::{Event, Order, OrderState, Refusal, UpdatePlan};
pub use push::{PushKind, PushStatus};
pub use result_code::{Field, Kind, ResultCode};
pub use secret::Secret;
