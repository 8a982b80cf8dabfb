//! The start-up self-check of `kessai serve`'s Amazon Pay settings: which Amazon Pay the gateway
//! talks to (the built-in emulator, another emulator, or Amazon with a merchant's credentials),
//! in which environment, and whether the set holds together. A pure function of the flags and of
//! the files' contents (read by the caller), so every rule is a row of a table test; each refusal
//! names the flag to change.

use kessai_amazonpay::{Environment, PrivateKey, PublicKey};
use std::fmt::Write as _;
use std::path::Path;

/// An Amazon Pay region: its API host and its buyer script.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Region {
    Jp,
    Na,
    Eu,
}

impl Region {
    /// The names the SDKs take (`us` is the docs' name for `na`; `de`, `uk` are `eu`).
    pub fn parse(name: &str) -> Option<Region> {
        match name.to_ascii_lowercase().as_str() {
            "jp" => Some(Region::Jp),
            "na" | "us" => Some(Region::Na),
            "eu" | "de" | "uk" => Some(Region::Eu),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Region::Jp => "jp",
            Region::Na => "na",
            Region::Eu => "eu",
        }
    }

    pub fn api_host(self) -> &'static str {
        match self {
            Region::Jp => "pay-api.amazon.jp",
            Region::Na => "pay-api.amazon.com",
            Region::Eu => "pay-api.amazon.eu",
        }
    }

    /// Amazon's `checkout.js` for buyers of this region.
    pub fn checkout_js(self) -> &'static str {
        match self {
            Region::Jp => "https://static-fe.payments-amazon.com/checkout.js",
            Region::Na => "https://static-na.payments-amazon.com/checkout.js",
            Region::Eu => "https://static-eu.payments-amazon.com/checkout.js",
        }
    }

    fn of_host(host: &str) -> Option<Region> {
        [Region::Jp, Region::Na, Region::Eu]
            .into_iter()
            .find(|r| r.api_host().eq_ignore_ascii_case(host))
    }
}

/// A file named by a flag, as the caller read it.
#[derive(Debug, Clone, Copy)]
pub struct FileRead<'a> {
    pub path: &'a Path,
    /// Its text, or why it could not be read (e.g. "not found").
    pub contents: Result<&'a str, &'a str>,
}

/// The Amazon Pay flags of `kessai serve`.
#[derive(Debug, Clone, Copy)]
pub struct Input<'a> {
    pub endpoint: Option<&'a url::Url>,
    pub region: &'a str,
    pub public_key_id: Option<&'a str>,
    pub store_id: Option<&'a str>,
    pub merchant_id: Option<&'a str>,
    pub sandbox: bool,
    pub private_key: Option<FileRead<'a>>,
    pub public_key: Option<FileRead<'a>>,
    pub ca_file: Option<FileRead<'a>>,
    pub sandbox_public_url: Option<&'a str>,
}

/// Whom the gateway's live orders (`/paynow`) go to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// The built-in emulator; the key is registered with it at start.
    BuiltIn,
    /// Another emulator (`--amazon-pay-endpoint` without credentials); the key is registered
    /// with it at start through its test helpers.
    Emulator { endpoint: url::Url },
    /// An Amazon Pay that knows the merchant's credentials: Amazon itself (`amazon`: the
    /// endpoint is one of Amazon's API hosts), or an emulator the key was registered with.
    /// Test orders (`/test-paynow`) still go to the built-in emulator.
    Credentials {
        endpoint: url::Url,
        environment: Environment,
        amazon: bool,
    },
}

/// A checked set of settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setup {
    pub target: Target,
    pub region: Region,
    /// The certificates of `--amazon-pay-ca-file` (PEM), trusted beside the built-in roots.
    pub ca_pem: Option<String>,
}

/// A setting that does not fit: the flag to change and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{flag}: {problem}")]
pub struct SetupError {
    pub flag: &'static str,
    pub problem: String,
}

