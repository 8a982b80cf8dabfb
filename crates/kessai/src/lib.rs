//! Wiring of the `kessai` binary: the data directory (owner-only, locked by one process), the
//! demo merchant, the Amazon Pay key and its registration with an emulator, and starting the
//! gateway next to the emulator.
//!
//! Integration tests start the same wiring on port 0 with fresh files.

pub mod amazon_pay_setup;

use amazon_pay_setup::{FileRead, Input, Setup, Target};
use anyhow::{anyhow, Context};
use kessai_amazonpay::{AmazonPay, AmazonPayClient, ClientConfig, Environment, PrivateKey};
use kessai_core::clock::{Clock, SystemClock};
use kessai_core::ids::{IdSource, SeededIds};
use kessai_core::{MerchantCcid, Secret};
use kessai_gateway::{Gateway, GatewayConfig};
use kessai_sandbox::{Limits, Sandbox, SandboxConfig, TestHelpers};
use kessai_store::{MerchantRecord, PgStore, SqliteStore, Store};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// What `kessai serve` needs to start.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub listen: SocketAddr,
    pub public_url: Option<String>,
    pub data_dir: PathBuf,
    /// The gateway's database: `postgres://…` (several gateways may share it), or `None` for
    /// `gateway.sqlite` in the data directory.
    pub database_url: Option<String>,
    /// Where the built-in emulator listens. Not started when `amazon_pay_endpoint` is set without
    /// credentials (another emulator); started for test orders when it is set with them.
    pub sandbox_listen: SocketAddr,
    /// Talk to this Amazon Pay (or emulator) instead of starting the built-in emulator.
    pub amazon_pay_endpoint: Option<url::Url>,
    pub amazon_pay_public_key_id: Option<String>,
    pub amazon_pay_store_id: Option<String>,
    pub amazon_pay_private_key: Option<PathBuf>,
    pub amazon_pay_region: String,
    /// The merchant id (Seller Central), for Amazon's `checkout.js`; required with Amazon's hosts.
    pub amazon_pay_merchant_id: Option<String>,
    /// The credentials are for Amazon's sandbox (a `SANDBOX-` key, or a legacy key's `/sandbox/`
    /// path); a `LIVE-` key refuses it, a `SANDBOX-` key requires it.
    pub amazon_pay_sandbox: bool,
    /// The public key file registered at Amazon, checked against `amazon_pay_private_key`.
    pub amazon_pay_public_key: Option<PathBuf>,
    /// PEM certificates trusted beside the built-in roots for `amazon_pay_endpoint` (an
    /// emulator's self-signed certificate).
    pub amazon_pay_ca_file: Option<PathBuf>,
    /// The URL buyers' browsers reach the built-in emulator at (default `http://<sandbox_listen>`);
    /// the gateway calls the emulator there too.
    pub sandbox_public_url: Option<String>,
    pub demo_ccid: Option<String>,
    pub demo_secret: Option<String>,
    pub demo_shop: bool,
    /// Let pushes of live orders reach private and loopback addresses (local development only).
    pub allow_private_push_targets: bool,
    /// How long the push worker holds records it sends (after a crash they are sent again when it
    /// runs out).
    pub push_lease: Duration,
    /// HTTPS on the gateway's port, beside plain HTTP.
    pub gateway_tls: GatewayTls,
    /// Who may use the built-in emulator's `/test_helpers`. `None`: open on a loopback address,
    /// else behind a token this process makes and uses itself. With `amazon_pay_endpoint`, a
    /// `Token` is the external emulator's token, used to register the key there.
    pub test_helpers: Option<TestHelpers>,
    /// Connections and timeouts of the gateway and the built-in emulator.
    pub limits: Limits,
}

/// Where the gateway's HTTPS certificate comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GatewayTls {
    /// Plain HTTP only.
    Off,
    /// A local certificate authority made at first start in the data directory
    /// (`gateway-ca.pem`, for the merchant's `CA_CERT_FILE`) and a certificate it signed for
    /// `localhost`, `127.0.0.1` and `::1`.
    LocalCa,
    /// These PEM files (certificate chain, PKCS#8 key).
    Files { cert: PathBuf, key: PathBuf },
}

