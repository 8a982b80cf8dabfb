//! The gateway merchants talk to: the MDK API for Amazon Pay, the buyer's confirmation pages, and
//! a demo shop.
//!
//! Only this crate knows the MDK wire format ([`mdk`]). It decides with the pure state machine of
//! `kessai-core`, stores through the `kessai-store` trait and reaches Amazon Pay through the
//! `kessai-amazonpay` trait, over HTTP.

mod app;
mod buyer;
mod commands;
pub mod crash;
mod demo;
mod handoff;
mod idempotency;
pub mod ipn;
pub mod mdk;
mod operations;
mod pages;
mod params;
mod pipeline;
pub mod pushes;
pub mod recovery;
pub mod reply;
mod search;
mod util;

pub use app::{Amazons, Connection, Gateway, GatewayConfig, GatewayError};
pub use demo::AutoPayEmulator;
pub use handoff::{HandOff, ProductType};
pub use ipn::IpnSettings;
pub use pushes::PushSettings;
pub use recovery::RecoverySettings;
