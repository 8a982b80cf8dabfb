//! The `kessai` command: runs the gateway, the Amazon Pay emulator, or both.

use anyhow::Context;

mod bench;
use clap::{Parser, Subcommand};
use kessai::ServeOptions;
use kessai_store::Store;
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "kessai",
    version,
    about = "Kessai: a payment gateway (VeriTrans MDK protocol) for Amazon Pay, with an Amazon Pay emulator"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the gateway with the built-in Amazon Pay emulator (or against --amazon-pay-endpoint).
    Serve(Box<ServeArgs>),
    /// Run the Amazon Pay emulator alone (for merchants who integrate Amazon Pay directly).
    Sandbox(SandboxArgs),
    /// Manage the merchants of the gateway.
    #[command(subcommand)]
    Merchant(MerchantCommand),
    /// Look at and resend the result pushes to merchants.
    #[command(subcommand)]
    Pushes(PushesCommand),
    /// Measure: the machine's bounds, full flows and refused commands against an in-process
    /// gateway and emulator.
    Bench(bench::BenchArgs),
}

#[derive(Debug, Subcommand)]
enum PushesCommand {
    /// List push records, oldest first.
    List {
        /// Only this order.
        #[arg(long)]
        order: Option<String>,
        /// Only records in this status: Pending, Delivered, Failed or Refused.
        #[arg(long)]
        status: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 100)]
        limit: i64,
        /// Directory of the gateway's data.
        #[arg(long, default_value = "./kessai-data", env = "KESSAI_DATA_DIR")]
        data_dir: PathBuf,
        /// The gateway's database if it is PostgreSQL (as `serve --database-url`).
        #[arg(long, env = "KESSAI_DATABASE_URL")]
        database_url: Option<String>,
    },
    /// Send a record again (whatever its status) at the worker's next tick.
    Resend {
        /// The record's id (`notifyId`, first column of `list`).
        id: i64,
        /// Directory of the gateway's data.
        #[arg(long, default_value = "./kessai-data", env = "KESSAI_DATA_DIR")]
        data_dir: PathBuf,
        /// The gateway's database if it is PostgreSQL (as `serve --database-url`).
        #[arg(long, env = "KESSAI_DATABASE_URL")]
        database_url: Option<String>,
    },
}