fn refuse<T>(flag: &'static str, problem: impl Into<String>) -> Result<T, SetupError> {
    Err(SetupError {
        flag,
        problem: problem.into(),
    })
}

const ENDPOINT: &str = "--amazon-pay-endpoint";
const REGION: &str = "--amazon-pay-region";
const KEY_ID: &str = "--amazon-pay-public-key-id";
const STORE_ID: &str = "--amazon-pay-store-id";
const MERCHANT_ID: &str = "--amazon-pay-merchant-id";
const SANDBOX: &str = "--amazon-pay-sandbox";
const PRIVATE_KEY: &str = "--amazon-pay-private-key";
const PUBLIC_KEY: &str = "--amazon-pay-public-key";
const CA_FILE: &str = "--amazon-pay-ca-file";
const SANDBOX_PUBLIC_URL: &str = "--sandbox-public-url";

/// Checks the settings as a whole.
pub fn check(input: &Input<'_>) -> Result<Setup, SetupError> {
    let Some(region) = Region::parse(input.region) else {
        return refuse(
            REGION,
            format!("{:?} is not a region: jp, na (us) or eu", input.region),
        );
    };
    if let Some(endpoint) = input.endpoint {
        if !matches!(endpoint.scheme(), "https" | "http") || endpoint.host_str().is_none() {
            return refuse(ENDPOINT, format!("{endpoint} is not an http(s) URL"));
        }
        if endpoint.path() != "/" || endpoint.query().is_some() {
            return refuse(
                ENDPOINT,
                format!("{endpoint}: give the origin only (scheme, host and port), no path"),
            );
        }
    }
    if let Some(url) = input.sandbox_public_url {
        match url::Url::parse(url) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => {}
            _ => {
                return refuse(
                    SANDBOX_PUBLIC_URL,
                    format!("{url:?} is not an http(s) URL such as http://shop.example:8443"),
                )
            }
        }
    }
    let ca_pem = match input.ca_file {
        None => None,
        Some(file) => Some(certificates(file)?),
    };
    let private_key = match input.private_key {
        Some(file) => match file.contents {
            Ok(pem) => Some(PrivateKey::from_pem(pem).map_err(|e| SetupError {
                flag: PRIVATE_KEY,
                problem: format!("{} is not an RSA private key in PEM: {e}", file.path.display()),
            })?),
            // Without credentials a missing file is made (a new key for the emulator).
            Err(_) if input.public_key_id.is_none() => None,
            Err(why) => {
                return refuse(
                    PRIVATE_KEY,
                    format!(
                        "cannot read {} ({why}); it must be the key whose public key is registered for {}",
                        file.path.display(),
                        input.public_key_id.unwrap_or_default()
                    ),
                )
            }
        },
        None => None,
    };
    if let Some(file) = input.public_key {
        let public = match file.contents {
            Ok(pem) => PublicKey::from_pem(pem).map_err(|e| SetupError {
                flag: PUBLIC_KEY,
                problem: format!(
                    "{} is not an RSA public key in PEM: {e}",
                    file.path.display()
                ),
            })?,
            Err(why) => {
                return refuse(
                    PUBLIC_KEY,
                    format!("cannot read {} ({why})", file.path.display()),
                )
            }
        };
        let Some(private) = &private_key else {
            return refuse(
                PUBLIC_KEY,
                format!("it is compared with the key of {PRIVATE_KEY}: give that file too"),
            );
        };
        if private.public_key().to_pem().ok() != public.to_pem().ok() {
            return refuse(
                PUBLIC_KEY,
                format!(
                    "{} is not the public key of {PRIVATE_KEY} (fingerprints {} and {})",
                    file.path.display(),
                    fingerprint(private.public_key()).unwrap_or_default(),
                    fingerprint(&public).unwrap_or_default()
                ),
            );
        }
    }

    let amazon_host = input
        .endpoint
        .and_then(|e| e.host_str())
        .and_then(Region::of_host);

    let Some(key_id) = input.public_key_id else {
        // No credentials: an emulator, which registers the key itself.
        for (given, flag) in [
            (input.store_id.is_some(), STORE_ID),
            (input.merchant_id.is_some(), MERCHANT_ID),
            (input.sandbox, SANDBOX),
        ] {
            if given {
                return refuse(
                    flag,
                    format!("goes with {KEY_ID} (an emulator assigns its own ids)"),
                );
            }
        }
        if amazon_host.is_some() {
            return refuse(
                KEY_ID,
                format!(
                    "{} is Amazon Pay: give the merchant's {KEY_ID}, {STORE_ID}, {MERCHANT_ID} and {PRIVATE_KEY}",
                    input.endpoint.map(url::Url::as_str).unwrap_or_default()
                ),
            );
        }
        let target = match input.endpoint {
            Some(endpoint) => Target::Emulator {
                endpoint: endpoint.clone(),
            },
            None => Target::BuiltIn,
        };
        return Ok(Setup {
            target,
            region,
            ca_pem,
        });
    };

    if key_id.is_empty()
        || !key_id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-')
    {
        return refuse(
            KEY_ID,
            format!("{key_id:?} is not a public key id (letters, digits and '-')"),
        );
    }
    let Some(store_id) = input.store_id else {
        return refuse(
            STORE_ID,
            format!(
                "{KEY_ID} needs the store id (amzn1.application-oa2-client.…) of the same store"
            ),
        );
    };
    if store_id.is_empty()
        || store_id
            .chars()
            .any(|c| c.is_whitespace() || c.is_control())
    {
        return refuse(STORE_ID, format!("{store_id:?} is not a store id"));
    }
    let upper = key_id.to_ascii_uppercase();
    let environment = if upper.starts_with("LIVE") {
        if input.sandbox {
            return refuse(
                SANDBOX,
                format!("{key_id} is a LIVE key (Amazon's live environment): leave out {SANDBOX}, or give the SANDBOX- key"),
            );
        }
        Environment::Live
    } else if upper.starts_with("SANDBOX") {
        if !input.sandbox {
            return refuse(
                SANDBOX,
                format!("{key_id} is a SANDBOX key: add {SANDBOX} to use Amazon's sandbox, or give the LIVE- key to go live"),
            );
        }
        Environment::Sandbox
    } else if input.sandbox {
        Environment::Sandbox
    } else {
        Environment::Live
    };
    let endpoint = match input.endpoint {
        Some(endpoint) => endpoint.clone(),
        None => {
            url::Url::parse(&format!("https://{}", region.api_host())).map_err(|e| SetupError {
                flag: ENDPOINT,
                problem: e.to_string(),
            })?
        }
    };
    let amazon = input.endpoint.is_none() || amazon_host.is_some();
    if let Some(host_region) = amazon_host {
        if host_region != region {
            return refuse(
                ENDPOINT,
                format!(
                    "{endpoint} is Amazon Pay's host for another region; {REGION} {} goes with https://{}",
                    input.region,
                    region.api_host()
                ),
            );
        }
    }
    if endpoint.scheme() != "https" && (amazon || environment == Environment::Live) {
        return refuse(
            ENDPOINT,
            format!("{endpoint}: live and Amazon's hosts are reached over https only"),
        );
    }
    // The Amazon Pay button of the hand-off page names the merchant, at Amazon and at an
    // emulator alike (the emulator refuses a button without it).
    match input.merchant_id {
        None => {
            return refuse(
                MERCHANT_ID,
                "the Amazon Pay button (checkout.js) needs the merchant id (Seller Central: Integration → Integration Central; an emulator's registration answers it)",
            )
        }
        Some(id) if id.is_empty() || !id.chars().all(|c| c.is_ascii_alphanumeric()) => {
            return refuse(MERCHANT_ID, format!("{id:?} is not a merchant id (letters and digits)"))
        }
        Some(_) => {}
    }
    if amazon && input.private_key.is_none() {
        return refuse(
            PRIVATE_KEY,
            format!("the PEM file of the private key whose public key {key_id} names (the key made in Seller Central)"),
        );
    }
    Ok(Setup {
        target: Target::Credentials {
            endpoint,
            environment,
            amazon,
        },
        region,
        ca_pem,
    })
}

