//! The Amazon Pay emulator: a stateful HTTP server that speaks Amazon Pay Checkout v2.
//!
//! One protocol-neutral [`engine`] keeps the objects and Amazon's rules; each face (`v2`, the
//! Checkout v2 REST API) reads its own wire format into engine calls and renders the engine's
//! records and refusals in it.
//!
//! It verifies every request's signature against the public keys registered with it, keeps its
//! objects in its own SQLite file, serves the buyer's sign-in and confirmation pages as plain HTML
//! forms, and moves on its own clock, which tests can advance. It shares no code path with the
//! gateway beyond the wire model and signing of `kessai-amazonpay`: the gateway reaches it only
//! over HTTP.

mod auth;
pub mod buyers;
mod checkout_js;
mod db;
pub mod engine;
mod error;
mod helpers;
pub use helpers::TOKEN_HEADER as TEST_HELPERS_TOKEN_HEADER;
mod input;
pub mod mws;
pub mod notify;
mod pages;
mod server;
/// HTTPS and HTTP on one port (shared with the gateway).
pub mod tls {
    pub use kessai_http::tls::*;
}
mod v2;

pub use error::ApiError;
pub use kessai_http::Limits;
pub use server::{Sandbox, SandboxConfig, SandboxError, Sources, TestHelpers, TlsSetting};
pub use v2::stored_as_v2;
