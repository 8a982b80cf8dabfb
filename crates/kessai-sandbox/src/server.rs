//! Startup as a value: [`Sandbox::bind`] opens the database, binds the port (0 for tests) and
//! returns a handle that knows its address; [`Sandbox::serve`] runs it.

use crate::db::{Db, DbError, IdemRow, Remembered, Storage};
use crate::engine::clock::timestamp;
use crate::engine::{Engine, Fetch, Merchant, MerchantId};
use crate::error::ApiError;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Router;
use kessai_amazonpay::wire::ErrorCode;
use kessai_amazonpay::PublicKey;
use kessai_core::{Clock, IdSource, SeededIds, SystemClock};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, RwLock};
use tokio::net::TcpListener;
use tokio::sync::Mutex;

#[derive(Debug, Clone)]
pub struct SandboxConfig {
    pub listen: SocketAddr,
    pub database: PathBuf,
    /// The URL buyers' browsers use to reach this server; default `http://<bound address>`.
    pub public_url: Option<String>,
    /// HTTPS on the same port as plain HTTP (the first byte of a connection decides).
    pub tls: TlsSetting,
    /// Who may use `/test_helpers`; `None`: [`TestHelpers::default_for`] the listen address.
    pub test_helpers: Option<TestHelpers>,
    /// Connections and timeouts.
    pub limits: kessai_http::Limits,
}

/// Who may use the unsigned `/test_helpers` (register keys, move the clock, sign buyers in,
/// pay for checkout sessions).
#[derive(Clone, PartialEq, Eq)]
pub enum TestHelpers {
    /// Not served (404).
    Off,
    /// Served to requests with `x-test-helpers-token: <token>` (else 401).
    Token(String),
    /// Served to anyone who can reach the port.
    Open,
}

impl std::fmt::Debug for TestHelpers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TestHelpers::Off => "Off",
            TestHelpers::Token(_) => "Token(..)",
            TestHelpers::Open => "Open",
        })
    }
}

impl TestHelpers {
    /// `Open` on a loopback address (only this machine can reach it), else `Off`.
    pub fn default_for(listen: &SocketAddr) -> TestHelpers {
        if listen.ip().is_loopback() {
            TestHelpers::Open
        } else {
            TestHelpers::Off
        }
    }

    /// `off`, `token` or `open`, as the command line and the documentation name it.
    pub fn name(&self) -> &'static str {
        match self {
            TestHelpers::Off => "off",
            TestHelpers::Token(_) => "token",
            TestHelpers::Open => "open",
        }
    }
}

/// Whether and with which certificate the emulator also speaks HTTPS.
#[derive(Debug, Clone)]
pub enum TlsSetting {
    /// Plain HTTP only.
    Off,
    /// A self-signed certificate made at start (written to `<database>.cert.pem` for clients to trust).
    SelfSigned,
    /// A certificate and PKCS#8 key given as PEM files.
    Files { cert: PathBuf, key: PathBuf },
}

#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("server: {0}")]
    Serve(std::io::Error),
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
}

/// A registered public key and the merchant it belongs to.
#[derive(Debug, Clone)]
pub struct KeyEntry {
    pub merchant_id: String,
    pub key: PublicKey,
    pub fingerprint: String,
}

/// Where the emulator's time and randomness come from.
#[derive(Debug, Clone)]
pub struct Sources {
    /// The wall clock; the emulator's own clock is this plus the offset tests advance it by.
    pub clock: Arc<dyn Clock>,
    /// Every id the emulator makes (objects, merchants, keys, notifications, request ids).
    pub ids: Arc<dyn IdSource>,
}

impl Sources {
    /// The system clock, and ids from a generator seeded by the operating system.
    pub fn system() -> Sources {
        Sources {
            clock: Arc::new(SystemClock),
            ids: Arc::new(SeededIds::from_seed(rand::random())),
        }
    }

    /// Ids from `seed`, time from `clock`: the same requests in the same order give the same
    /// objects, ids and timestamps.
    pub fn seeded(seed: u64, clock: Arc<dyn Clock>) -> Sources {
        Sources {
            clock,
            ids: Arc::new(SeededIds::seeded(seed)),
        }
    }
}

