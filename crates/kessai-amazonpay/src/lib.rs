//! Amazon Pay Checkout v2: request signing, the wire model, and an HTTP client.
//!
//! This is the only crate of the gateway side that knows Amazon's JSON and signatures. The
//! gateway depends on the [`AmazonPay`] trait, never on HTTP details; the emulator
//! (`kessai-sandbox`) reuses [`signing`] and [`wire`] so that both sides read one description.

pub mod button;
pub mod client;
pub mod error;
pub mod keys;
pub mod provider;
pub mod signing;
pub mod wire;

pub use button::SignedPayload;
pub use client::{AmazonPayClient, AmazonPayClientBuilder, ClientConfig, Environment};
pub use error::AmazonPayError;
pub use keys::{PrivateKey, PublicKey};
pub use provider::AmazonPay;