/// The gateway's TLS configuration, and the CA certificate file to print (for `LocalCa`).
fn gateway_tls(
    setting: &GatewayTls,
    data_dir: &Path,
) -> anyhow::Result<(Option<kessai_http::tls::TlsConfig>, Option<PathBuf>)> {
    use kessai_http::tls;
    match setting {
        GatewayTls::Off => Ok((None, None)),
        GatewayTls::Files { cert, key } => {
            let pair = tls::read_pair(cert, key)?;
            Ok((Some(tls::server_config(&pair)?), None))
        }
        GatewayTls::LocalCa => {
            let ca_path = data_dir.join("gateway-ca.pem");
            let cert_path = data_dir.join("gateway-cert.pem");
            let key_path = data_dir.join("gateway-key.pem");
            let pair = if ca_path.exists() && cert_path.exists() && key_path.exists() {
                tls::read_pair(&cert_path, &key_path)?
            } else {
                // Each file is written whole under a temporary name and renamed; the CA file,
                // renamed last, marks a complete set. A start interrupted half way makes a new set.
                let ca = tls::local_ca(&[])?;
                let write = |path: &Path, contents: &str, private: bool| -> anyhow::Result<()> {
                    let tmp = path.with_extension("pem.tmp");
                    let _ = std::fs::remove_file(&tmp);
                    if private {
                        write_private(&tmp, contents.as_bytes())
                    } else {
                        std::fs::write(&tmp, contents)
                    }
                    .and_then(|()| std::fs::rename(&tmp, path))
                    .with_context(|| format!("cannot write {}", path.display()))
                };
                write(&key_path, &ca.server.key_pem, true)?;
                write(&cert_path, &ca.server.cert_pem, false)?;
                write(&ca_path, &ca.ca_cert_pem, false)?;
                ca.server
            };
            warn_if_open(&key_path);
            Ok((Some(tls::server_config(&pair)?), Some(ca_path)))
        }
    }
}

/// A wrapper around a part the gateway uses (a recording proxy, a fault injector in tests).
pub type Wrap<T> = Arc<dyn Fn(Arc<T>) -> Arc<T> + Send + Sync>;

/// Optional wrappers around the gateway's Amazon Pay client and store, and the gateway's clock
/// and id source (default: the system clock, ids seeded from the operating system).
#[derive(Clone, Default)]
pub struct Hooks {
    pub amazon: Option<Wrap<dyn AmazonPay>>,
    pub store: Option<Wrap<dyn Store>>,
    pub clock: Option<Arc<dyn Clock>>,
    pub ids: Option<Arc<dyn IdSource>>,
    /// Push settings (default: from the options, one-second worker tick).
    pub push: Option<kessai_gateway::PushSettings>,
    /// Recovery worker settings (default: every 30 s).
    pub recovery: Option<kessai_gateway::RecoverySettings>,
    /// Which Amazon Pay notifications are believed (default: Amazon's SNS, or the emulator the
    /// keys were registered with).
    pub ipn: Option<kessai_gateway::IpnSettings>,
}

/// The crash-test hook of the environment (`KESSAI_TEST_ABORT_AT`), off when unset.
fn abort_at() -> anyhow::Result<kessai_gateway::crash::AbortAt> {
    match std::env::var(kessai_gateway::crash::ENV) {
        Ok(v) if !v.is_empty() => kessai_gateway::crash::AbortAt::parse(&v).ok_or_else(|| {
            anyhow!(
                "{} = {v:?} names no crash point",
                kessai_gateway::crash::ENV
            )
        }),
        _ => Ok(kessai_gateway::crash::AbortAt::default()),
    }
}

/// The system's clock and an id source seeded from the operating system.
pub fn system_sources() -> (Arc<dyn Clock>, Arc<dyn IdSource>) {
    (
        Arc::new(SystemClock),
        Arc::new(SeededIds::from_seed(rand::random())),
    )
}

/// Everything that was started, ready to serve.
pub struct Started {
    pub gateway: Gateway,
    /// The built-in emulator, already serving on its own port.
    pub sandbox: Option<tokio::task::JoinHandle<Result<(), kessai_sandbox::SandboxError>>>,
    pub amazon_pay_endpoint: url::Url,
    /// The built-in emulator that test orders go to when `amazon_pay_endpoint` is another Amazon
    /// Pay with its own credentials; `None`: test orders go to `amazon_pay_endpoint` too.
    pub test_amazon_pay_endpoint: Option<url::Url>,
    pub demo: MerchantRecord,
    /// Whether Kessai made the demo merchant's secret (else it was given by flag or environment).
    pub demo_secret_generated: bool,
    pub store: Arc<dyn Store>,
    /// The data directory's locks, held while this value (or its `serve`) lives.
    pub locks: Vec<DataDirLock>,
    /// The CA certificate MDK clients verify the gateway's HTTPS with (with `GatewayTls::LocalCa`).
    pub gateway_ca: Option<PathBuf>,
    /// What the start-up check found configured for live orders (ids, environment, the key's
    /// fingerprint; never the key), one line each.
    pub amazon_pay_summary: String,
}