pub struct Inner {
    pub db: Db,
    pub clock: Arc<dyn Clock>,
    pub ids: Arc<dyn IdSource>,
    pub signer: Arc<crate::notify::Signer>,
    pub base_url: String,
    /// The engine; its lock serialises every change.
    pub engine: Mutex<Engine>,
    pub merchants: RwLock<HashMap<MerchantId, Merchant>>,
    pub keys: RwLock<HashMap<String, KeyEntry>>,
    pub clock_offset: AtomicI64,
    pub templates: minijinja::Environment<'static>,
    /// Who may use `/test_helpers`.
    pub helpers: TestHelpers,
    /// Key of the merchant tokens (proof that a caller may add keys to a merchant).
    pub merchant_token_key: ring::hmac::Key,
    /// The MWS (Auto Pay) face: its engine and notification signer.
    pub mws: crate::mws::Mws,
    /// Whether v2 requests' signatures are checked: always, except in the null Amazon of
    /// `kessai bench` ([`Sandbox::bind_null_for_benchmark`]).
    pub verify_signatures: bool,
}

pub type AppState = Arc<Inner>;

impl Inner {
    /// The emulator's clock: wall time plus the offset tests have advanced it by.
    pub fn now(&self) -> i64 {
        self.wall() + self.clock_offset.load(Ordering::SeqCst)
    }

    /// The token that lets a caller register more keys for `merchant_id`.
    pub fn merchant_token(&self, merchant_id: &str) -> String {
        hex::encode(ring::hmac::sign(&self.merchant_token_key, merchant_id.as_bytes()).as_ref())
    }

    /// The wall clock (request dates, notification delivery).
    pub fn wall(&self) -> i64 {
        self.clock.unix()
    }