#[derive(Debug, clap::Args)]
struct ServeArgs {
    /// Address of the gateway (MDK API, buyer pages, demo shop).
    #[arg(long, default_value = "127.0.0.1:8080", env = "KESSAI_LISTEN")]
    listen: SocketAddr,
    /// URL that browsers use to reach the gateway (default: http://<listen address>).
    #[arg(long, env = "KESSAI_PUBLIC_URL")]
    public_url: Option<String>,
    /// Directory for the SQLite files, the Amazon Pay key and the demo merchant.
    #[arg(long, default_value = "./kessai-data", env = "KESSAI_DATA_DIR")]
    data_dir: PathBuf,
    /// The gateway's database, `postgres://user@host/db` (default: gateway.sqlite in the data
    /// directory). Several gateways may share one PostgreSQL database.
    #[arg(long, env = "KESSAI_DATABASE_URL")]
    database_url: Option<String>,
    /// Address of the built-in Amazon Pay emulator (with --amazon-pay-public-key-id, it serves the
    /// test orders of /test-paynow while live orders go to --amazon-pay-endpoint).
    #[arg(long, default_value = "127.0.0.1:8443", env = "KESSAI_SANDBOX_LISTEN")]
    sandbox_listen: SocketAddr,
    /// Use this Amazon Pay endpoint (e.g. another `kessai sandbox`) instead of the built-in
    /// emulator. With credentials and without this flag: Amazon's host of --amazon-pay-region.
    #[arg(long, env = "KESSAI_AMAZON_PAY_ENDPOINT")]
    amazon_pay_endpoint: Option<url::Url>,
    /// PEM certificate(s) trusted for --amazon-pay-endpoint beside the built-in roots, e.g. the
    /// sandbox.cert.pem of a `kessai sandbox` reached over https.
    #[arg(long, env = "KESSAI_AMAZON_PAY_CA_FILE")]
    amazon_pay_ca_file: Option<PathBuf>,
    /// Amazon Pay merchant id (Seller Central), for Amazon's checkout.js; needed with Amazon's hosts.
    #[arg(long, env = "KESSAI_AMAZON_PAY_MERCHANT_ID")]
    amazon_pay_merchant_id: Option<String>,
    /// The credentials are for Amazon Pay's sandbox: required with a SANDBOX- key id, refused
    /// with a LIVE- one; for a legacy key id (no prefix) it picks /sandbox/ instead of /live/.
    #[arg(long, env = "KESSAI_AMAZON_PAY_SANDBOX")]
    amazon_pay_sandbox: bool,
    /// PEM file of the public key registered at Amazon Pay; checked at start against
    /// --amazon-pay-private-key.
    #[arg(long, env = "KESSAI_AMAZON_PAY_PUBLIC_KEY")]
    amazon_pay_public_key: Option<PathBuf>,
    /// Amazon Pay public key id; without it the key is registered with the emulator's test helper.
    #[arg(
        long,
        env = "KESSAI_AMAZON_PAY_PUBLIC_KEY_ID",
        requires = "amazon_pay_store_id"
    )]
    amazon_pay_public_key_id: Option<String>,
    /// Amazon Pay store id (goes with --amazon-pay-public-key-id).
    #[arg(
        long,
        env = "KESSAI_AMAZON_PAY_STORE_ID",
        requires = "amazon_pay_public_key_id"
    )]
    amazon_pay_store_id: Option<String>,
    /// PEM file of the RSA private key for Amazon Pay (default: <data-dir>/amazon-pay-private-key.pem, generated if missing;
    /// with --database-url, the key stored in the database, shared by every instance).
    #[arg(long, env = "KESSAI_AMAZON_PAY_PRIVATE_KEY")]
    amazon_pay_private_key: Option<PathBuf>,
    /// Amazon Pay region (jp, na or eu), sent in x-amz-pay-region; with credentials it picks
    /// Amazon's host (pay-api.amazon.jp, .com, .eu) and checkout.js.
    #[arg(long, default_value = "jp", env = "KESSAI_AMAZON_PAY_REGION")]
    amazon_pay_region: String,
    /// URL that buyers' browsers use to reach the built-in emulator (default:
    /// http://<sandbox-listen address>); the gateway calls the emulator there too.
    #[arg(long, env = "KESSAI_SANDBOX_PUBLIC_URL")]
    sandbox_public_url: Option<String>,
    /// merchantCcid of the demo merchant (default: generated once and kept in the data directory).
    #[arg(long, env = "KESSAI_DEMO_CCID", requires = "demo_secret")]
    demo_ccid: Option<String>,
    /// Hex secret key of the demo merchant.
    #[arg(
        long,
        env = "KESSAI_DEMO_SECRET",
        requires = "demo_ccid",
        hide_env_values = true
    )]
    demo_secret: Option<String>,
    /// Do not serve the demo shop at /.
    #[arg(long)]
    no_demo_shop: bool,
    /// Let result pushes of live orders reach loopback and private addresses (for local
    /// development; test-mode orders may always push anywhere).
    #[arg(long, env = "KESSAI_ALLOW_PRIVATE_PUSH_TARGETS")]
    allow_private_push_targets: bool,
    /// Seconds the push worker holds the records it sends; after a crash they are sent again when
    /// this runs out.
    #[arg(long, default_value_t = 30, env = "KESSAI_PUSH_LEASE_SECS")]
    push_lease_secs: u64,
    /// PEM certificate (chain) for HTTPS on the gateway's port. Default: a local certificate
    /// authority made in the data directory (gateway-ca.pem, for an MDK's CA_CERT_FILE).
    #[arg(long, requires = "tls_key", env = "KESSAI_TLS_CERT")]
    tls_cert: Option<PathBuf>,
    /// PEM PKCS#8 private key for HTTPS on the gateway's port.
    #[arg(long, requires = "tls_cert", env = "KESSAI_TLS_KEY")]
    tls_key: Option<PathBuf>,
    /// Serve the gateway over plain HTTP only.
    #[arg(long, conflicts_with_all = ["tls_cert", "tls_key"])]
    no_tls: bool,
    #[command(flatten)]
    helpers: HelperArgs,
    #[command(flatten)]
    limits: LimitArgs,
}

