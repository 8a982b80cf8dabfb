//! Runs the conformance suite of `compat/node`: Amazon's official Node.js SDK, unmodified, against
//! the emulator (`kessai sandbox`, started by the suite itself on port 0).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod node_suite;

#[test]
fn official_node_sdk_drives_the_emulator() {
    node_suite::run("node", "@amazonpay/amazon-pay-api-sdk-nodejs", &[]);
}
