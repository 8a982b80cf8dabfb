//! Startup as a value, the shared state, and the MDK entry point.

use crate::commands::{Command, CommandName, Rejected};
use crate::handoff::HandOff;
use crate::mdk;
use crate::params::Params;
use crate::pipeline::Caller;
use crate::reply::Answer;
use crate::util::OrderLocks;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use kessai_amazonpay::AmazonPay;
use kessai_core::clock::Clock;
use kessai_core::ids::IdSource;
use kessai_core::{Field, Kind, MerchantCcid, ResultCode};
use kessai_store::{MerchantRecord, Store};
use serde_json::{Map, Value};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;

#[derive(Debug, Clone)]
pub struct GatewayConfig {
    pub listen: SocketAddr,
    /// The URL buyers' browsers use to reach the gateway; default `http://<bound address>`.
    pub public_url: Option<String>,
    /// The merchant whose credentials the demo shop at `/` uses; no demo shop if `None`.
    pub demo_merchant: Option<MerchantCcid>,
    /// The built-in emulator the demo's Auto Pay page uses; without it the page says so.
    pub demo_auto_pay: Option<crate::demo::AutoPayEmulator>,
    /// Shown to buyers on Amazon Pay's pages.
    pub store_name: String,
    /// Where "now" comes from (the system clock; a manual clock in tests).
    pub clock: Arc<dyn Clock>,
    /// Where random ids and keys come from (seeded from the operating system; a fixed seed in
    /// tests).
    pub ids: Arc<dyn IdSource>,
    /// How result pushes to merchants are sent.
    pub push: crate::pushes::PushSettings,
    /// How often unresolved work is looked for.
    pub recovery: crate::recovery::RecoverySettings,
    /// A crash-test hook (`crate::crash`); off by default.
    pub abort_at: crate::crash::AbortAt,
    /// Which Amazon Pay notifications are believed.
    pub ipn: crate::ipn::IpnSettings,
    /// Connections and timeouts.
    pub limits: kessai_http::Limits,
    /// HTTPS on the same port as plain HTTP (the first byte of a connection decides), for MDK
    /// clients that insist on TLS; `None`: plain HTTP only.
    pub tls: Option<kessai_http::tls::TlsConfig>,
}

/// One Amazon Pay: its API, and how buyers are handed to its pages.
pub struct Connection {
    pub api: Arc<dyn AmazonPay>,
    pub hand_off: HandOff,
}

/// The Amazon Pay a gateway talks to.
pub struct Amazons {
    /// Live orders' (and test orders' when `test` is `None`).
    pub live: Connection,
    /// Where test orders (`/test-paynow`, `dummyRequest` "1") go when they must not reach the
    /// Amazon Pay of live orders: the built-in emulator.
    pub test: Option<Connection>,
}

#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("server: {0}")]
    Serve(std::io::Error),
    #[error("store: {0}")]
    Store(#[from] kessai_store::StoreError),
}

pub struct Inner {
    pub push: crate::pushes::PushSettings,
    pub recovery: crate::recovery::RecoverySettings,
    pub abort_at: crate::crash::AbortAt,
    pub ipn: crate::ipn::IpnSettings,
    pub ipn_certs: crate::ipn::CertCache,
    /// This gateway's name in leases (random per start).
    pub instance: String,
    pub clock: Arc<dyn Clock>,
    pub ids: Arc<dyn IdSource>,
    pub store: Arc<dyn Store>,
    /// The Amazon Pay of live orders (and of test orders when `test_amazon` is `None`).
    pub amazon: Arc<dyn AmazonPay>,
    pub test_amazon: Option<Arc<dyn AmazonPay>>,
    /// How buyers of live orders (and of test orders when `test_hand_off` is `None`) reach
    /// Amazon Pay's pages.
    pub hand_off: HandOff,
    pub test_hand_off: Option<HandOff>,
    pub base_url: String,
    pub store_name: String,
    pub locks: OrderLocks,
    pub templates: minijinja::Environment<'static>,
    pub demo: Option<crate::demo::Demo>,
    /// Key of the buyer-URL references: a reference is derived from (merchant, order), so a
    /// retried Authorize sends Amazon exactly the same request (and idempotency replays it).
    pub ref_key: String,
}

