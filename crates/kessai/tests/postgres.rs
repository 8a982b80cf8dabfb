//! The gateway on PostgreSQL (`--database-url`): the one-time and the recurring flow end to end,
//! each on a schema of its own that is dropped afterwards. The server is
//! `KESSAI_TEST_DATABASE_URL`, else the local one.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::pg::{server_url, Schema};
use common::{ok, walk_buyer, TestEnv, MERCHANT_SITE};
use kessai_core::{ConsentState, OrderState, Yen};
use serde_json::json;

#[tokio::test]
async fn one_time_flow_on_postgres() {
    let schema = Schema::create().await;
    let env = TestEnv::start_on_database("pg-one-time", &schema.database_url()).await;
    let landed = env.buy("pg-order-1", 5000, false, "visa-1111").await;
    assert_eq!(query_of(&landed, "mstatus").as_deref(), Some("success"));
    let o = env.order("pg-order-1").await.unwrap();
    assert_eq!(o.order.state, OrderState::Authorized);

    ok(&env
        .mdk(
            "Capture",
            json!({"orderId": "pg-order-1", "amount": "4000"}),
        )
        .await);
    let r = env
        .mdk("Refund", json!({"orderId": "pg-order-1", "amount": "1500"}))
        .await;
    ok(&r);
    assert_eq!(r["refundableAmount"], "2500");
    let o = env.order("pg-order-1").await.unwrap();
    assert_eq!(
        (o.order.state, o.order.captured, o.order.refunded),
        (
            OrderState::PartiallyRefunded,
            Yen::new(4000),
            Yen::new(1500)
        )
    );
    assert!(o.order.invariants_hold());
    let commands: Vec<String> = env
        .store
        .history(&o.merchant, &o.order_id)
        .await
        .unwrap()
        .into_iter()
        .map(|h| h.command)
        .collect();
    assert_eq!(
        commands,
        [
            "Authorize",
            "CheckoutSessionBound",
            "BuyerSignedIn",
            "BuyerConfirmed",
            "AuthorizeResult",
            "Capture",
            "Refund"
        ]
    );
    // The rows are in PostgreSQL, not in a SQLite file of the data directory.
    assert_eq!(schema.count("orders").await, 1);
    assert_eq!(schema.count("refunds").await, 1);
    assert!(!env.data_dir.join("gateway.sqlite").exists());

    let body = env.mdk_body(
        json!({
            "requestId": "r-1",
            "serviceTypeCd": ["amazonpay"],
            "containDummyFlag": "1",
            "maxCount": "10",
            "newerFlag": "false",
            "searchParameters": {"common": {"orderId": "pg-order-*"}},
        }),
        true,
    );
    let r = env
        .mdk_path(
            "/test-paynow-search/v2/Search/search",
            body,
            "application/x-www-form-urlencoded",
        )
        .await;
    assert_eq!(r["mstatus"], "success", "{r:?}");
    assert_eq!(
        r["orderInfos"]["orderInfo"][0]["orderId"], "pg-order-1",
        "{r:?}"
    );
}

#[tokio::test]
async fn recurring_flow_on_postgres() {
    let schema = Schema::create().await;
    let env = TestEnv::start_on_database("pg-recurring", &schema.database_url()).await;
    let r = env
        .mdk(
            "Authorize",
            json!({
                "orderId": "pg-sub-1",
                "amount": "980",
                "accountingType": "1",
                "consentAuthType": "1",
                "frequencyUnit": "Month",
                "frequencyValue": "1",
                "successUrl": format!("{MERCHANT_SITE}/ok"),
                "cancelUrl": format!("{MERCHANT_SITE}/cancel"),
                "errorUrl": format!("{MERCHANT_SITE}/error"),
            }),
        )
        .await;
    ok(&r);
    let landed = walk_buyer(&env, &r, "visa-1111").await;
    assert!(landed.as_str().starts_with(&format!("{MERCHANT_SITE}/ok")));
    let order = env.order("pg-sub-1").await.unwrap();
    assert_eq!(order.order.state, OrderState::Authorized);
    assert_eq!(order.consent.unwrap().state, ConsentState::Active);

    let r = env
        .mdk(
            "ReAuthorize",
            json!({"orderId": "pg-sub-1-m2", "originalOrderId": "pg-sub-1", "amount": "980", "withCapture": "true"}),
        )
        .await;
    ok(&r);
    let m2 = env.order("pg-sub-1-m2").await.unwrap();
    assert_eq!(m2.order.state, OrderState::Captured);
    assert_eq!(m2.accounting_type(), 1);

    ok(&env.mdk("Terminate", json!({"orderId": "pg-sub-1"})).await);
    let order = env.order("pg-sub-1").await.unwrap();
    assert_eq!(order.consent.unwrap().state, ConsentState::Terminated);
    assert_eq!(schema.count("orders").await, 2);
}