fn certificates(file: FileRead<'_>) -> Result<String, SetupError> {
    let pem = file.contents.map_err(|why| SetupError {
        flag: CA_FILE,
        problem: format!("cannot read {} ({why})", file.path.display()),
    })?;
    let blocks = pem_blocks(pem, "CERTIFICATE");
    if blocks.is_empty() || blocks.iter().any(|b| b.is_none()) {
        return refuse(
            CA_FILE,
            format!(
                "{} holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
                file.path.display()
            ),
        );
    }
    Ok(pem.to_owned())
}

/// The DER of each PEM block with `label` (`None` for a block that is not Base64).
fn pem_blocks(pem: &str, label: &str) -> Vec<Option<Vec<u8>>> {
    use base64::Engine as _;
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let mut out = Vec::new();
    let mut rest = pem;
    while let Some(start) = rest.find(&begin) {
        let after = &rest[start + begin.len()..];
        let Some(stop) = after.find(&end) else {
            out.push(None);
            break;
        };
        let body: String = after[..stop]
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect();
        out.push(base64::engine::general_purpose::STANDARD.decode(body).ok());
        rest = &after[stop + end.len()..];
    }
    out
}

/// `SHA256:` and the hex SHA-256 of the key's DER SubjectPublicKeyInfo, as
/// `openssl pkey -pubout -outform DER | sha256sum` prints it.
pub fn fingerprint(key: &PublicKey) -> Option<String> {
    let pem = key.to_pem().ok()?;
    let der = pem_blocks(&pem, "PUBLIC KEY").into_iter().next()??;
    Some(format!(
        "SHA256:{}",
        kessai_amazonpay::signing::sha256_hex(&der)
    ))
}