/// Who may use the emulator's unsigned `/test_helpers`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum HelperMode {
    /// Not served.
    Off,
    /// Only with the header `x-test-helpers-token: <token>`.
    Token,
    /// To anyone who reaches the port.
    Open,
}

#[derive(Debug, clap::Args)]
struct HelperArgs {
    /// Who may use the emulator's /test_helpers (register keys, move its clock, pay for a
    /// checkout). Default: open on a loopback address, else token.
    #[arg(long, value_enum, env = "KESSAI_TEST_HELPERS")]
    test_helpers: Option<HelperMode>,
    /// The helpers' token (with --test-helpers=token). `kessai sandbox` makes one if missing and
    /// writes it to <data-dir>/test-helpers-token; `kessai serve` makes one and uses it itself,
    /// or uses this one for an --amazon-pay-endpoint emulator.
    #[arg(long, env = "KESSAI_TEST_HELPERS_TOKEN", hide_env_values = true)]
    test_helpers_token: Option<String>,
}

/// Connections and timeouts (each port).
#[derive(Debug, clap::Args)]
struct LimitArgs {
    /// Seconds a client has to send a request's headers (TLS handshake included); also how long
    /// an idle kept-alive connection stays open.
    #[arg(long, default_value_t = 10, env = "KESSAI_HEADER_READ_TIMEOUT")]
    header_read_timeout: u64,
    /// Seconds from a request's headers to its answer, body upload included (then 408).
    #[arg(long, default_value_t = 60, env = "KESSAI_REQUEST_TIMEOUT")]
    request_timeout: u64,
    /// Connections served at once on each port; more wait until one ends.
    #[arg(long, default_value_t = 512, env = "KESSAI_MAX_CONNECTIONS")]
    max_connections: usize,
}

impl LimitArgs {
    fn limits(&self) -> kessai_sandbox::Limits {
        kessai_sandbox::Limits {
            header_read_timeout: std::time::Duration::from_secs(self.header_read_timeout.max(1)),
            request_timeout: std::time::Duration::from_secs(self.request_timeout.max(1)),
            max_connections: self.max_connections.max(1),
        }
    }
}

#[derive(Debug, clap::Args)]
struct SandboxArgs {
    /// Address to listen on; port 0 picks a free port (the chosen address is printed).
    #[arg(long, default_value = "127.0.0.1:8443", env = "KESSAI_SANDBOX_LISTEN")]
    listen: SocketAddr,
    /// Directory for the emulator's SQLite file (created if missing).
    #[arg(long, default_value = "./kessai-data", env = "KESSAI_DATA_DIR")]
    data_dir: PathBuf,
    /// URL that buyers' browsers use to reach the emulator (default: http://<listen address>).
    #[arg(long, env = "KESSAI_SANDBOX_PUBLIC_URL")]
    public_url: Option<String>,
    /// Serve plain HTTP only. By default the same port also answers HTTPS (the SDKs' default),
    /// with a self-signed certificate written next to the database, or --tls-cert/--tls-key.
    #[arg(long, conflicts_with_all = ["tls_cert", "tls_key"])]
    no_tls: bool,
    /// PEM certificate (chain) for HTTPS.
    #[arg(long, requires = "tls_key", env = "KESSAI_SANDBOX_TLS_CERT")]
    tls_cert: Option<PathBuf>,
    /// PEM PKCS#8 private key for HTTPS.
    #[arg(long, requires = "tls_cert", env = "KESSAI_SANDBOX_TLS_KEY")]
    tls_key: Option<PathBuf>,
    #[command(flatten)]
    helpers: HelperArgs,
    #[command(flatten)]
    limits: LimitArgs,
}

