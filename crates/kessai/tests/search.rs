//! Search (`/paynow-search/v2/Search/search`) against a real gateway and emulator: orders made by
//! real flows (and a few written straight to the store), found through the signed HTTP endpoint.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{walk_buyer, TestEnv};
use kessai_core::{
    Consent, ConsentState, Field, Frequency, FrequencyUnit, Kind, MerchantCcid, OrderId,
    ResultCode, Secret, Yen,
};
use kessai_store::{ConfirmScreen, HistoryEntry, MerchantRecord, OrderRecord, Unit, Write};
use serde_json::{json, Map, Value};

const SEARCH: &str = "/paynow-search/v2/Search/search";
const TEST_SEARCH: &str = "/test-paynow-search/v2/Search/search";

/// Sends a signed Search as the official MDK does (test mode: `/test-paynow-search`).
async fn search(env: &TestEnv, params: Value, test_mode: bool) -> Map<String, Value> {
    let body = env.mdk_body(params, test_mode);
    let path = if test_mode { TEST_SEARCH } else { SEARCH };
    env.mdk_path(path, body, "application/x-www-form-urlencoded")
        .await
}

/// A Search of the orders whose id matches `pattern`, with `extra` top-level fields.
fn by_id(pattern: &str, extra: Value) -> Value {
    let mut p = json!({
        "requestId": "r-1",
        "serviceTypeCd": ["amazonpay"],
        "containDummyFlag": "1",
        "maxCount": "100",
        "newerFlag": "false",
        "searchParameters": {"common": {"orderId": pattern}},
    });
    for (k, v) in extra.as_object().unwrap() {
        p[k] = v.clone();
    }
    p
}

fn with_filters(pattern: &str, common: Value, amazonpay: Value) -> Value {
    let mut c = common.as_object().cloned().unwrap_or_default();
    c.insert("orderId".into(), pattern.into());
    by_id(
        pattern,
        json!({"searchParameters": {"common": c, "amazonpay": amazonpay}}),
    )
}

fn orders(r: &Map<String, Value>) -> &Vec<Value> {
    assert_eq!(r["mstatus"], "success", "{r:?}");
    r["orderInfos"]["orderInfo"]
        .as_array()
        .unwrap_or_else(|| panic!("orderInfos wraps an orderInfo array: {r:?}"))
}

fn ids(r: &Map<String, Value>) -> Vec<String> {
    orders(r)
        .iter()
        .map(|o| o["orderId"].as_str().unwrap().to_owned())
        .collect()
}

fn transactions(order: &Value) -> &Vec<Value> {
    order["transactionInfos"]["transactionInfo"]
        .as_array()
        .unwrap_or_else(|| panic!("transactionInfos wraps a transactionInfo array: {order}"))
}

fn find<'a>(r: &'a Map<String, Value>, id: &str) -> &'a Value {
    orders(r).iter().find(|o| o["orderId"] == id).unwrap()
}

/// `YYYYMMDDhhmmss` in Japan time, `hours` from now.
fn jst(hours: i64) -> String {
    kessai_gateway::mdk::center_datetime(
        time::OffsetDateTime::now_utc() + time::Duration::hours(hours),
    )
}