impl Setup {
    /// What is configured, for the start-up lines (never a key: its fingerprint at most).
    pub fn describe(
        &self,
        public_key_id: &str,
        store_id: &str,
        merchant_id: Option<&str>,
        key: &PublicKey,
    ) -> String {
        let mut out = String::new();
        let environment = match &self.target {
            Target::BuiltIn => "built-in emulator".to_owned(),
            Target::Emulator { .. } => "external emulator, key registered at start".to_owned(),
            Target::Credentials {
                environment,
                amazon,
                ..
            } => format!(
                "{} {}",
                if *amazon {
                    "Amazon Pay"
                } else {
                    "emulator with credentials,"
                },
                match environment {
                    Environment::Live => "LIVE",
                    Environment::Sandbox => "sandbox",
                }
            ),
        };
        let _ = writeln!(
            out,
            "  environment     {environment}, region {} (checkout.js {})",
            self.region.name(),
            self.region.checkout_js()
        );
        let _ = writeln!(out, "  public key id   {public_key_id}");
        let _ = writeln!(out, "  store id        {store_id}");
        if let Some(id) = merchant_id {
            let _ = writeln!(out, "  merchant id     {id}");
        }
        let _ = writeln!(
            out,
            "  key             {}",
            fingerprint(key).unwrap_or_else(|| "(no fingerprint)".into())
        );
        if self.ca_pem.is_some() {
            let _ = writeln!(out, "  trusted too     the certificates of {CA_FILE}");
        }
        out.trim_end().to_owned()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use std::sync::OnceLock;

    struct Keys {
        private: String,
        public: String,
        other_public: String,
    }

    fn keys() -> &'static Keys {
        static KEYS: OnceLock<Keys> = OnceLock::new();
        KEYS.get_or_init(|| {
            let a = PrivateKey::generate().unwrap();
            let b = PrivateKey::generate().unwrap();
            Keys {
                private: a.to_pem().to_owned(),
                public: a.public_key().to_pem().unwrap(),
                other_public: b.public_key().to_pem().unwrap(),
            }
        })
    }