#[derive(Debug, Subcommand)]
enum MerchantCommand {
    /// Add a merchant and print its merchantCcid and secret key.
    Add {
        /// A name for the merchant.
        #[arg(long, default_value = "Merchant")]
        name: String,
        /// consentAuthType of a recurring Authorize that leaves it out: 1 consent and a first
        /// authorization, 0 consent only.
        #[arg(long, default_value = "1", value_parser = ["0", "1"])]
        consent_auth_type: String,
        /// Directory of the gateway's data.
        #[arg(long, default_value = "./kessai-data", env = "KESSAI_DATA_DIR")]
        data_dir: PathBuf,
        /// The gateway's database if it is PostgreSQL (as `serve --database-url`).
        #[arg(long, env = "KESSAI_DATABASE_URL")]
        database_url: Option<String>,
    },
    /// List the merchants (without their secret keys).
    List {
        /// Directory of the gateway's data.
        #[arg(long, default_value = "./kessai-data", env = "KESSAI_DATA_DIR")]
        data_dir: PathBuf,
        /// The gateway's database if it is PostgreSQL (as `serve --database-url`).
        #[arg(long, env = "KESSAI_DATABASE_URL")]
        database_url: Option<String>,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    raise_open_file_limit();
    match Cli::parse().command {
        Command::Serve(args) => run_serve(*args).await,
        Command::Sandbox(args) => run_sandbox(args).await,
        Command::Merchant(cmd) => run_merchant(cmd).await,
        Command::Pushes(cmd) => run_pushes(cmd).await,
        Command::Bench(args) => bench::run(args).await,
    }
}

/// Every connection is a file descriptor: the soft limit (often 1024, or 256) is raised to the
/// hard limit, so connections reach `--max-connections` before they reach the limit.
fn raise_open_file_limit() {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) if limit < 2 * 512 + 64 => tracing::warn!(
            limit,
            "the open-file limit is low: lower --max-connections or raise the hard limit (ulimit -Hn)"
        ),
        Ok(_) => {}
        Err(e) => tracing::warn!(%e, "cannot raise the open-file limit"),
    }
}