/// Two instances on one database are one gateway: the second needs only `--database-url` and the
/// first's emulator, and gets the same demo merchant, the same Amazon Pay key (so the same
/// merchant at Amazon) and the same buyer-link key. An order paid through one is captured and
/// refunded through the other.
#[tokio::test]
async fn two_instances_on_one_database_are_one_gateway() {
    let schema = Schema::create().await;
    let a = TestEnv::start_on_database("pg-two-a", &schema.database_url()).await;
    let b =
        TestEnv::start_on_database_against("pg-two-b", &schema.database_url(), &a.emulator).await;
    assert_ne!(a.gateway, b.gateway);
    assert_eq!((&a.ccid, &a.secret), (&b.ccid, &b.secret));
    assert!(
        !b.data_dir.join("amazon-pay-private-key.pem").exists(),
        "the key lives in the database, not in a file of each instance"
    );

    let landed = a.buy("pg-two-1", 5000, false, "visa-1111").await;
    assert_eq!(query_of(&landed, "mstatus").as_deref(), Some("success"));
    ok(&b
        .mdk("Capture", json!({"orderId": "pg-two-1", "amount": "5000"}))
        .await);
    ok(&a
        .mdk("Refund", json!({"orderId": "pg-two-1", "amount": "1000"}))
        .await);
    let o = b.order("pg-two-1").await.unwrap();
    assert_eq!(
        (o.order.state, o.order.captured, o.order.refunded),
        (
            OrderState::PartiallyRefunded,
            Yen::new(5000),
            Yen::new(1000)
        )
    );
    assert!(o.order.invariants_hold());

    // Authorized and paid through B (whose buyer pages sign links with the key both share),
    // captured through A.
    let r = b
        .mdk("Authorize", b.authorize_params("pg-two-2", 3000, false))
        .await;
    ok(&r);
    let landed = walk_buyer(&b, &r, "visa-1111").await;
    assert_eq!(query_of(&landed, "mstatus").as_deref(), Some("success"));
    ok(&a
        .mdk("Capture", json!({"orderId": "pg-two-2", "amount": "3000"}))
        .await);
    assert_eq!(
        a.order("pg-two-2").await.unwrap().order.state,
        OrderState::Captured
    );
    assert_eq!(schema.count("merchants").await, 1);
}

/// Three instances starting at the same moment on an empty database agree on one demo merchant
/// and one Amazon Pay key: the first to store each wins, the others take it.
#[tokio::test]
async fn instances_starting_at_once_agree_on_one_identity() {
    let schema = Schema::create().await;
    let emulator = common::standalone_emulator(&common::fresh_dir("pg-three-amazon")).await;
    let url = schema.database_url();
    let emulator = emulator.as_str().trim_end_matches('/').to_owned();
    let (one, two, three) = tokio::join!(
        TestEnv::start_on_database_against("pg-three-1", &url, &emulator),
        TestEnv::start_on_database_against("pg-three-2", &url, &emulator),
        TestEnv::start_on_database_against("pg-three-3", &url, &emulator),
    );
    for other in [&two, &three] {
        assert_eq!((&one.ccid, &one.secret), (&other.ccid, &other.secret));
    }
    assert_eq!(schema.count("merchants").await, 1);
    let landed = one.buy("pg-three-1", 2000, false, "visa-1111").await;
    assert_eq!(query_of(&landed, "mstatus").as_deref(), Some("success"));
    ok(&three
        .mdk(
            "Capture",
            json!({"orderId": "pg-three-1", "amount": "2000"}),
        )
        .await);
    ok(&two
        .mdk("Refund", json!({"orderId": "pg-three-1", "amount": "2000"}))
        .await);
    let o = one.order("pg-three-1").await.unwrap();
    assert_eq!(
        (o.order.state, o.order.refunded),
        (OrderState::Refunded, Yen::new(2000))
    );
}

