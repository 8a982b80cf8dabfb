//! The gateway takes "now" and its random ids from the clock and id source it is given, so tests
//! move time without sleeping and a seed repeats the same ids.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::TestEnv;
use kessai_core::clock::ManualClock;
use kessai_core::ids::SeededIds;
use serde_json::json;
use std::sync::Arc;
use time::macros::datetime;

fn hooks(clock: Arc<ManualClock>, seed: u64) -> kessai::Hooks {
    kessai::Hooks {
        clock: Some(clock),
        ids: Some(Arc::new(SeededIds::seeded(seed))),
        ..kessai::Hooks::default()
    }
}

#[tokio::test]
async fn the_gateway_reads_time_and_ids_from_what_it_is_given() {
    let clock = Arc::new(ManualClock::new(datetime!(2030-01-02 03:04:05 UTC)));
    let a = TestEnv::start_with("sources-a", hooks(clock.clone(), 42)).await;
    let b = TestEnv::start_with("sources-b", hooks(clock.clone(), 42)).await;
    let c = TestEnv::start_with("sources-c", hooks(clock.clone(), 43)).await;
    assert_eq!(a.ccid, b.ccid, "the same seed makes the same demo merchant");
    assert_ne!(a.ccid, c.ccid, "another seed another one");

    let ra = a
        .mdk("Authorize", a.authorize_params("t-1", 1200, false))
        .await;
    let rb = b
        .mdk("Authorize", b.authorize_params("t-1", 1200, false))
        .await;
    assert_eq!(ra["mstatus"], "success", "{ra:?}");
    assert_eq!(
        ra["marchTxn"], rb["marchTxn"],
        "request ids come from the seed"
    );
    assert_eq!(ra["custTxn"], rb["custTxn"]);
    let o = a.order("t-1").await.unwrap();
    assert_eq!(o.created_at, "2030-01-02T03:04:05Z");

    // A day later on the manual clock, with no sleeping.
    clock.advance(time::Duration::days(1));
    let r = a.mdk("Cancel", json!({"orderId": "t-1"})).await;
    assert_eq!(r["mstatus"], "success", "{r:?}");
    // 2030-01-03 03:04:05 UTC is 12:04:05 in Japan.
    assert_eq!(r["centerResponseDatetime"], "20300103120405");
    let o = a.order("t-1").await.unwrap();
    assert_eq!(o.updated_at, "2030-01-03T03:04:05Z");
    let history = a.store.history(&o.merchant, &o.order_id).await.unwrap();
    assert_eq!(history.last().unwrap().at, "2030-01-03T03:04:05Z");
}