async fn run_serve(args: ServeArgs) -> anyhow::Result<()> {
    let started = kessai::start(ServeOptions {
        listen: args.listen,
        public_url: args.public_url,
        data_dir: args.data_dir.clone(),
        database_url: args.database_url.clone(),
        sandbox_listen: args.sandbox_listen,
        amazon_pay_endpoint: args.amazon_pay_endpoint,
        amazon_pay_public_key_id: args.amazon_pay_public_key_id,
        amazon_pay_store_id: args.amazon_pay_store_id,
        amazon_pay_private_key: args.amazon_pay_private_key,
        amazon_pay_region: args.amazon_pay_region,
        amazon_pay_merchant_id: args.amazon_pay_merchant_id,
        amazon_pay_sandbox: args.amazon_pay_sandbox,
        amazon_pay_public_key: args.amazon_pay_public_key,
        amazon_pay_ca_file: args.amazon_pay_ca_file,
        sandbox_public_url: args.sandbox_public_url,
        demo_ccid: args.demo_ccid,
        demo_secret: args.demo_secret,
        demo_shop: !args.no_demo_shop,
        allow_private_push_targets: args.allow_private_push_targets,
        push_lease: std::time::Duration::from_secs(args.push_lease_secs.max(1)),
        gateway_tls: match (args.no_tls, args.tls_cert.clone(), args.tls_key.clone()) {
            (true, _, _) => kessai::GatewayTls::Off,
            (false, Some(cert), Some(key)) => kessai::GatewayTls::Files { cert, key },
            _ => kessai::GatewayTls::LocalCa,
        },
        test_helpers: match (args.helpers.test_helpers, args.helpers.test_helpers_token) {
            (Some(HelperMode::Off), _) => Some(kessai_sandbox::TestHelpers::Off),
            (Some(HelperMode::Open), _) => Some(kessai_sandbox::TestHelpers::Open),
            (Some(HelperMode::Token) | None, Some(token)) => {
                Some(kessai_sandbox::TestHelpers::Token(token))
            }
            (Some(HelperMode::Token), None) => {
                let (_, ids) = kessai::system_sources();
                Some(kessai_sandbox::TestHelpers::Token(ids.hex(32)))
            }
            (None, None) => None,
        },
        limits: args.limits.limits(),
    })
    .await?;
    let base = started.gateway.base_url().to_owned();
    println!("Kessai gateway    {base}");
    if !args.no_demo_shop {
        println!("  demo shop       {base}/");
    }
    println!(
        "  MDK API         {base}/paynow/v2/{{Command}}/amazonpay  (test mode: /test-paynow/...)"
    );
    if let Some(ca) = &started.gateway_ca {
        let https = base.replacen("http://", "https://", 1);
        println!(
            "  HTTPS           {https} on the same port (CA certificate {}, for an MDK's CA_CERT_FILE)",
            ca.display()
        );
    } else if !args.no_tls {
        let https = base.replacen("http://", "https://", 1);
        println!("  HTTPS           {https} on the same port");
    }
    match &started.test_amazon_pay_endpoint {
        Some(test) => {
            println!(
                "Amazon Pay        {} (live orders, /paynow)",
                started.amazon_pay_endpoint
            );
            println!("Test orders       {test} (built-in emulator, /test-paynow)");
        }
        None => {
            let emulator = if started.sandbox.is_some() {
                "built-in emulator"
            } else {
                "external"
            };
            println!(
                "Amazon Pay        {} ({emulator})",
                started.amazon_pay_endpoint
            );
        }
    }
    println!("{}", started.amazon_pay_summary);
    // A secret given by flag or environment is not repeated on stdout (logs keep stdout).
    if started.demo_secret_generated {
        println!(
            "Demo merchant     merchantCcid={} secretKey={}",
            started.demo.ccid,
            started.demo.secret_hex.expose()
        );
    } else {
        println!(
            "Demo merchant     merchantCcid={} secretKey=(as given by KESSAI_DEMO_SECRET)",
            started.demo.ccid
        );
    }
    println!("Data              {}", args.data_dir.display());
    if args.database_url.is_some() {
        // Not the URL itself: it may hold a password.
        println!("Database          PostgreSQL (--database-url)");
    }
    started.serve().await
}

async fn run_sandbox(args: SandboxArgs) -> anyhow::Result<()> {
    kessai::prepare_data_dir(&args.data_dir)?;
    let _lock = kessai::lock_data_dir(&args.data_dir, "sandbox", "kessai sandbox")?;
    kessai::private_file(&args.data_dir.join("sandbox.sqlite"))?;
    let mode = args
        .helpers
        .test_helpers
        .unwrap_or(if args.listen.ip().is_loopback() {
            HelperMode::Open
        } else {
            HelperMode::Token
        });
    let (helpers, token_file) = match (mode, args.helpers.test_helpers_token) {
        (HelperMode::Off, _) => (kessai_sandbox::TestHelpers::Off, None),
        (HelperMode::Open, _) => (kessai_sandbox::TestHelpers::Open, None),
        (HelperMode::Token, Some(token)) => (kessai_sandbox::TestHelpers::Token(token), None),
        (HelperMode::Token, None) => {
            let path = args.data_dir.join("test-helpers-token");
            let token = kessai::helpers_token_file(&path)?;
            (kessai_sandbox::TestHelpers::Token(token), Some(path))
        }
    };
    let sandbox = kessai_sandbox::Sandbox::bind(kessai_sandbox::SandboxConfig {
        listen: args.listen,
        database: args.data_dir.join("sandbox.sqlite"),
        public_url: args.public_url,
        tls: match (args.no_tls, args.tls_cert, args.tls_key) {
            (true, _, _) => kessai_sandbox::TlsSetting::Off,
            (false, Some(cert), Some(key)) => kessai_sandbox::TlsSetting::Files { cert, key },
            _ => kessai_sandbox::TlsSetting::SelfSigned,
        },
        test_helpers: Some(helpers),
        limits: args.limits.limits(),
    })
    .await?;
    println!("kessai sandbox listening on {}", sandbox.base_url());
    match &token_file {
        Some(path) => println!(
            "  test helpers: token (header x-test-helpers-token; the token is in {})",
            path.display()
        ),
        None => println!("  test helpers: {}", sandbox.test_helpers().name()),
    }
    if let Some(cert) = sandbox.cert_path() {
        let addr = sandbox.local_addr();
        println!(
            "  https: https://{addr} on the same port (certificate {})",
            cert.display()
        );
    }
    println!("  data: {}", args.data_dir.join("sandbox.sqlite").display());
    sandbox.serve().await?;
    Ok(())
}