impl Inner {
    /// The gateway's clock.
    pub fn now(&self) -> time::OffsetDateTime {
        self.clock.now()
    }

    /// Now, as stored: RFC 3339 UTC.
    pub fn now_text(&self) -> String {
        kessai_store::time_text(self.now())
    }

    /// The Amazon Pay an order talks to: test orders to the test one, if there is one.
    pub fn amazon_for(&self, dummy: bool) -> &Arc<dyn AmazonPay> {
        match (&self.test_amazon, dummy) {
            (Some(test), true) => test,
            _ => &self.amazon,
        }
    }

    /// How a buyer of an order reaches Amazon Pay: test orders the test one's, if there is one.
    pub fn hand_off_for(&self, dummy: bool) -> &HandOff {
        match (&self.test_hand_off, dummy) {
            (Some(test), true) => test,
            _ => &self.hand_off,
        }
    }

    /// Every hand-off of this gateway (for the origins its pages may send buyers to).
    pub fn hand_offs(&self) -> impl Iterator<Item = &HandOff> {
        std::iter::once(&self.hand_off).chain(self.test_hand_off.iter())
    }

    /// `bytes` random bytes as hex, from the gateway's id source.
    pub fn random_hex(&self, bytes: usize) -> String {
        self.ids.hex(bytes)
    }
}

pub type AppState = Arc<Inner>;

/// A bound, not yet running gateway.
pub struct Gateway {
    limits: kessai_http::Limits,
    tls: Option<kessai_http::tls::TlsConfig>,
    listener: TcpListener,
    state: AppState,
    router: Router,
    addr: SocketAddr,
    base_url: String,
}