impl Started {
    /// Runs the gateway (and the emulator) until one of them stops.
    pub async fn serve(self) -> anyhow::Result<()> {
        let _locks = self.locks;
        match self.sandbox {
            Some(sandbox) => {
                tokio::select! {
                    r = self.gateway.serve() => r?,
                    r = sandbox => r??,
                }
            }
            None => self.gateway.serve().await?,
        }
        Ok(())
    }
}

/// A lock on one part of a data directory (`<name>.lock`): a second process that wants the
/// same part is refused, with the holder's pid in the message. Released when dropped (or when the
/// process ends).
#[derive(Debug)]
pub struct DataDirLock {
    _file: std::fs::File,
}

/// Locks `<dir>/<name>.lock` for `holder` (e.g. `kessai serve`), or says who holds it.
pub fn lock_data_dir(dir: &Path, name: &str, holder: &str) -> anyhow::Result<DataDirLock> {
    use std::io::Write as _;
    let path = dir.join(format!("{name}.lock"));
    let mut options = std::fs::OpenOptions::new();
    options.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(&path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    match file.try_lock() {
        Ok(()) => {
            file.set_len(0)?;
            writeln!(file, "{holder}, pid {}", std::process::id())?;
            Ok(DataDirLock { _file: file })
        }
        Err(std::fs::TryLockError::WouldBlock) => {
            let other = std::fs::read_to_string(&path).unwrap_or_default();
            let other = other.trim();
            Err(anyhow!(
                "the data directory {} is in use by {}; stop it, or give this process another --data-dir",
                dir.display(),
                if other.is_empty() { "another process" } else { other }
            ))
        }
        Err(std::fs::TryLockError::Error(e)) => {
            Err(e).with_context(|| format!("cannot lock {}", path.display()))
        }
    }
}

/// Creates the data directory readable only by its owner (0700), and warns when an existing one
/// is open to others: it holds secret keys.
pub fn prepare_data_dir(dir: &Path) -> anyhow::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder
        .create(dir)
        .with_context(|| format!("cannot create {}", dir.display()))?;
    warn_if_open(dir);
    Ok(())
}

/// Creates `path` empty and owner-only (0600) if missing, so that the database written there
/// (and its `-wal`/`-shm` files, which SQLite creates with the same mode) is not world-readable;
/// warns when an existing file is open to others.
pub fn private_file(path: &Path) -> anyhow::Result<()> {
    match write_private(path, b"") {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            warn_if_open(path);
            Ok(())
        }
        Err(e) => Err(e).with_context(|| format!("cannot create {}", path.display())),
    }
}

/// Warns (once per start) when `path` can be read or written by others than its owner.
fn warn_if_open(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = std::fs::metadata(path) {
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                let want = if meta.is_dir() { "700" } else { "600" };
                tracing::warn!(
                    path = %path.display(),
                    mode = format!("{mode:o}"),
                    "readable by others than its owner; it holds secrets: chmod {want} it"
                );
            }
        }
    }
}

/// Random hex from the operating system's randomness (names of test directories and the like).
pub fn random_hex(bytes: usize) -> String {
    SeededIds::from_seed(rand::random()).hex(bytes)
}

/// A new merchant: a ccid shaped like VeriTrans' (`A1000000000000…`, 24 characters) and a
/// 32-character hex secret key.
pub fn new_merchant(
    name: &str,
    clock: &dyn Clock,
    ids: &dyn IdSource,
) -> anyhow::Result<MerchantRecord> {
    let suffix = ids.hex(5);
    Ok(MerchantRecord {
        ccid: MerchantCcid::parse(&format!("A10000000000000{}", &suffix[..9]))?,
        secret_hex: Secret::new(ids.hex(16)),
        name: name.to_owned(),
        consent_auth_default: true,
        created_at: kessai_store::time_text(clock.now()),
    })
}