    /// Takes the lock that serialises changes, with an empty working set: a request whose
    /// handler was dropped half-way (its client went away) may have left records or unsaved
    /// changes behind, which are let go here (the file has what was stored).
    pub async fn lock(&self) -> tokio::sync::MutexGuard<'_, Engine> {
        let mut engine = self.engine.lock().await;
        engine.discard_pending();
        engine.evict();
        engine
    }

    /// The merchant registered under `id`.
    pub fn merchant(&self, id: &MerchantId) -> Option<Merchant> {
        self.merchants.read().ok().and_then(|m| m.get(id).cloned())
    }

    /// Writes what changed in the engine and the notifications of what changed on its own, in one
    /// write (`Db::save`). If that fails, the changed records are put back as the file has them, so
    /// the emulator never answers from a state it did not store.
    pub async fn commit(&self, engine: &mut Engine) -> Result<(), ApiError> {
        self.commit_with(engine, None).await
    }

    /// As [`Inner::commit`], storing `answer` (an idempotent reply) in the same write.
    async fn commit_with(
        &self,
        engine: &mut Engine,
        answer: Option<Remembered>,
    ) -> Result<(), ApiError> {
        let changed = engine.take_changed();
        let fired = engine.take_fired();
        let saved = match crate::notify::outgoing(
            &self.db,
            &self.signer,
            &self.base_url,
            engine,
            &fired,
            &*self.ids,
            self.clock.now(),
        )
        .await
        {
            Ok(outbox) => self
                .db
                .save(engine, &changed, answer, outbox)
                .await
                .map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        // The working set is let go either way: the next operation reads the records as the
        // file has them, so nothing is answered from a state that was not stored, and a
        // transition whose change could not be stored is still due in the file and fires again.
        engine.discard_pending();
        engine.evict();
        saved.map_err(ApiError::internal)
    }

    /// Makes every transition that is due at `now`, a batch at a time, each batch written (with
    /// its notifications) before the next.
    async fn settle_due(&self, engine: &mut Engine, now: i64) -> Result<(), ApiError> {
        const BATCH: i64 = 500;
        loop {
            let (records, due) = self
                .db
                .fetch_due(now, BATCH)
                .await
                .map_err(ApiError::internal)?;
            records.put_into(engine).map_err(ApiError::internal)?;
            if due == 0 {
                return Ok(());
            }
            let fired = engine.settle(now);
            self.commit(engine).await?;
            // A due record that did not change would be found again: stop rather than spin.
            if fired.is_empty() {
                return Ok(());
            }
        }
    }

    /// Settles what fell due and commits it (the lock is taken only if something is due).
    pub async fn tick(&self) -> Result<(), ApiError> {
        let now = self.now();
        if !self.db.has_due(now).await.map_err(ApiError::internal)? {
            return Ok(());
        }
        let mut engine = self.lock().await;
        self.settle_due(&mut engine, now).await
    }

    /// Settles due transitions, then runs `op` on the records `fetch` names, and writes what
    /// changed: a change the buyer's pages and helpers make (no idempotent answer).
    pub async fn change<T>(
        &self,
        fetch: &[Fetch],
        op: impl FnOnce(&mut Engine, i64) -> T,
    ) -> Result<T, ApiError> {
        let mut engine = self.lock().await;
        let now = self.now();
        self.settle_due(&mut engine, now).await?;
        if let Err(e) = self.fetch(&mut engine, fetch).await {
            engine.evict();
            return Err(ApiError::internal(e));
        }
        let out = op(&mut engine, now);
        self.commit(&mut engine).await?;
        Ok(out)
    }

    /// Reads the records `fetch` names (one call) into the engine's working set.
    async fn fetch(&self, engine: &mut Engine, fetch: &[Fetch]) -> Result<(), DbError> {
        if fetch.is_empty() {
            return Ok(());
        }
        self.db.fetch(fetch).await?.put_into(engine)?;
        Ok(())
    }

    pub fn key(&self, public_key_id: &str) -> Option<KeyEntry> {
        self.keys
            .read()
            .ok()
            .and_then(|k| k.get(public_key_id).cloned())
    }

    /// Runs one change to the engine under the lock: settle due transitions, apply `op`, write
    /// every changed record, then answer. With an idempotency key, a replay returns the stored
    /// answer and a reuse with another request is refused.
    pub async fn mutate<F>(&self, idem: Option<Idempotency<'_>>, fetch: &[Fetch], op: F) -> Response
    where
        F: FnOnce(&mut Engine, i64) -> Result<(StatusCode, serde_json::Value), ApiError>,
    {
        let mut engine = self.lock().await;
        if let Some(idem) = &idem {
            match self.db.idempotent(idem.merchant_id, idem.key).await {
                Ok(Some(row)) if row.fingerprint == idem.fingerprint => {
                    return json_response(
                        StatusCode::from_u16(row.status).unwrap_or(StatusCode::OK),
                        row.body,
                    );
                }
                Ok(Some(_)) => {
                    return ApiError::bad_request(
                        ErrorCode::DuplicateIdempotencyKey,
                        format!(
                            "The idempotency key {} was already used with a different request.",
                            idem.key
                        ),
                    )
                    .into_response()
                }
                Ok(None) => {}
                Err(e) => return ApiError::internal(e).into_response(),
            }
        }
        let now = self.now();
        if let Err(e) = self.settle_due(&mut engine, now).await {
            return e.into_response();
        }
        if let Err(e) = self.fetch(&mut engine, fetch).await {
            engine.evict();
            return ApiError::internal(e).into_response();
        }
        let result = op(&mut engine, now);
        let answer = match (&result, &idem) {
            (Ok((status, value)), Some(idem)) => Some(Remembered {
                merchant_id: idem.merchant_id.to_owned(),
                key: idem.key.to_owned(),
                row: IdemRow {
                    fingerprint: idem.fingerprint.clone(),
                    status: status.as_u16(),
                    body: value.to_string(),
                },
                created_at: timestamp(now),
            }),
            _ => None,
        };
        if let Err(e) = self.commit_with(&mut engine, answer).await {
            // An emulator that cannot write its own file has no good answer: report (nothing
            // was changed) and carry on.
            return e.into_response();
        }
        match result {
            Ok((status, value)) => json_response(status, value.to_string()),
            Err(e) => e.into_response(),
        }
    }

    /// Reads the record `fetch` names as last committed, without waiting for the lock that
    /// serialises changes; only when a transition is due does it settle first (under the lock),
    /// so a read never shows a state Amazon would already have left.
    pub async fn read<F>(&self, fetch: Fetch, op: F) -> Response
    where
        F: FnOnce(&Engine) -> Result<serde_json::Value, ApiError>,
    {
        match self.snapshot(&fetch).await {
            Ok(snapshot) => match op(&snapshot) {
                Ok(value) => json_response(StatusCode::OK, value.to_string()),
                Err(e) => e.into_response(),
            },
            Err(e) => e.into_response(),
        }
    }

    /// The record `fetch` names, in an engine of its own, after due transitions are settled.
    pub async fn snapshot(&self, fetch: &Fetch) -> Result<Engine, ApiError> {
        self.tick().await?;
        let mut snapshot = Engine::new(self.ids.clone());
        self.db
            .fetch_one(fetch)
            .await
            .map_err(ApiError::internal)?
            .put_into(&mut snapshot)
            .map_err(ApiError::internal)?;
        Ok(snapshot)
    }
}

/// The idempotency context of one POST.
pub struct Idempotency<'a> {
    pub merchant_id: &'a str,
    pub key: &'a str,
    /// Method, path and body hash: the same key with another fingerprint is a conflict.
    pub fingerprint: String,
}