    const CERT: &str =
        "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUQ1A=\n-----END CERTIFICATE-----\n";

    fn path(name: &'static str) -> &'static Path {
        Path::new(name)
    }

    fn url(u: &str) -> &'static url::Url {
        Box::leak(Box::new(url::Url::parse(u).unwrap()))
    }

    /// A live merchant on Amazon JP: the set every row changes one thing of.
    fn live() -> Input<'static> {
        Input {
            endpoint: None,
            region: "jp",
            public_key_id: Some("LIVE-AFVX7ULWSGBZ5535PCUQOY7B"),
            store_id: Some("amzn1.application-oa2-client.0123456789abcdef"),
            merchant_id: Some("A2B3C4D5E6F7G8"),
            sandbox: false,
            private_key: Some(FileRead {
                path: path("key.pem"),
                contents: Ok(&keys().private),
            }),
            public_key: None,
            ca_file: None,
            sandbox_public_url: None,
        }
    }

    fn none() -> Input<'static> {
        Input {
            endpoint: None,
            region: "jp",
            public_key_id: None,
            store_id: None,
            merchant_id: None,
            sandbox: false,
            private_key: None,
            public_key: None,
            ca_file: None,
            sandbox_public_url: None,
        }
    }

    #[test]
    fn consistent_sets_pass_with_what_they_mean() {
        let jp = url("https://pay-api.amazon.jp");
        let emulator = url("https://127.0.0.1:8443");
        let cases: Vec<(&str, Input<'static>, Target)> = vec![
            ("nothing: the built-in emulator", none(), Target::BuiltIn),
            (
                "an emulator elsewhere",
                Input {
                    endpoint: Some(emulator),
                    ..none()
                },
                Target::Emulator {
                    endpoint: emulator.clone(),
                },
            ),
            (
                "live: the endpoint follows the region",
                live(),
                Target::Credentials {
                    endpoint: jp.clone(),
                    environment: Environment::Live,
                    amazon: true,
                },
            ),
            (
                "live with the endpoint spelled out",
                Input {
                    endpoint: Some(jp),
                    ..live()
                },
                Target::Credentials {
                    endpoint: jp.clone(),
                    environment: Environment::Live,
                    amazon: true,
                },
            ),
            (
                "na",
                Input {
                    region: "us",
                    ..live()
                },
                Target::Credentials {
                    endpoint: url("https://pay-api.amazon.com").clone(),
                    environment: Environment::Live,
                    amazon: true,
                },
            ),
            (
                "Amazon's sandbox",
                Input {
                    public_key_id: Some("SANDBOX-AFVX7ULWSGBZ5535PCUQOY7B"),
                    sandbox: true,
                    ..live()
                },
                Target::Credentials {
                    endpoint: jp.clone(),
                    environment: Environment::Sandbox,
                    amazon: true,
                },
            ),
            (
                "a legacy key takes the flag's environment",
                Input {
                    public_key_id: Some("AFVX7ULWSGBZ5535PCUQOY7B"),
                    sandbox: true,
                    ..live()
                },
                Target::Credentials {
                    endpoint: jp.clone(),
                    environment: Environment::Sandbox,
                    amazon: true,
                },
            ),
            (
                "a key registered at an emulator, over plain http",
                Input {
                    endpoint: Some(url("http://127.0.0.1:9000")),
                    public_key_id: Some("SANDBOX-X"),
                    sandbox: true,
                    merchant_id: Some("M1"),
                    private_key: None,
                    ..live()
                },
                Target::Credentials {
                    endpoint: url("http://127.0.0.1:9000").clone(),
                    environment: Environment::Sandbox,
                    amazon: false,
                },
            ),
            (
                "the public key file matches",
                Input {
                    public_key: Some(FileRead {
                        path: path("pub.pem"),
                        contents: Ok(&keys().public),
                    }),
                    ..live()
                },
                Target::Credentials {
                    endpoint: jp.clone(),
                    environment: Environment::Live,
                    amazon: true,
                },
            ),
            (
                "a CA file and a public URL for the emulator",
                Input {
                    endpoint: Some(emulator),
                    ca_file: Some(FileRead {
                        path: path("ca.pem"),
                        contents: Ok(CERT),
                    }),
                    sandbox_public_url: Some("http://192.0.2.7:8443"),
                    ..none()
                },
                Target::Emulator {
                    endpoint: emulator.clone(),
                },
            ),
        ];
        for (what, input, target) in cases {
            match check(&input) {
                Ok(setup) => assert_eq!(setup.target, target, "{what}"),
                Err(e) => panic!("{what}: refused: {e}"),
            }
        }
    }

    #[test]
    fn inconsistent_sets_are_refused_naming_the_flag() {
        let file = |contents: Result<&'static str, &'static str>| {
            Some(FileRead {
                path: path("f.pem"),
                contents,
            })
        };
        let cases: Vec<(&str, Input<'static>, &str)> = vec![
            (
                "unknown region",
                Input {
                    region: "mars",
                    ..live()
                },
                REGION,
            ),
            (
                "a LIVE key with the sandbox flag",
                Input {
                    sandbox: true,
                    ..live()
                },
                SANDBOX,
            ),
            (
                "a SANDBOX key without the flag",
                Input {
                    public_key_id: Some("SANDBOX-AFVX7ULWSGBZ5535PCUQOY7B"),
                    ..live()
                },
                SANDBOX,
            ),
            (
                "region jp, host of na",
                Input {
                    endpoint: Some(url("https://pay-api.amazon.com")),
                    ..live()
                },
                ENDPOINT,
            ),
            (
                "region eu, host of jp",
                Input {
                    region: "eu",
                    endpoint: Some(url("https://pay-api.amazon.jp")),
                    ..live()
                },
                ENDPOINT,
            ),
            (
                "live over http",
                Input {
                    endpoint: Some(url("http://payments.internal:8080")),
                    ..live()
                },
                ENDPOINT,
            ),
            (
                "Amazon's host over http",
                Input {
                    endpoint: Some(url("http://pay-api.amazon.jp")),
                    sandbox: true,
                    public_key_id: Some("SANDBOX-A"),
                    ..live()
                },
                ENDPOINT,
            ),
            (
                "an endpoint with a path",
                Input {
                    endpoint: Some(url("https://pay-api.amazon.jp/live/v2")),
                    ..live()
                },
                ENDPOINT,
            ),
            (
                "a key id without a store id",
                Input {
                    store_id: None,
                    ..live()
                },
                STORE_ID,
            ),
            (
                "a store id without a key id",
                Input {
                    store_id: Some("amzn1.x"),
                    ..none()
                },
                STORE_ID,
            ),
            (
                "a merchant id without a key id",
                Input {
                    merchant_id: Some("A2B3"),
                    ..none()
                },
                MERCHANT_ID,
            ),
            (
                "the sandbox flag without a key id",
                Input {
                    sandbox: true,
                    ..none()
                },
                SANDBOX,
            ),
            (
                "Amazon's host without credentials",
                Input {
                    endpoint: Some(url("https://pay-api.amazon.jp")),
                    ..none()
                },
                KEY_ID,
            ),
            (
                "a key id that is no id",
                Input {
                    public_key_id: Some("LIVE-AB CD"),
                    ..live()
                },
                KEY_ID,
            ),
            (
                "Amazon without a merchant id",
                Input {
                    merchant_id: None,
                    ..live()
                },
                MERCHANT_ID,
            ),
            (
                "an emulator with credentials but no merchant id",
                Input {
                    endpoint: Some(url("http://127.0.0.1:9000")),
                    public_key_id: Some("SANDBOX-X"),
                    sandbox: true,
                    merchant_id: None,
                    private_key: None,
                    ..live()
                },
                MERCHANT_ID,
            ),
            (
                "a merchant id that is no id",
                Input {
                    merchant_id: Some("A2B3-C4"),
                    ..live()
                },
                MERCHANT_ID,
            ),
            (
                "Amazon without a private key file",
                Input {
                    private_key: None,
                    ..live()
                },
                PRIVATE_KEY,
            ),
            (
                "a private key file that is missing",
                Input {
                    private_key: file(Err("not found")),
                    ..live()
                },
                PRIVATE_KEY,
            ),
            (
                "a private key file that is not a key",
                Input {
                    private_key: file(Ok(CERT)),
                    ..live()
                },
                PRIVATE_KEY,
            ),
            (
                "a private key file holding a public key",
                Input {
                    private_key: file(Ok(&keys().public)),
                    ..live()
                },
                PRIVATE_KEY,
            ),
            (
                "a public key that is not the private key's",
                Input {
                    public_key: file(Ok(&keys().other_public)),
                    ..live()
                },
                PUBLIC_KEY,
            ),
            (
                "a public key file that is no key",
                Input {
                    public_key: file(Ok("hello")),
                    ..live()
                },
                PUBLIC_KEY,
            ),
            (
                "a public key without the private key file",
                Input {
                    public_key: file(Ok(&keys().public)),
                    private_key: None,
                    ..none()
                },
                PUBLIC_KEY,
            ),
            (
                "a CA file without a certificate",
                Input {
                    ca_file: file(Ok(&keys().public)),
                    ..none()
                },
                CA_FILE,
            ),
            (
                "a CA file that is missing",
                Input {
                    ca_file: file(Err("not found")),
                    ..none()
                },
                CA_FILE,
            ),
            (
                "a public URL that is no URL",
                Input {
                    sandbox_public_url: Some("shop.example:8443"),
                    ..none()
                },
                SANDBOX_PUBLIC_URL,
            ),
        ];
        for (what, input, flag) in cases {
            match check(&input) {
                Ok(setup) => panic!("{what}: accepted as {setup:?}"),
                Err(e) => {
                    assert_eq!(e.flag, flag, "{what}: {e}");
                    assert!(e.to_string().starts_with(flag), "{what}: {e}");
                }
            }
        }
    }

    #[test]
    fn the_description_shows_the_fingerprint_never_the_key() {
        let setup = check(&live()).unwrap();
        let key = PrivateKey::from_pem(&keys().private).unwrap();
        let text = setup.describe(
            "LIVE-AFVX7ULWSGBZ5535PCUQOY7B",
            "amzn1.application-oa2-client.0123456789abcdef",
            Some("A2B3C4D5E6F7G8"),
            key.public_key(),
        );
        assert!(text.contains("Amazon Pay LIVE, region jp"), "{text}");
        assert!(
            text.contains("static-fe.payments-amazon.com/checkout.js"),
            "{text}"
        );
        assert!(text.contains("SHA256:"), "{text}");
        assert!(
            !text.contains("PRIVATE KEY") && !text.contains("MII"),
            "{text}"
        );
    }

    #[test]
    fn regions_name_their_hosts() {
        for (name, host) in [
            ("jp", "pay-api.amazon.jp"),
            ("JP", "pay-api.amazon.jp"),
            ("na", "pay-api.amazon.com"),
            ("us", "pay-api.amazon.com"),
            ("eu", "pay-api.amazon.eu"),
            ("uk", "pay-api.amazon.eu"),
            ("de", "pay-api.amazon.eu"),
        ] {
            assert_eq!(
                Region::parse(name).map(Region::api_host),
                Some(host),
                "{name}"
            );
        }
        assert_eq!(Region::parse("fe"), None);
    }
}