/// The demo merchant, and whether Kessai made its secret (at this or an earlier start).
async fn demo_merchant(
    store: &dyn Store,
    options: &ServeOptions,
    clock: &dyn Clock,
    ids: &dyn IdSource,
) -> anyhow::Result<(MerchantRecord, bool)> {
    if let (Some(ccid), Some(secret)) = (&options.demo_ccid, &options.demo_secret) {
        if secret.is_empty() || !secret.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(anyhow!("KESSAI_DEMO_SECRET must be a hex string"));
        }
        let ccid = MerchantCcid::parse(ccid).context("KESSAI_DEMO_CCID")?;
        return match store.merchant(&ccid).await? {
            Some(m) if m.secret_hex.expose() == secret => Ok((m, false)),
            Some(_) => Err(anyhow!(
                "merchant {ccid} exists in the gateway's database with another secret key"
            )),
            None => {
                let m = MerchantRecord {
                    ccid,
                    secret_hex: Secret::new(secret.clone()),
                    name: "Demo merchant".into(),
                    consent_auth_default: true,
                    created_at: kessai_store::time_text(clock.now()),
                };
                store.insert_merchant(&m).await?;
                Ok((m, false))
            }
        };
    }
    if let Some(ccid) = store.setting("demo_merchant").await? {
        if let Some(m) = store.merchant(&MerchantCcid::parse(&ccid)?).await? {
            return Ok((m, true));
        }
    }
    // Several instances starting at once on one database agree on one demo merchant: the first
    // to claim the setting makes it, the others wait for its row.
    let fresh = new_merchant("Demo merchant", clock, ids)?;
    let claimed = MerchantCcid::parse(
        &store
            .claim_setting("demo_merchant", fresh.ccid.as_str())
            .await?,
    )?;
    if claimed == fresh.ccid {
        store.insert_merchant(&fresh).await?;
        return Ok((fresh, true));
    }
    for _ in 0..50 {
        if let Some(m) = store.merchant(&claimed).await? {
            return Ok((m, true));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The instance that claimed it stopped before making it: make it under the claimed id.
    let m = MerchantRecord {
        ccid: claimed.clone(),
        ..fresh
    };
    if let Err(e) = store.insert_merchant(&m).await {
        return match store.merchant(&claimed).await? {
            Some(m) => Ok((m, true)),
            None => Err(e.into()),
        };
    }
    Ok((m, true))
}

/// The key the gateway signs its Amazon Pay requests with: the file of
/// `--amazon-pay-private-key` if given; on a shared database (`--database-url`) the one stored
/// there, so that every instance signs as the same merchant; else the data directory's file.
async fn amazon_pay_key(options: &ServeOptions, store: &dyn Store) -> anyhow::Result<PrivateKey> {
    const SETTING: &str = "amazon_pay_private_key";
    if let Some(path) = &options.amazon_pay_private_key {
        return load_or_create_key(path);
    }
    let file = options.data_dir.join("amazon-pay-private-key.pem");
    if options.database_url.is_none() {
        return load_or_create_key(&file);
    }
    let pem = match store.setting(SETTING).await? {
        Some(pem) => pem,
        None => {
            // The data directory's key becomes the shared one (a move from SQLite), else a new
            // one; if another instance stored a key first, that one wins.
            let candidate = if file.exists() {
                load_or_create_key(&file)?
            } else {
                PrivateKey::generate()?
            };
            store.claim_setting(SETTING, candidate.to_pem()).await?
        }
    };
    PrivateKey::from_pem(&pem)
        .context("the Amazon Pay private key stored in the database is not an RSA private key")
}

/// Writes `contents` to a new file that only its owner can read or write (0600 on Unix).
fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)?.write_all(contents)
}