pub fn json_response(status: StatusCode, body: String) -> Response {
    (
        status,
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response()
}

/// How the emulator plays Amazon Pay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fidelity {
    /// As Amazon does: every signature checked, every change in its SQLite file.
    Amazon,
    /// No signature checked, records in memory ([`Sandbox::bind_null_for_benchmark`]).
    NullForBenchmark,
}

/// A bound, not yet running emulator.
pub struct Sandbox {
    limits: kessai_http::Limits,
    listener: TcpListener,
    router: Router,
    addr: SocketAddr,
    base_url: String,
    tls: Option<Arc<rustls::ServerConfig>>,
    cert_path: Option<PathBuf>,
    state: AppState,
}

impl Sandbox {
    /// Binds with the system clock and operating-system randomness.
    pub async fn bind(config: SandboxConfig) -> Result<Sandbox, SandboxError> {
        Sandbox::bind_with(config, Sources::system()).await
    }

    /// Binds with the given clock and id source (a fixed seed makes a run repeatable).
    pub async fn bind_with(
        config: SandboxConfig,
        sources: Sources,
    ) -> Result<Sandbox, SandboxError> {
        Sandbox::bind_as(config, sources, Fidelity::Amazon).await
    }

    /// A null Amazon, for `kessai bench --null-amazon` only: the same server, rules and answers,
    /// but it checks no request signature (it still reads the `authorization` header to know the
    /// merchant) and keeps its records in this process's memory (no file, no fsync; the
    /// `database` of `config` is not used), so what a benchmark measures is the gateway's own
    /// cost. Nothing else starts it: never use it where a signature matters.
    pub async fn bind_null_for_benchmark(
        config: SandboxConfig,
        sources: Sources,
    ) -> Result<Sandbox, SandboxError> {
        Sandbox::bind_as(config, sources, Fidelity::NullForBenchmark).await
    }