async fn run_merchant(cmd: MerchantCommand) -> anyhow::Result<()> {
    match cmd {
        MerchantCommand::Add {
            name,
            consent_auth_type,
            data_dir,
            database_url,
        } => {
            if database_url.is_none() {
                kessai::prepare_data_dir(&data_dir)?;
            }
            let store = kessai::open_gateway_store(database_url.as_deref(), &data_dir).await?;
            let (clock, ids) = kessai::system_sources();
            let mut m = kessai::new_merchant(&name, clock.as_ref(), ids.as_ref())?;
            m.consent_auth_default = consent_auth_type == "1";
            store.insert_merchant(&m).await?;
            println!("merchantCcid={}", m.ccid);
            println!("secretKey={}", m.secret_hex.expose());
        }
        MerchantCommand::List {
            data_dir,
            database_url,
        } => {
            let store = kessai::open_gateway_store(database_url.as_deref(), &data_dir).await?;
            for m in store.merchants().await? {
                println!(
                    "{}\t{}\t{}\tconsentAuthType={}",
                    m.ccid,
                    m.name,
                    m.created_at,
                    u8::from(m.consent_auth_default)
                );
            }
        }
    }
    Ok(())
}

async fn run_pushes(cmd: PushesCommand) -> anyhow::Result<()> {
    match cmd {
        PushesCommand::List {
            order,
            status,
            limit,
            data_dir,
            database_url,
        } => {
            let store = open_existing(database_url.as_deref(), &data_dir).await?;
            let status = match status {
                Some(s) => Some(kessai_core::PushStatus::parse(&s).ok_or_else(|| {
                    anyhow::anyhow!("--status must be Pending, Delivered, Failed or Refused")
                })?),
                None => None,
            };
            let filter = kessai_store::PushFilter {
                merchant: None,
                order_id: order
                    .map(|o| kessai_core::OrderId::parse(&o))
                    .transpose()
                    .context("--order")?,
                status,
                limit,
            };
            println!("id\tstatus\tattempts\tkind\tmerchant\torder\tvResultCode\turl\tlast error");
            for p in store.pushes(&filter).await? {
                let code = p
                    .fields
                    .iter()
                    .find(|(k, _)| k == "vResultCode")
                    .map(|(_, v)| v.as_str())
                    .unwrap_or("-");
                println!(
                    "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
                    p.id,
                    p.status.as_str(),
                    p.attempts,
                    p.kind.as_str(),
                    p.merchant,
                    p.order_id,
                    code,
                    p.url,
                    p.last_error.as_deref().unwrap_or("")
                );
            }
        }
        PushesCommand::Resend {
            id,
            data_dir,
            database_url,
        } => {
            let store = open_existing(database_url.as_deref(), &data_dir).await?;
            let (clock, _) = kessai::system_sources();
            if store.resend_push(id, clock.unix()).await? {
                println!("push record {id} will be sent again");
            } else {
                anyhow::bail!("no push record {id}");
            }
        }
    }
    Ok(())
}

/// The store of a gateway that has run: PostgreSQL at `database_url`, else an existing
/// `gateway.sqlite` in `data_dir`.
async fn open_existing(
    database_url: Option<&str>,
    data_dir: &std::path::Path,
) -> anyhow::Result<std::sync::Arc<dyn Store>> {
    if database_url.is_none() {
        let path = data_dir.join("gateway.sqlite");
        anyhow::ensure!(
            path.exists(),
            "{} does not exist (is --data-dir right?)",
            path.display()
        );
    }
    kessai::open_gateway_store(database_url, data_dir).await
}