/// The emulator's helper token kept in `path`, made (and written 0600) if missing.
pub fn helpers_token_file(path: &Path) -> anyhow::Result<String> {
    if path.exists() {
        let token = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?
            .trim()
            .to_owned();
        if token.is_empty() {
            return Err(anyhow!("{} is empty", path.display()));
        }
        return Ok(token);
    }
    let token = random_hex(32);
    write_private(path, token.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(token)
}

pub fn load_or_create_key(path: &Path) -> anyhow::Result<PrivateKey> {
    if path.exists() {
        warn_if_open(path);
        let pem = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        return PrivateKey::from_pem(&pem)
            .with_context(|| format!("{} is not an RSA private key", path.display()));
    }
    let key = PrivateKey::generate()?;
    write_private(path, key.to_pem().as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(key)
}

/// Registers the public key with an emulator's test helper; returns (publicKeyId, storeId).
pub async fn register_key(
    endpoint: &url::Url,
    key: &PrivateKey,
) -> anyhow::Result<(String, String)> {
    register_key_with(endpoint, key, None).await
}

/// As [`register_key`], with the emulator's helper token (`--test-helpers=token`). The request
/// is signed with the key itself, as an API call is: an emulator gives a known key's id only to
/// whoever proves they hold it.
pub async fn register_key_with(
    endpoint: &url::Url,
    key: &PrivateKey,
    helpers_token: Option<&str>,
) -> anyhow::Result<(String, String)> {
    let r = registration(endpoint, key, helpers_token).await?;
    Ok((r.public_key_id, r.store_id))
}

/// What an emulator answered to a key registration.
pub struct Registration {
    pub public_key_id: String,
    pub store_id: String,
    pub merchant_id: Option<String>,
}

/// Registers the key with an emulator's test helper (as [`register_key_with`]).
pub async fn registration(
    endpoint: &url::Url,
    key: &PrivateKey,
    helpers_token: Option<&str>,
) -> anyhow::Result<Registration> {
    registration_trusting(endpoint, key, helpers_token, None).await
}

/// An HTTP client that trusts the certificates of `ca_pem` beside the built-in roots.
pub fn http_client(ca_pem: Option<&str>) -> anyhow::Result<reqwest::Client> {
    let mut builder = reqwest::Client::builder().timeout(Duration::from_secs(30));
    if let Some(pem) = ca_pem {
        for cert in reqwest::Certificate::from_pem_bundle(pem.as_bytes())
            .context("--amazon-pay-ca-file: not a PEM certificate")?
        {
            builder = builder.add_root_certificate(cert);
        }
    }
    Ok(builder.build()?)
}

/// Why `url` could not be reached, naming `--amazon-pay-ca-file` when its certificate is not
/// trusted.
fn unreachable(url: &url::Url, e: &reqwest::Error) -> anyhow::Error {
    use std::error::Error as _;
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    if url.scheme() == "https" && text.to_ascii_lowercase().contains("certificate") {
        anyhow!(
            "cannot reach {url}: its TLS certificate is not trusted ({text}). For an emulator with \
             a certificate of its own, give that certificate with --amazon-pay-ca-file \
             (`kessai sandbox` writes it next to its database: sandbox.cert.pem)"
        )
    } else {
        anyhow!("cannot reach {url}: {text}")
    }
}

/// As [`registration`], trusting the certificates of `ca_pem` too (`--amazon-pay-ca-file`).
pub async fn registration_trusting(
    endpoint: &url::Url,
    key: &PrivateKey,
    helpers_token: Option<&str>,
    ca_pem: Option<&str>,
) -> anyhow::Result<Registration> {
    use kessai_amazonpay::signing;
    let pem = key.public_key().to_pem()?;
    let url = endpoint.join("/test_helpers/publicKeys")?;
    let body = serde_json::to_vec(&serde_json::json!({ "publicKey": pem }))?;
    let host = url.host_str().ok_or_else(|| anyhow!("{url} has no host"))?;
    let host = match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    };
    let date = time::OffsetDateTime::now_utc().format(time::macros::format_description!(
        "[year][month][day]T[hour][minute][second]Z"
    ))?;
    let headers: Vec<(String, String)> = vec![
        ("content-type".into(), "application/json".into()),
        ("x-amz-pay-date".into(), date),
        ("x-amz-pay-host".into(), host),
    ];
    let names: Vec<String> = headers.iter().map(|(n, _)| n.clone()).collect();
    let canonical = signing::canonical_request("POST", url.path(), "", &headers, &names, &body)
        .map_err(|e| anyhow!("cannot sign the key registration: {e}"))?;
    let signature = signing::sign(
        key,
        &signing::string_to_sign(signing::Algorithm::V2, &canonical),
    )?;
    let mut request = http_client(ca_pem)?.post(url.clone()).header(
        "authorization",
        signing::authorization_header("REGISTRATION", &names, &signature),
    );
    for (name, value) in &headers {
        request = request.header(name.as_str(), value.as_str());
    }
    if let Some(token) = helpers_token {
        request = request.header(kessai_sandbox::TEST_HELPERS_TOKEN_HEADER, token);
    }
    let answer: serde_json::Value = request
        .body(body)
        .send()
        .await
        .map_err(|e| unreachable(&url, &e))
        .context("cannot register the key with the Amazon Pay emulator")?
        .error_for_status()
        .with_context(|| format!("{url} refused the key (is it a Kessai emulator?)"))?
        .json()
        .await?;
    let id = answer["publicKeyId"]
        .as_str()
        .ok_or_else(|| anyhow!("no publicKeyId in {answer}"))?;
    let store_id = answer["storeId"]
        .as_str()
        .ok_or_else(|| anyhow!("no storeId in {answer}"))?;
    Ok(Registration {
        public_key_id: id.to_owned(),
        store_id: store_id.to_owned(),
        merchant_id: answer["merchantId"].as_str().map(str::to_owned),
    })
}

/// Asks an emulator to send the merchant's IPNs to `url` (`ca_pem`: as [`registration_trusting`]).
pub async fn set_notification_url(
    endpoint: &url::Url,
    helpers_token: Option<&str>,
    merchant_id: &str,
    url: &str,
    ca_pem: Option<&str>,
) -> anyhow::Result<()> {
    let target = endpoint.join("/test_helpers/notificationUrl")?;
    let mut request = http_client(ca_pem)?
        .post(target.clone())
        .json(&serde_json::json!({ "merchantId": merchant_id, "url": url }));
    if let Some(token) = helpers_token {
        request = request.header(kessai_sandbox::TEST_HELPERS_TOKEN_HEADER, token);
    }
    request
        .send()
        .await
        .with_context(|| format!("cannot reach {target}"))?
        .error_for_status()
        .with_context(|| format!("{target} refused the notification URL"))?;
    Ok(())
}

/// Opens the data directory, starts the emulator (unless an endpoint is given), connects the
/// gateway to Amazon Pay and binds it.
pub async fn start(options: ServeOptions) -> anyhow::Result<Started> {
    start_with(options, Hooks::default()).await
}

/// Which notifications are believed: Amazon's (the defaults) and each registered emulator's
/// (its certificate origin). Only the emulator's topic when the emulator is all there is; any SNS
/// topic when live orders go to Amazon too (`live`).
fn ipn_settings(emulators: &[(url::Url, String)], live: bool) -> kessai_gateway::IpnSettings {
    if emulators.is_empty() {
        return kessai_gateway::IpnSettings::default();
    }
    kessai_gateway::IpnSettings {
        extra_cert_origins: emulators
            .iter()
            .map(|(u, _)| u.origin().ascii_serialization())
            .collect(),
        topic_arns: if live {
            Vec::new()
        } else {
            vec![kessai_sandbox::notify::TOPIC_ARN.to_owned()]
        },
    }
}

/// The gateway's store: PostgreSQL at `database_url` (`postgres://…`), else `gateway.sqlite` in
/// `data_dir` (created if missing).
pub async fn open_gateway_store(
    database_url: Option<&str>,
    data_dir: &Path,
) -> anyhow::Result<Arc<dyn Store>> {
    match database_url {
        Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
            let store = PgStore::open(url)
                .await
                .context("opening the database of --database-url")?;
            Ok(Arc::new(store))
        }
        Some(_) => Err(anyhow!(
            "--database-url must be a postgres:// URL (leave it out for SQLite in the data directory)"
        )),
        None => {
            let gateway_db = data_dir.join("gateway.sqlite");
            private_file(&gateway_db)?;
            Ok(Arc::new(SqliteStore::open(&gateway_db).await?))
        }
    }
}