    async fn bind_as(
        config: SandboxConfig,
        sources: Sources,
        fidelity: Fidelity,
    ) -> Result<Sandbox, SandboxError> {
        let listener =
            TcpListener::bind(config.listen)
                .await
                .map_err(|source| SandboxError::Bind {
                    addr: config.listen,
                    source,
                })?;
        let addr = listener.local_addr().map_err(SandboxError::Serve)?;
        let base_url = config
            .public_url
            .clone()
            .unwrap_or_else(|| format!("http://{addr}"))
            .trim_end_matches('/')
            .to_owned();
        let storage = match fidelity {
            Fidelity::Amazon => Storage::File(config.database.clone()),
            Fidelity::NullForBenchmark => {
                Storage::Memory(format!("kessai-null-amazon-{}", sources.ids.hex(8)))
            }
        };
        let db = Db::open(&storage).await?;
        // Records are read when an operation needs them: nothing of them is loaded here.
        let engine = Engine::new(sources.ids.clone());
        let merchants = db
            .merchants()
            .await?
            .into_iter()
            .map(|m| (m.id().clone(), m))
            .collect();
        let mut keys = HashMap::new();
        for row in db.keys().await? {
            if let Ok(key) = PublicKey::from_pem(&row.pem) {
                keys.insert(
                    row.public_key_id,
                    KeyEntry {
                        merchant_id: row.merchant_id,
                        key,
                        fingerprint: row.fingerprint,
                    },
                );
            }
        }
        let offset = db
            .setting("clock_offset")
            .await?
            .and_then(|v| v.parse::<i64>().ok())
            .unwrap_or(0);
        let signer = Arc::new(
            crate::notify::Signer::load_or_create(&db)
                .await
                .map_err(|e| SandboxError::Serve(std::io::Error::other(e)))?,
        );
        let token_key = match db.setting("merchant_token_key").await? {
            Some(k) => k,
            None => {
                let k = sources.ids.hex(32);
                db.set_setting("merchant_token_key", &k).await?;
                k
            }
        };
        let helpers = config
            .test_helpers
            .clone()
            .unwrap_or_else(|| TestHelpers::default_for(&addr));
        let mws = crate::mws::Mws::open(&db, sources.ids.clone(), &base_url)
            .await
            .map_err(|e| SandboxError::Serve(std::io::Error::other(e)))?;
        let state = Arc::new(Inner {
            mws,
            verify_signatures: fidelity == Fidelity::Amazon,
            helpers,
            merchant_token_key: ring::hmac::Key::new(ring::hmac::HMAC_SHA256, token_key.as_bytes()),
            clock: sources.clock,
            ids: sources.ids,
            signer,
            base_url: base_url.clone(),
            db,
            engine: Mutex::new(engine),
            merchants: RwLock::new(merchants),
            keys: RwLock::new(keys),
            clock_offset: AtomicI64::new(offset),
            templates: crate::pages::templates(),
        });
        let routes = crate::v2::router(state.clone())
            .merge(crate::pages::router())
            .merge(crate::checkout_js::router())
            .merge(crate::helpers::router(state.clone()))
            .merge(crate::mws::router(state.clone()))
            .route("/health", axum::routing::get(|| async { "ok" }))
            .method_not_allowed_fallback(crate::pages::wrong_method)
            .fallback(crate::pages::not_found)
            .with_state(state.clone());
        // Wrapped around the routes (not layered inside them) so it runs before routing.
        let router = Router::new().fallback_service(tower::Layer::layer(
            &axum::middleware::from_fn(crate::v2::trim_trailing_slash),
            routes,
        ));
        // `CONNECT pay-api.amazon.jp:443` (an SDK's proxy setting) leads back to this port.
        let router = kessai_http::tunnel::to_self(router, addr);
        let (tls, cert_path) = match &config.tls {
            TlsSetting::Off => (None, None),
            TlsSetting::SelfSigned => {
                let pair = crate::tls::self_signed(&kessai_http::tls::amazon_api_hosts())?;
                let path = config.database.with_extension("cert.pem");
                std::fs::write(&path, &pair.cert_pem).map_err(SandboxError::Serve)?;
                (Some(crate::tls::server_config(&pair)?), Some(path))
            }
            TlsSetting::Files { cert, key } => {
                let pair = crate::tls::read_pair(cert, key)?;
                (Some(crate::tls::server_config(&pair)?), Some(cert.clone()))
            }
        };
        Ok(Sandbox {
            limits: config.limits,
            listener,
            router,
            addr,
            base_url,
            tls,
            cert_path,
            state,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The certificate served over HTTPS, if any.
    pub fn cert_path(&self) -> Option<&std::path::Path> {
        self.cert_path.as_deref()
    }

    /// Who may use `/test_helpers`.
    pub fn test_helpers(&self) -> &TestHelpers {
        &self.state.helpers
    }

    /// Serves requests, makes Amazon's own transitions as the clock passes them (checked every
    /// second), and delivers notifications.
    pub async fn serve(self) -> Result<(), SandboxError> {
        let ticker_state = self.state.clone();
        let ticker = tokio::spawn(async move {
            let mut every = tokio::time::interval(std::time::Duration::from_secs(1));
            loop {
                every.tick().await;
                if let Err(e) = ticker_state.tick().await {
                    tracing::error!(?e, "tick failed");
                }
            }
        });
        let delivery = tokio::spawn(crate::notify::deliver_forever(
            self.state.db.clone(),
            self.state.clock.clone(),
        ));
        let mws_delivery = tokio::spawn(crate::mws::ipn::deliver_forever(self.state.clone()));
        let served = crate::tls::serve(self.listener, self.router, self.tls, self.limits).await;
        ticker.abort();
        delivery.abort();
        mws_delivery.abort();
        served.map_err(SandboxError::Serve)
    }
}

#[cfg(test)]
mod tests;