fn query_of(url: &url::Url, name: &str) -> Option<String> {
    url.query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// `kessai merchant add` and `list` with `--database-url` work on PostgreSQL, not on a file.
#[tokio::test]
async fn merchant_commands_on_postgres() {
    let schema = Schema::create().await;
    let dir = common::fresh_dir("pg-merchant");
    let kessai = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_kessai"))
            .args(args)
            .arg("--data-dir")
            .arg(&dir)
            .env("KESSAI_DATABASE_URL", schema.database_url())
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    let added = kessai(&["merchant", "add", "--name", "Shop on PostgreSQL"]);
    let ccid = added
        .lines()
        .find_map(|l| l.strip_prefix("merchantCcid="))
        .unwrap()
        .to_owned();
    let listed = kessai(&["merchant", "list"]);
    assert!(
        listed.contains(&format!("{ccid}\tShop on PostgreSQL")),
        "{listed}"
    );
    assert_eq!(schema.count("merchants").await, 1);
    assert!(!dir.join("gateway.sqlite").exists());
}

#[tokio::test]
async fn a_database_url_that_is_not_postgres_is_refused() {
    let dir = common::fresh_dir("pg-refused");
    let refused = kessai::open_gateway_store(Some("mysql://localhost/kessai"), &dir).await;
    let message = refused.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(message.contains("postgres://"), "{message}");
}

/// A TCP proxy in front of the PostgreSQL server that the test can cut (every connection
/// dropped, new ones refused at once) and restore: the database "going away" and coming back,
/// without restarting the server the other tests share.
struct Proxy {
    addr: std::net::SocketAddr,
    cut: std::sync::Arc<std::sync::atomic::AtomicBool>,
    links: std::sync::Arc<std::sync::Mutex<Vec<tokio::task::AbortHandle>>>,
}

impl Proxy {
    async fn start(upstream: String) -> Proxy {
        use std::sync::atomic::Ordering;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let cut = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let links = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (c, l) = (cut.clone(), links.clone());
        tokio::spawn(async move {
            loop {
                let Ok((mut down, _)) = listener.accept().await else {
                    return;
                };
                if c.load(Ordering::SeqCst) {
                    drop(down);
                    continue;
                }
                let upstream = upstream.clone();
                let task = tokio::spawn(async move {
                    if let Ok(mut up) = tokio::net::TcpStream::connect(&upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut down, &mut up).await;
                    }
                });
                l.lock().unwrap().push(task.abort_handle());
            }
        });
        Proxy { addr, cut, links }
    }

    fn cut(&self) {
        self.cut.store(true, std::sync::atomic::Ordering::SeqCst);
        for link in self.links.lock().unwrap().drain(..) {
            link.abort();
        }
    }

    fn restore(&self) {
        self.cut.store(false, std::sync::atomic::Ordering::SeqCst);
    }
}

/// The database goes away under a running gateway: requests get E504 (retry) within the pool's
/// and statements' timeouts instead of hanging, `/health` says `database down`, and once the
/// database is back the gateway serves again by itself; the retried Capture captures once.
#[tokio::test]
async fn a_database_that_goes_away_gets_e504_and_the_gateway_recovers_by_itself() {
    let schema = Schema::create().await;
    let server = url::Url::parse(&server_url()).unwrap();
    let upstream = format!(
        "{}:{}",
        server.host_str().unwrap_or("127.0.0.1"),
        server.port().unwrap_or(5432)
    );
    let proxy = Proxy::start(upstream).await;
    let mut through = url::Url::parse(&schema.database_url()).unwrap();
    through.set_host(Some("127.0.0.1")).unwrap();
    through.set_port(Some(proxy.addr.port())).unwrap();
    let env = TestEnv::start_on_database("pg-outage", through.as_str()).await;
    let landed = env.buy("pg-outage-1", 5000, false, "visa-1111").await;
    assert_eq!(query_of(&landed, "mstatus").as_deref(), Some("success"));
    let health = |env: &TestEnv| {
        let (http, url) = (env.http.clone(), format!("{}/health", env.gateway));
        async move { http.send_timeout(url).await }
    };

    proxy.cut();
    let (status, body) = health(&env).await;
    assert_eq!((status, body.as_str()), (503, "database down"));
    let r = tokio::time::timeout(
        std::time::Duration::from_secs(40),
        env.mdk(
            "Capture",
            json!({"orderId": "pg-outage-1", "amount": "5000"}),
        ),
    )
    .await
    .expect("a Capture while the database is away is answered, not left hanging");
    assert_eq!(r["mstatus"], "failure", "{r:?}");
    assert!(
        r["vResultCode"].as_str().unwrap().starts_with("E504"),
        "{r:?}"
    );

    proxy.restore();
    let mut back = false;
    for _ in 0..40 {
        if health(&env).await.0 == 200 {
            back = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    assert!(back, "/health answers ok again once the database is back");
    ok(&env
        .mdk(
            "Capture",
            json!({"orderId": "pg-outage-1", "amount": "5000"}),
        )
        .await);
    let o = env.order("pg-outage-1").await.unwrap();
    assert_eq!(
        (o.order.state, o.order.captured),
        (OrderState::Captured, Yen::new(5000))
    );
    let captures = env
        .store
        .operations(&o.merchant, &o.order_id)
        .await
        .unwrap()
        .into_iter()
        .filter(|op| op.intent.kind == kessai_core::OperationKind::Capture)
        .count();
    assert_eq!(captures, 1, "one Capture operation reached Amazon Pay");
}

/// GET with a deadline: (status, body); a request that does not finish in 10 s fails the test.
trait SendTimeout {
    async fn send_timeout(&self, url: String) -> (u16, String);
}

impl SendTimeout for reqwest::Client {
    async fn send_timeout(&self, url: String) -> (u16, String) {
        let r = tokio::time::timeout(std::time::Duration::from_secs(10), self.get(&url).send())
            .await
            .expect("answered in time")
            .unwrap();
        let status = r.status().as_u16();
        (status, r.text().await.unwrap())
    }
}