/// As [`start`], with the gateway's Amazon Pay client and store passed through `hooks`.
pub async fn start_with(options: ServeOptions, hooks: Hooks) -> anyhow::Result<Started> {
    // Before anything is made: a set that does not hold together changes nothing.
    let setup = check_setup(&options)?;
    let ca_pem = setup.ca_pem.as_deref();
    prepare_data_dir(&options.data_dir)?;
    // One process per data directory: a second one would drift apart from the first.
    let mut locks = vec![lock_data_dir(&options.data_dir, "gateway", "kessai serve")?];
    // With real credentials for another Amazon Pay (live or Amazon's sandbox), test orders
    // (`/test-paynow`) still go to a built-in emulator: they never reach the other one.
    let explicit_keys = matches!(setup.target, Target::Credentials { .. });
    let builtin = !matches!(setup.target, Target::Emulator { .. });
    if builtin {
        locks.push(lock_data_dir(&options.data_dir, "sandbox", "kessai serve")?);
        private_file(&options.data_dir.join("sandbox.sqlite"))?;
    }
    let store = open_gateway_store(options.database_url.as_deref(), &options.data_dir).await?;
    let (system_clock, system_ids) = system_sources();
    let clock = hooks.clock.clone().unwrap_or(system_clock);
    let ids = hooks.ids.clone().unwrap_or(system_ids);
    let (demo, demo_secret_generated) =
        demo_merchant(store.as_ref(), &options, clock.as_ref(), ids.as_ref()).await?;

    let mut helpers_token = match &options.test_helpers {
        Some(TestHelpers::Token(token)) => Some(token.clone()),
        _ => None,
    };
    let mut sandbox = None;
    let mut builtin_url = None;
    if builtin {
        let helpers = options.test_helpers.clone().unwrap_or_else(|| {
            if options.sandbox_listen.ip().is_loopback() {
                TestHelpers::Open
            } else {
                // Reachable from elsewhere: only this process registers keys.
                TestHelpers::Token(ids.hex(32))
            }
        });
        let bound = Sandbox::bind(SandboxConfig {
            listen: options.sandbox_listen,
            database: options.data_dir.join("sandbox.sqlite"),
            public_url: options.sandbox_public_url.clone(),
            tls: kessai_sandbox::TlsSetting::SelfSigned,
            test_helpers: Some(helpers),
            limits: options.limits,
        })
        .await?;
        builtin_url = Some(url::Url::parse(bound.base_url())?);
        if let TestHelpers::Token(token) = bound.test_helpers() {
            helpers_token = Some(token.clone());
        }
        // The emulator runs as its own server from here on; the gateway reaches it by HTTP.
        sandbox = Some(tokio::spawn(bound.serve()));
    }
    let endpoint = match (&setup.target, &builtin_url) {
        (Target::Emulator { endpoint } | Target::Credentials { endpoint, .. }, _) => {
            endpoint.clone()
        }
        (Target::BuiltIn, Some(url)) => url.clone(),
        (Target::BuiltIn, None) => return Err(anyhow!("no Amazon Pay endpoint")),
    };
    let key = Arc::new(amazon_pay_key(&options, store.as_ref()).await?);
    // With keys registered at an emulator, the emulator's notifications are trusted (its own
    // certificate origin and topic) and sent to this gateway once it is bound.
    let mut emulator_merchants = Vec::new();
    let (public_key_id, store_id, merchant_id) = match (
        &options.amazon_pay_public_key_id,
        &options.amazon_pay_store_id,
    ) {
        (Some(id), Some(store_id)) => {
            probe(&endpoint, ca_pem).await?;
            (
                id.clone(),
                store_id.clone(),
                options.amazon_pay_merchant_id.clone(),
            )
        }
        _ => {
            // The emulator the endpoint names is reached with the CA file (the built-in one
            // is reached over plain HTTP).
            let trust = if builtin { None } else { ca_pem };
            let r = registration_trusting(&endpoint, &key, helpers_token.as_deref(), trust).await?;
            emulator_merchants.push((endpoint.clone(), r.merchant_id.clone().unwrap_or_default()));
            (r.public_key_id, r.store_id, r.merchant_id)
        }
    };
    let amazon_pay_summary = setup.describe(
        &public_key_id,
        &store_id,
        merchant_id.as_deref(),
        key.public_key(),
    );
    let client_for = |endpoint: &url::Url,
                      public_key_id: String,
                      store_id: String,
                      trust: Option<&str>,
                      environment: Environment| {
        let mut builder = AmazonPayClient::builder(
            ClientConfig {
                endpoint: endpoint.clone(),
                public_key_id,
                region: options.amazon_pay_region.clone(),
                store_id,
                timeout: Duration::from_secs(30),
            },
            key.clone(),
        )
        .environment(environment);
        if let Some(pem) = trust {
            builder = builder.trust_pem(pem.as_bytes())?;
        }
        builder.build()
    };
    let live_hand_off = match &setup.target {
        Target::Credentials {
            amazon: true,
            environment,
            ..
        } => kessai_gateway::HandOff::amazon(
            setup.region.checkout_js(),
            merchant_id.as_deref().unwrap_or_default(),
            *environment == Environment::Sandbox,
        ),
        _ => kessai_gateway::HandOff::emulator(
            endpoint.as_str(),
            merchant_id.as_deref().unwrap_or_default(),
        ),
    };
    let (live_trust, live_environment) = match &setup.target {
        Target::BuiltIn => (None, Environment::Sandbox),
        Target::Emulator { .. } => (ca_pem, Environment::Sandbox),
        Target::Credentials { environment, .. } => (ca_pem, *environment),
    };
    let mut amazon: Arc<dyn AmazonPay> = Arc::new(client_for(
        &endpoint,
        public_key_id,
        store_id,
        live_trust,
        live_environment,
    )?);
    if let Some(wrap) = &hooks.amazon {
        amazon = wrap(amazon);
    }
    let test_endpoint = builtin_url.clone().filter(|_| explicit_keys);
    let test_amazon = match (&builtin_url, explicit_keys) {
        (Some(url), true) => {
            let r = registration(url, &key, helpers_token.as_deref()).await?;
            let merchant = r.merchant_id.unwrap_or_default();
            emulator_merchants.push((url.clone(), merchant.clone()));
            Some(kessai_gateway::Connection {
                api: Arc::new(client_for(
                    url,
                    r.public_key_id,
                    r.store_id,
                    None,
                    Environment::Sandbox,
                )?),
                hand_off: kessai_gateway::HandOff::emulator(url.as_str(), &merchant),
            })
        }
        _ => None,
    };
    let mut gateway_store: Arc<dyn Store> = store.clone();
    if let Some(wrap) = &hooks.store {
        gateway_store = wrap(gateway_store);
    }
    let (gateway_tls_config, gateway_ca) = gateway_tls(&options.gateway_tls, &options.data_dir)?;
    let gateway = Gateway::bind(
        GatewayConfig {
            listen: options.listen,
            public_url: options.public_url.clone(),
            demo_merchant: options.demo_shop.then(|| demo.ccid.clone()),
            demo_auto_pay: builtin_url
                .as_ref()
                .map(|u| kessai_gateway::AutoPayEmulator {
                    base_url: u.as_str().trim_end_matches('/').to_owned(),
                    helpers_token: helpers_token
                        .clone()
                        .map(|t| (kessai_sandbox::TEST_HELPERS_TOKEN_HEADER.to_owned(), t)),
                }),
            store_name: "Kessai Demo Shop".into(),
            clock,
            ids,
            push: hooks.push.clone().unwrap_or(kessai_gateway::PushSettings {
                allow_private_targets: options.allow_private_push_targets,
                lease: options.push_lease,
                ..kessai_gateway::PushSettings::default()
            }),
            recovery: hooks.recovery.clone().unwrap_or_default(),
            abort_at: abort_at()?,
            ipn: hooks
                .ipn
                .clone()
                .unwrap_or_else(|| ipn_settings(&emulator_merchants, explicit_keys)),
            limits: options.limits,
            tls: gateway_tls_config,
        },
        gateway_store,
        kessai_gateway::Amazons {
            live: kessai_gateway::Connection {
                api: amazon,
                hand_off: live_hand_off,
            },
            test: test_amazon,
        },
    )
    .await?;
    for (emulator, merchant_id) in emulator_merchants.iter().filter(|(_, m)| !m.is_empty()) {
        let url = format!("{}/amazonpay/ipn", gateway.base_url());
        let trust = if Some(emulator) == builtin_url.as_ref() {
            None
        } else {
            ca_pem
        };
        if let Err(e) =
            set_notification_url(emulator, helpers_token.as_deref(), merchant_id, &url, trust).await
        {
            tracing::warn!(%e, "the emulator will not send notifications to this gateway");
        }
    }
    Ok(Started {
        gateway,
        sandbox,
        amazon_pay_endpoint: endpoint,
        test_amazon_pay_endpoint: test_endpoint,
        demo,
        demo_secret_generated,
        store,
        locks,
        gateway_ca,
        amazon_pay_summary,
    })
}