#[tokio::test]
async fn search_finds_orders_of_real_flows_with_each_filter() {
    let env = TestEnv::start("search-flows").await;
    env.buy("shop-1", 5000, false, "visa-1111").await;
    let r = env
        .mdk("Capture", json!({"orderId": "shop-1", "amount": "4000"}))
        .await;
    assert_eq!(r["mstatus"], "success", "{r:?}");
    let r = env
        .mdk("Refund", json!({"orderId": "shop-1", "amount": "1000"}))
        .await;
    assert_eq!(r["mstatus"], "success", "{r:?}");
    env.buy("shop-2", 800, false, "mc-4444").await;
    let r = env.mdk("Cancel", json!({"orderId": "shop-2"})).await;
    assert_eq!(r["mstatus"], "success", "{r:?}");
    env.buy("shop_3", 700, false, "visa-3434").await; // declined
    let r = env
        .mdk("Authorize", env.authorize_params("else-4", 300, false))
        .await;
    assert_eq!(r["mstatus"], "success");
    let shop1 = env.order("shop-1").await.unwrap();

    // Everything, newest first, in the shape the official MDK reads.
    let r = search(&env, by_id("*", json!({})), true).await;
    assert_eq!(ids(&r), ["else-4", "shop_3", "shop-2", "shop-1"]);
    assert_eq!(r["serviceType"], "search");
    assert_eq!(r["vResultCode"], "S000000000000000");
    assert_eq!(r["searchCount"], "4");
    assert_eq!(r["overMaxCountFlag"], "false");
    assert!(r["orderInfos"].is_object(), "an object wrapping the array");
    let first = &orders(&r)[0];
    assert_eq!(first["index"], "0");
    assert_eq!(first["serviceTypeCd"], "amazonpay");
    assert_eq!(first["orderStatus"], "Started");

    let o = find(&r, "shop-1");
    assert_eq!(o["orderStatus"], "PartiallyRefunded");
    assert_eq!(o["lastSuccessTxnType"], "Refund");
    let proper = &o["properOrderInfo"];
    assert_eq!(proper["detailOrderType"], "PartiallyRefunded");
    assert_eq!(proper["accountingType"], "0");
    assert_eq!(proper["payConfirmScreenType"], "0");
    assert_eq!(
        proper["centerOrderId"].as_str(),
        shop1.charge_permission_id.as_deref()
    );
    assert_eq!(
        proper["centerTransactionId"].as_str(),
        shop1.charge_id.as_deref()
    );
    assert_eq!(proper["capturedAmount"], "4000");
    assert_eq!(proper["refundedAmount"], "1000");
    let txns = transactions(o);
    let history = env
        .store
        .history(
            &MerchantCcid::parse(&env.ccid).unwrap(),
            &OrderId::parse("shop-1").unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(
        txns.len(),
        history.len(),
        "one transactionInfo per history row"
    );
    let commands: Vec<_> = txns
        .iter()
        .map(|t| t["command"].as_str().unwrap())
        .collect();
    assert_eq!(commands.first(), Some(&"Authorize"));
    assert_eq!(&commands[commands.len() - 2..], ["Capture", "Refund"]);
    let capture = &txns[txns.len() - 2];
    assert_eq!(capture["mstatus"], "success");
    assert_eq!(capture["vResultCode"], "S000000000000000");
    assert_eq!(capture["txnDatetime"].as_str().unwrap().len(), 14);
    assert_eq!(
        capture["properTransactionInfo"]["detailCommandType"],
        "Capture"
    );
    let txn_ids: Vec<i64> = txns
        .iter()
        .map(|t| t["txnId"].as_str().unwrap().parse().unwrap())
        .collect();
    assert!(txn_ids.windows(2).all(|w| w[0] < w[1]), "{txn_ids:?}");

    // `_` is literal, `*` is the wildcard.
    let r = search(&env, by_id("shop_*", json!({})), true).await;
    assert_eq!(ids(&r), ["shop_3"]);
    let r = search(&env, by_id("shop-1", json!({})), true).await;
    assert_eq!(ids(&r), ["shop-1"]);
    let r = search(&env, by_id("*-*", json!({})), true).await;
    assert_eq!(ids(&r), ["else-4", "shop-2", "shop-1"]);

    // Filters, one at a time.
    let cases: Vec<(Value, Value, Vec<&str>)> = vec![
        (
            json!({"orderStatus": ["Canceled", "Declined"]}),
            json!({}),
            vec!["shop_3", "shop-2"],
        ),
        (
            json!({}),
            json!({"detailOrderType": ["Started"]}),
            vec!["else-4"],
        ),
        (json!({"command": ["Cancel"]}), json!({}), vec!["shop-2"]),
        (
            json!({"command": ["Capture"], "mstatus": ["success"]}),
            json!({}),
            vec!["shop-1"],
        ),
        (json!({"mstatus": ["failure"]}), json!({}), vec!["shop_3"]),
        (
            json!({"txnDatetime": {"from": jst(-1), "to": jst(1)}}),
            json!({}),
            vec!["else-4", "shop_3", "shop-2", "shop-1"],
        ),
        (
            json!({"txnDatetime": {"from": "20200101", "to": "20201231"}}),
            json!({}),
            vec![],
        ),
        (
            json!({}),
            json!({"centerOrderId": shop1.charge_permission_id}),
            vec!["shop-1"],
        ),
        (
            json!({}),
            json!({"centerTransactionId": shop1.charge_id}),
            vec!["shop-1"],
        ),
        (json!({}), json!({"accountingType": "1"}), vec![]),
        (
            json!({"orderStatus": ["Captured"]}),
            json!({"detailOrderType": ["Started"]}),
            vec![],
        ),
    ];
    for (common, amazonpay, expected) in cases {
        let r = search(
            &env,
            with_filters("*", common.clone(), amazonpay.clone()),
            true,
        )
        .await;
        assert_eq!(ids(&r), expected, "{common} {amazonpay}");
    }

    // newerFlag: only the newest transaction is shown, and judged.
    let r = search(&env, by_id("shop-1", json!({"newerFlag": "true"})), true).await;
    let txns = transactions(&orders(&r)[0]);
    assert_eq!(txns.len(), 1);
    assert_eq!(txns[0]["command"], "Refund");
    let capture_newest = with_filters("*", json!({"command": ["Capture"]}), json!({}));
    let mut newest = capture_newest.clone();
    newest["newerFlag"] = json!(true);
    assert_eq!(ids(&search(&env, capture_newest, true).await), ["shop-1"]);
    assert!(ids(&search(&env, newest, true).await).is_empty());

    // maxCount and overMaxCountFlag.
    let r = search(&env, by_id("*", json!({"maxCount": "2"})), true).await;
    assert_eq!(ids(&r), ["else-4", "shop_3"]);
    assert_eq!(r["overMaxCountFlag"], "true");
    assert_eq!(r["searchCount"], "2");
    let r = search(&env, by_id("*", json!({"maxCount": "4"})), true).await;
    assert_eq!(r["overMaxCountFlag"], "false");

    // JSON numbers and booleans read as their string forms.
    let strings = search(
        &env,
        by_id("shop*", json!({"maxCount": "2", "newerFlag": "true"})),
        true,
    )
    .await;
    let typed = search(
        &env,
        by_id(
            "shop*",
            json!({"maxCount": 2, "newerFlag": true, "containDummyFlag": 1}),
        ),
        true,
    )
    .await;
    assert_eq!(strings["orderInfos"], typed["orderInfos"]);
    assert_eq!(typed["overMaxCountFlag"], "true");
}

/// An order of `merchant` written straight to the store, with one history entry.
async fn put(env: &TestEnv, order: OrderRecord, command: &str, amount: Option<u64>) {
    let entry = HistoryEntry {
        command: command.into(),
        request: "{}".into(),
        mstatus: "success".into(),
        v_result_code: "S000000000000000".into(),
        message: "Success".into(),
        amount: amount.map(Yen::new),
        at: kessai_store::time_text(time::OffsetDateTime::now_utc()),
    };
    let unit = Unit::new(&order.merchant, &order.order_id)
        .with(Write::InsertOrder(order))
        .with(Write::History(entry));
    env.store.apply(&unit).await.unwrap();
}

fn copy(template: &OrderRecord, merchant: &MerchantCcid, id: &str) -> OrderRecord {
    let mut o = template.clone();
    o.merchant = merchant.clone();
    o.order_id = OrderId::parse(id).unwrap();
    o.public_ref = format!("{}-{id}", merchant.as_str());
    o.checkout_session_id = None;
    o.charge_permission_id = None;
    o.charge_id = None;
    o.created_at = kessai_store::time_text(time::OffsetDateTime::now_utc());
    o
}

#[tokio::test]
async fn live_and_test_paths_recurring_filters_and_other_merchants() {
    let env = TestEnv::start("search-modes").await;
    let r = env
        .mdk_live("Authorize", env.authorize_params("live-1", 1200, false))
        .await;
    assert_eq!(r["mstatus"], "success", "{r:?}");
    walk_buyer(&env, &r, "visa-1111").await;
    env.buy("test-1", 900, false, "visa-1111").await;
    let me = MerchantCcid::parse(&env.ccid).unwrap();
    let template = env.order("test-1").await.unwrap();
    assert!(template.dummy && !env.order("live-1").await.unwrap().dummy);

    // Recurring orders, written straight to the store (test orders).
    let mut sub = copy(&template, &me, "sub-1");
    sub.consent = Some(Consent {
        state: ConsentState::Active,
        ..Consent::new(
            Yen::new(980),
            Frequency::new(FrequencyUnit::Month, 1).unwrap(),
            false,
        )
    });
    sub.confirm_screen = ConfirmScreen::Merchant {
        url: "https://merchant.example/confirm".into(),
    };
    put(&env, sub, "Authorize", None).await;
    let mut charge = copy(&template, &me, "sub-1-1");
    charge.original_order_id = Some(OrderId::parse("sub-1").unwrap());
    put(&env, charge, "ReAuthorize", Some(980)).await;

    // Another merchant, with an order of the same id and one of its own.
    let other = MerchantCcid::parse("A100000000000001069951ee").unwrap();
    let other_secret = "fedcba9876543210fedcba9876543210";
    env.store
        .insert_merchant(&MerchantRecord {
            ccid: other.clone(),
            secret_hex: Secret::new(other_secret.into()),
            name: "other".into(),
            consent_auth_default: true,
            created_at: kessai_store::time_text(time::OffsetDateTime::now_utc()),
        })
        .await
        .unwrap();
    let mut theirs = copy(&template, &other, "live-1");
    theirs.dummy = false;
    put(&env, theirs, "Authorize", Some(1)).await;
    let mut theirs = copy(&template, &other, "their-2");
    theirs.dummy = false;
    put(&env, theirs, "Authorize", Some(2)).await;

    // Live path: live orders; with containDummyFlag also test orders. Test path: test orders.
    let all = |dummy: &str| by_id("*", json!({"containDummyFlag": dummy}));
    assert_eq!(ids(&search(&env, all("0"), false).await), ["live-1"]);
    assert_eq!(
        ids(&search(&env, all("1"), false).await),
        ["sub-1-1", "sub-1", "test-1", "live-1"]
    );
    assert_eq!(
        ids(&search(&env, all("0"), true).await),
        ["sub-1-1", "sub-1", "test-1"]
    );
    let r = search(&env, all("0"), false).await;
    let ours = env
        .store
        .history(&me, &OrderId::parse("live-1").unwrap())
        .await
        .unwrap();
    let shown = transactions(&orders(&r)[0]);
    assert!(ours.len() > 1);
    assert_eq!(shown.len(), ours.len(), "our live-1's history, not theirs");
    assert!(shown.iter().all(|t| t.get("amount") != Some(&json!("1"))));
    // dummyRequest must fit the path, as for the payment commands.
    let body = env.mdk_body(all("0"), false);
    let r = env
        .mdk_path(TEST_SEARCH, body, "application/x-www-form-urlencoded")
        .await;
    assert_eq!(&r["vResultCode"].as_str().unwrap()[..4], "E103");

    // Recurring filters.
    let cases: Vec<(Value, Vec<&str>)> = vec![
        (json!({"accountingType": "1"}), vec!["sub-1-1", "sub-1"]),
        (json!({"accountingType": 0}), vec!["test-1"]),
        (json!({"originalOrderId": "sub-1"}), vec!["sub-1-1"]),
        (json!({"consentStatus": ["Active"]}), vec!["sub-1"]),
        (json!({"consentStatus": ["Terminated", "Expired"]}), vec![]),
        (json!({"payConfirmScreenType": "1"}), vec!["sub-1"]),
        (
            json!({"detailCommandType": ["ReAuthorize"]}),
            vec!["sub-1-1"],
        ),
    ];
    for (amazonpay, expected) in cases {
        let r = search(&env, with_filters("*", json!({}), amazonpay.clone()), true).await;
        assert_eq!(ids(&r), expected, "{amazonpay}");
    }
    // Transaction amounts (only the entries that carry one match a range): the 900 yen test
    // order's authorization, made through the buyer's pages, and the 980 yen charge.
    let amounts: Vec<(Value, Vec<&str>)> = vec![
        (json!({"from": "980", "to": "980"}), vec!["sub-1-1"]),
        (json!({"from": 1, "to": 979}), vec!["test-1"]),
        (json!({"from": 901, "to": 979}), vec![]),
        (json!({"from": 981}), vec![]),
    ];
    for (range, expected) in amounts {
        let r = search(
            &env,
            with_filters("*", json!({"amount": range}), json!({})),
            true,
        )
        .await;
        assert_eq!(ids(&r), expected, "{range}");
    }
    let r = search(&env, by_id("sub-1", json!({})), true).await;
    let proper = &orders(&r)[0]["properOrderInfo"];
    assert_eq!(proper["consentStatus"], "Active");
    assert_eq!(proper["accountingType"], "1");
    assert_eq!(proper["payConfirmScreenType"], "1");
    let r = search(&env, by_id("sub-1-1", json!({})), true).await;
    assert_eq!(orders(&r)[0]["properOrderInfo"]["originalOrderId"], "sub-1");
    assert!(
        transactions(&orders(&r)[0])[0].get("amount").is_some(),
        "a history amount is shown"
    );
    let r = search(&env, by_id("sub-1", json!({})), true).await;
    assert!(
        transactions(&orders(&r)[0])[0].get("amount").is_none(),
        "an unknown amount is left out"
    );

    // The other merchant sees its own orders only, and we never see theirs.
    let mut params = all("1");
    params["txnVersion"] = "2.0.0".into();
    params["dummyRequest"] = "0".into();
    params["merchantCcid"] = other.as_str().into();
    let body = kessai_gateway::mdk::encode_request(&params, other.as_str(), other_secret);
    let r = env
        .mdk_path(SEARCH, body, "application/x-www-form-urlencoded")
        .await;
    assert_eq!(ids(&r), ["their-2", "live-1"]);
    assert_eq!(transactions(&orders(&r)[1])[0]["amount"], "1");
    let r = search(&env, by_id("their-*", json!({})), false).await;
    assert!(ids(&r).is_empty());
}

#[tokio::test]
async fn bad_input_is_refused_naming_the_field_and_changes_nothing() {
    let env = TestEnv::start("search-bad").await;
    env.buy("keep-1", 1000, false, "visa-1111").await;
    let before = env.order("keep-1").await.unwrap();
    let history_before = env.history_len("keep-1").await;

    let code = |kind, field| ResultCode::field(kind, field, "").code();
    let common = |c: Value| with_filters("*", c, json!({}));
    let cases: Vec<(Value, String, &str)> = vec![
        (
            common(json!({"txnDatetime": {"from": "2026-13-45"}})),
            code(Kind::FieldInvalidDate, Field::TxnDatetime),
            "txnDatetime",
        ),
        (
            common(json!({"txnDatetime": {"from": "20260230"}})),
            code(Kind::FieldInvalidDate, Field::TxnDatetime),
            "txnDatetime",
        ),
        (
            common(json!({"txnDatetime": {"from": "20260302", "to": "20260301"}})),
            code(Kind::RangeReversed, Field::TxnDatetime),
            "txnDatetime",
        ),
        (
            common(json!({"amount": {"from": "10", "to": "9"}})),
            code(Kind::RangeReversed, Field::Amount),
            "amount",
        ),
        (
            common(json!({"amount": [1, 2]})),
            code(Kind::FieldWrongShape, Field::Amount),
            "amount",
        ),
        (
            common(json!({"orderStatus": "Captured"})),
            code(Kind::FieldWrongShape, Field::OrderStatus),
            "orderStatus",
        ),
        (
            common(json!({"orderStatus": ["end"]})),
            code(Kind::FieldInvalidValue, Field::OrderStatus),
            "orderStatus",
        ),
        (
            common(json!({"mstatus": ["ok"]})),
            code(Kind::FieldInvalidValue, Field::Mstatus),
            "mstatus",
        ),
        (
            by_id("*", json!({"serviceTypeCd": ["card"]})),
            code(Kind::FieldInvalidValue, Field::ServiceTypeCd),
            "serviceTypeCd",
        ),
        (
            by_id("*", json!({"serviceTypeCd": "amazonpay"})),
            code(Kind::FieldWrongShape, Field::ServiceTypeCd),
            "serviceTypeCd",
        ),
        (
            by_id("*", json!({"maxCount": "abc"})),
            code(Kind::FieldNotANumber, Field::MaxCount),
            "maxCount",
        ),
        (
            by_id("*", json!({"maxCount": 5000})),
            code(Kind::FieldAboveMaximum, Field::MaxCount),
            "maxCount",
        ),
        (
            by_id("*", json!({"newerFlag": "maybe"})),
            code(Kind::FieldInvalidValue, Field::NewerFlag),
            "newerFlag",
        ),
        (
            by_id("a%*", json!({})),
            code(Kind::FieldInvalidCharacters, Field::OrderId),
            "orderId",
        ),
        (
            by_id(
                "*",
                json!({"searchParameters": {"common": {"orderid": "x"}}}),
            ),
            code(Kind::FieldInvalidValue, Field::SearchParameters),
            "searchParameters",
        ),
    ];
    for (params, expected, field) in cases {
        let r = search(&env, params.clone(), true).await;
        assert_eq!(r["mstatus"], "failure", "{params}");
        assert_eq!(
            r["vResultCode"].as_str(),
            Some(expected.as_str()),
            "{params}: {r:?}"
        );
        let message = r["merrMsg"].as_str().unwrap();
        assert!(message.starts_with(field), "{message}");
        assert!(r.get("orderInfos").is_none(), "a refusal lists nothing");
    }

    // The path and the signature are checked as for every MDK command.
    let body = env.mdk_body(by_id("*", json!({})), true);
    let r = env
        .mdk_path(
            "/test-paynow-search/v2/Search/amazonpay",
            body.clone(),
            "application/x-www-form-urlencoded",
        )
        .await;
    assert_eq!(&r["vResultCode"].as_str().unwrap()[..4], "E107");
    // maxCount "100" → "101" after signing.
    let tampered = body.replacen("%22100%22", "%22101%22", 1);
    assert_ne!(tampered, body);
    let r = env
        .mdk_path(TEST_SEARCH, tampered, "application/x-www-form-urlencoded")
        .await;
    assert_eq!(&r["vResultCode"].as_str().unwrap()[..4], "E101");

    assert_eq!(env.order("keep-1").await.unwrap(), before);
    assert_eq!(env.history_len("keep-1").await, history_before);
    let r = search(&env, by_id("*", json!({})), true).await;
    assert_eq!(ids(&r), ["keep-1"]);
}