impl Gateway {
    pub async fn bind(
        config: GatewayConfig,
        store: Arc<dyn Store>,
        amazons: Amazons,
    ) -> Result<Gateway, GatewayError> {
        let Amazons { live, test } = amazons;
        let (test_amazon, test_hand_off) = match test {
            Some(c) => (Some(c.api), Some(c.hand_off)),
            None => (None, None),
        };
        let listener =
            TcpListener::bind(config.listen)
                .await
                .map_err(|source| GatewayError::Bind {
                    addr: config.listen,
                    source,
                })?;
        let addr = listener.local_addr().map_err(GatewayError::Serve)?;
        let base_url = config
            .public_url
            .unwrap_or_else(|| format!("http://{addr}"))
            .trim_end_matches('/')
            .to_owned();
        // Every instance on one database signs buyer links with the same key.
        let ref_key = match store.setting("buyer_ref_key").await? {
            Some(k) => k,
            None => {
                store
                    .claim_setting("buyer_ref_key", &config.ids.hex(32))
                    .await?
            }
        };
        let demo = config
            .demo_merchant
            .map(|ccid| crate::demo::Demo::new(ccid, base_url.clone(), config.demo_auto_pay));
        let instance = config.ids.hex(8);
        let state = Arc::new(Inner {
            push: config.push,
            recovery: config.recovery,
            abort_at: config.abort_at,
            ipn: config.ipn,
            ipn_certs: crate::ipn::CertCache::default(),
            instance,
            clock: config.clock,
            ids: config.ids,
            store,
            amazon: live.api,
            test_amazon,
            hand_off: live.hand_off,
            test_hand_off,
            base_url: base_url.clone(),
            store_name: config.store_name,
            locks: OrderLocks::default(),
            templates: {
                let mut env = crate::buyer::templates();
                crate::pages::add_templates(&mut env);
                crate::demo::add_templates(&mut env);
                env
            },
            demo,
            ref_key,
        });
        let router = Router::new()
            .route("/{service}/v2/{command}/{service_type}", post(mdk_entry))
            .route("/amazonpay/ipn", post(crate::ipn::receive))
            .merge(crate::buyer::router())
            .merge(crate::demo::router())
            .route("/health", axum::routing::get(health))
            .method_not_allowed_fallback(crate::pages::wrong_method)
            .fallback(crate::pages::not_found)
            .with_state(state.clone());
        Ok(Gateway {
            limits: config.limits,
            tls: config.tls,
            listener,
            state,
            router,
            addr,
            base_url,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    pub async fn serve(self) -> Result<(), GatewayError> {
        crate::pushes::spawn_worker(self.state.clone());
        // Operations whose outcome was not recorded before the last stop, and orders waiting on
        // Amazon, are resolved first thing and then periodically, beside serving.
        crate::recovery::spawn(self.state.clone());
        kessai_http::tls::serve(self.listener, self.router, self.tls, self.limits)
            .await
            .map_err(GatewayError::Serve)
    }
}

/// An authenticated MDK request.
pub struct MdkRequest {
    pub merchant: MerchantRecord,
    pub params: Map<String, Value>,
    pub params_text: String,
    pub dummy: bool,
}

/// What one MDK request came to, for the answer and the log line.
struct Handled {
    answer: Handling,
    merchant: Option<MerchantCcid>,
    txn_version: Option<String>,
    /// The request's Idempotency-Key, claimed: the answer is kept for it.
    claim: Option<crate::idempotency::Claim>,
}

enum Handling {
    Answer(Answer),
    /// The kept answer of an earlier request with the same Idempotency-Key.
    Replay(String),
}

async fn mdk_entry(
    State(state): State<AppState>,
    Path((service, command, service_type)): Path<(String, String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let started = std::time::Instant::now();
    let dummy_path = match service.as_str() {
        "paynow" => false,
        "test-paynow" => true,
        "paynow-search" | "test-paynow-search" => {
            let test_path = service == "test-paynow-search";
            return crate::search::entry(
                &state,
                &command,
                &service_type,
                test_path,
                &headers,
                body,
            )
            .await;
        }
        _ => return (StatusCode::NOT_FOUND, "not found").into_response(),
    };
    let request_id = state.random_hex(16);
    let handled = handle(&state, &command, &service_type, dummy_path, &headers, body).await;
    let merchant = handled
        .merchant
        .as_ref()
        .map(MerchantCcid::as_str)
        .unwrap_or("-");
    let answer = match handled.answer {
        Handling::Replay(body) => {
            tracing::info!(
                request_id = %request_id,
                merchant = %merchant,
                command = %command,
                duration_ms = started.elapsed().as_millis() as u64,
                "mdk command replayed for its Idempotency-Key"
            );
            return json_body(body);
        }
        Handling::Answer(answer) => answer,
    };
    // One line per command at info: never secrets or buyer data.
    tracing::info!(
        request_id = %request_id,
        merchant = %merchant,
        order = %answer.order_id.as_deref().unwrap_or("-"),
        command = %command,
        code = %answer.result.code(),
        mstatus = answer.result.mstatus(),
        duration_ms = started.elapsed().as_millis() as u64,
        "mdk command"
    );
    let cust_txn = state.random_hex(16);
    let body = mdk::render(
        &answer,
        &mdk::ResponseMeta {
            txn_version: handled.txn_version.as_deref(),
            request_id: &request_id,
            cust_txn: &cust_txn,
        },
    )
    .to_string();
    if let Some(claim) = handled.claim {
        crate::idempotency::finish(&state, claim, &answer.result, &body).await;
    }
    json_body(body)
}

fn json_body(body: String) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response()
}

async fn handle(
    state: &AppState,
    command: &str,
    service_type: &str,
    dummy_path: bool,
    headers: &HeaderMap,
    body: Body,
) -> Handled {
    let failed = |result: ResultCode| Handled {
        answer: Handling::Answer(Answer::failure(result, None)),
        merchant: None,
        txn_version: None,
        claim: None,
    };
    // Read one byte more than allowed, to tell "exactly the limit" from "over it".
    let bytes = match axum::body::to_bytes(body, mdk::MAX_BODY + 1).await {
        Ok(b) if b.len() <= mdk::MAX_BODY => b,
        _ => {
            return failed(ResultCode::new(
                Kind::BodyTooLarge,
                "The body is larger than 64 KiB (65536 bytes).",
            ))
        }
    };
    let name = match CommandName::parse(command) {
        Some(name) if service_type == "amazonpay" => name,
        _ => {
            return failed(ResultCode::new(
                Kind::UnknownCommand,
                format!(
                    "No command {command} for service {service_type}; Amazon Pay commands are {}.",
                    CommandName::supported_list()
                ),
            ))
        }
    };
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let request = match authenticate(state, &bytes, content_type, dummy_path).await {
        Ok(r) => r,
        Err(result) => return failed(result),
    };
    let txn_version = mdk::txn_version(&request.params);
    let order_text = mdk::order_id_text(&request.params);
    let merchant = request.merchant.ccid.clone();
    let claim = match crate::idempotency::start(
        state,
        headers,
        &merchant,
        name.as_str(),
        &request.params_text,
    )
    .await
    {
        crate::idempotency::Start::Run(claim) => claim,
        crate::idempotency::Start::Replay(body) => {
            return Handled {
                answer: Handling::Replay(body),
                merchant: Some(merchant),
                txn_version,
                claim: None,
            }
        }
        crate::idempotency::Start::Refuse(result) => {
            return Handled {
                answer: Handling::Answer(Answer::failure(result, order_text)),
                merchant: Some(merchant),
                txn_version,
                claim: None,
            }
        }
    };
    let caller = Caller {
        merchant: request.merchant,
        command: name,
        params_text: request.params_text,
        dummy: request.dummy,
    };
    let answer = match Command::parse(name, &Params(&request.params)) {
        Ok(command) => command.run(state, &caller).await,
        Err(Rejected {
            result,
            order_id: Some(order_id),
        }) => crate::pipeline::rejected(state, &caller, &order_id, result).await,
        Err(Rejected { result, .. }) => Answer::failure(result, order_text),
    };
    Handled {
        answer: Handling::Answer(answer),
        merchant: Some(merchant),
        txn_version,
        claim,
    }
}

/// `/health`: 200 `ok` while the database answers within 2 s, else 503 `database down`.
async fn health(
    axum::extract::State(state): axum::extract::State<AppState>,
) -> (axum::http::StatusCode, &'static str) {
    match tokio::time::timeout(std::time::Duration::from_secs(2), state.store.ping()).await {
        Ok(Ok(())) => (axum::http::StatusCode::OK, "ok"),
        Ok(Err(e)) => {
            tracing::warn!(%e, "health: the database does not answer");
            (axum::http::StatusCode::SERVICE_UNAVAILABLE, "database down")
        }
        Err(_) => (axum::http::StatusCode::SERVICE_UNAVAILABLE, "database down"),
    }
}

pub(crate) async fn authenticate(
    state: &AppState,
    bytes: &[u8],
    content_type: Option<&str>,
    dummy_path: bool,
) -> Result<MdkRequest, ResultCode> {
    let text = mdk::body_text(bytes, content_type)?;
    let envelope = mdk::parse_envelope(&text)?;
    let ccid = mdk::merchant_ccid(&envelope.params)?;
    let merchant = state
        .store
        .merchant(&ccid)
        .await
        .map_err(crate::util::store_failure)?
        .ok_or_else(|| {
            ResultCode::field(
                Kind::UnknownMerchant,
                Field::MerchantCcid,
                format!("{ccid} is not a merchant of this gateway."),
            )
        })?;
    if !mdk::hash_matches(
        &envelope.auth_hash,
        ccid.as_str(),
        &envelope.params_text,
        merchant.secret_hex.expose(),
    ) {
        return Err(ResultCode::field(
            Kind::AuthHashMismatch,
            Field::AuthHash,
            "does not match SHA-256(merchantCcid + params + secret key); check the secret key and that params are hashed exactly as sent.",
        ));
    }
    let dummy = mdk::dummy_request(&envelope.params)?;
    if dummy != dummy_path {
        return Err(ResultCode::field(
            Kind::DummyModeMismatch,
            Field::DummyRequest,
            if dummy_path {
                "must be \"1\" on /test-paynow paths."
            } else {
                "\"1\" (test mode) is accepted only on /test-paynow paths."
            },
        ));
    }
    Ok(MdkRequest {
        merchant,
        params: crate::params::read_json_forms(envelope.params),
        params_text: envelope.params_text,
        dummy,
    })
}