/// Reads the files the Amazon Pay flags name and checks the set ([`amazon_pay_setup::check`]).
pub fn check_setup(options: &ServeOptions) -> Result<Setup, amazon_pay_setup::SetupError> {
    fn read(path: &Option<PathBuf>) -> Option<(&Path, Result<String, String>)> {
        path.as_ref().map(|p| {
            (
                p.as_path(),
                std::fs::read_to_string(p).map_err(|e| e.to_string()),
            )
        })
    }
    fn file<'a>(f: &'a Option<(&'a Path, Result<String, String>)>) -> Option<FileRead<'a>> {
        f.as_ref().map(|(path, contents)| FileRead {
            path,
            contents: contents.as_deref().map_err(String::as_str),
        })
    }
    let private_key = read(&options.amazon_pay_private_key);
    let public_key = read(&options.amazon_pay_public_key);
    let ca_file = read(&options.amazon_pay_ca_file);
    amazon_pay_setup::check(&Input {
        endpoint: options.amazon_pay_endpoint.as_ref(),
        region: &options.amazon_pay_region,
        public_key_id: options.amazon_pay_public_key_id.as_deref(),
        store_id: options.amazon_pay_store_id.as_deref(),
        merchant_id: options.amazon_pay_merchant_id.as_deref(),
        sandbox: options.amazon_pay_sandbox,
        private_key: file(&private_key),
        public_key: file(&public_key),
        ca_file: file(&ca_file),
        sandbox_public_url: options.sandbox_public_url.as_deref(),
    })
}

/// One request to an HTTPS endpoint at start: a certificate that is not trusted refuses the
/// start (naming `--amazon-pay-ca-file`); an endpoint that cannot be reached now is only a
/// warning (Amazon may be back by the first order).
async fn probe(endpoint: &url::Url, ca_pem: Option<&str>) -> anyhow::Result<()> {
    if endpoint.scheme() != "https" {
        return Ok(());
    }
    match http_client(ca_pem)?.get(endpoint.clone()).send().await {
        Ok(_) => Ok(()),
        Err(e) => {
            let e = unreachable(endpoint, &e);
            if e.to_string().contains("--amazon-pay-ca-file") {
                Err(e)
            } else {
                tracing::warn!(%e, "Amazon Pay is not reachable now");
                Ok(())
            }
        }
    }
}
