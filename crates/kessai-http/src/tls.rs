//! One port, two protocols: a connection whose first byte opens a TLS handshake is served over
//! HTTPS, any other over plain HTTP. SDKs get the HTTPS they insist on; buyers' browsers and
//! tools get plain HTTP without certificate warnings.

use axum::Router;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use std::path::Path;
use std::sync::Arc;
use tokio::net::{TcpListener, TcpStream};

/// The first byte of a TLS record carrying a handshake.
const TLS_HANDSHAKE: u8 = 0x16;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot make a certificate: {0}")]
    Generate(String),
    #[error("cannot read {path}: {detail}")]
    Read { path: String, detail: String },
    #[error("TLS configuration: {0}")]
    Config(String),
}

/// A server's TLS configuration.
pub type TlsConfig = Arc<rustls::ServerConfig>;

/// A certificate and its key, in PEM.
#[derive(Debug, Clone)]
pub struct CertifiedKey {
    pub cert_pem: String,
    pub key_pem: String,
}

/// A local certificate authority and a server certificate it signed for `localhost`,
/// `127.0.0.1` and `::1`: clients that verify the server (the MDK checks the gateway against its
/// `CA_CERT_FILE`) trust the CA's certificate.
#[derive(Debug, Clone)]
pub struct LocalCa {
    pub ca_cert_pem: String,
    /// The server's certificate (followed by the CA's) and key.
    pub server: CertifiedKey,
}

/// Makes a new local CA and a server certificate for `localhost`, `127.0.0.1`, `::1` and `extra`.
pub fn local_ca(extra: &[String]) -> Result<LocalCa, TlsError> {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
        KeyUsagePurpose,
    };
    let fail = |e: rcgen::Error| TlsError::Generate(e.to_string());
    let ca_key = KeyPair::generate().map_err(fail)?;
    let mut ca = CertificateParams::new(Vec::<String>::new()).map_err(fail)?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "Kessai local certificate authority");
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_cert = ca.self_signed(&ca_key).map_err(fail)?;
    let mut names = vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
    ];
    names.extend(extra.iter().cloned());
    let key = KeyPair::generate().map_err(fail)?;
    let mut leaf = CertificateParams::new(names).map_err(fail)?;
    leaf.distinguished_name
        .push(DnType::CommonName, "localhost");
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    leaf.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    let cert = leaf.signed_by(&key, &ca_cert, &ca_key).map_err(fail)?;
    Ok(LocalCa {
        ca_cert_pem: ca_cert.pem(),
        server: CertifiedKey {
            cert_pem: format!("{}{}", cert.pem(), ca_cert.pem()),
            key_pem: key.serialize_pem(),
        },
    })
}

/// Amazon Pay's API hosts (`pay-api.amazon.jp`, `.com`, `.eu`). The emulator's self-signed
/// certificate names them too, so an SDK that always dials Amazon's host, sent through the
/// emulator's `CONNECT` tunnel ([`crate::tunnel`]), accepts the emulator once it trusts that
/// certificate. Its key is made at each start and never written, so trusting the file trusts
/// only that running emulator.
pub fn amazon_api_hosts() -> Vec<String> {
    [
        "pay-api.amazon.jp",
        "pay-api.amazon.com",
        "pay-api.amazon.eu",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect()
}

/// A self-signed certificate for `localhost` and `127.0.0.1` (and `extra` names).
pub fn self_signed(extra: &[String]) -> Result<CertifiedKey, TlsError> {
    let mut names = vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
    ];
    names.extend(extra.iter().cloned());
    let certified =
        rcgen::generate_simple_self_signed(names).map_err(|e| TlsError::Generate(e.to_string()))?;
    Ok(CertifiedKey {
        cert_pem: certified.cert.pem(),
        key_pem: certified.key_pair.serialize_pem(),
    })
}

pub fn read_pair(cert: &Path, key: &Path) -> Result<CertifiedKey, TlsError> {
    let read = |p: &Path| {
        std::fs::read_to_string(p).map_err(|e| TlsError::Read {
            path: p.display().to_string(),
            detail: e.to_string(),
        })
    };
    Ok(CertifiedKey {
        cert_pem: read(cert)?,
        key_pem: read(key)?,
    })
}

fn pem_blocks(pem: &str, label: &str) -> Vec<Vec<u8>> {
    use base64::Engine as _;
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let mut out = Vec::new();
    let mut rest = pem;
    while let Some(start) = rest.find(&begin) {
        let after = &rest[start + begin.len()..];
        let Some(stop) = after.find(&end) else { break };
        let body: String = after[..stop]
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect();
        if let Ok(der) = base64::engine::general_purpose::STANDARD.decode(body) {
            out.push(der);
        }
        rest = &after[stop + end.len()..];
    }
    out
}

pub fn server_config(pair: &CertifiedKey) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let certs: Vec<CertificateDer<'static>> = pem_blocks(&pair.cert_pem, "CERTIFICATE")
        .into_iter()
        .map(CertificateDer::from)
        .collect();
    if certs.is_empty() {
        return Err(TlsError::Config("no certificate in the PEM".into()));
    }
    let key = pem_blocks(&pair.key_pem, "PRIVATE KEY")
        .into_iter()
        .next()
        .ok_or_else(|| {
            TlsError::Config("no PKCS#8 private key (BEGIN PRIVATE KEY) in the PEM".into())
        })?;
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key));
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| TlsError::Config(e.to_string()))?
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .map_err(|e| TlsError::Config(e.to_string()))?;
    Ok(Arc::new(config))
}

/// A stream HTTP is read from: a TLS session or the plain connection.
trait Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> Io for T {}

/// Serves `router` on `listener` within `limits`, HTTPS when the client opens with TLS (and
/// `tls` is set).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    tls: Option<Arc<rustls::ServerConfig>>,
    limits: crate::Limits,
) -> std::io::Result<()> {
    let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
    crate::serve(listener, router, limits, move |stream: TcpStream| {
        let acceptor = acceptor.clone();
        async move {
            let mut first = [0u8; 1];
            let is_tls =
                matches!(stream.peek(&mut first).await, Ok(1) if first[0] == TLS_HANDSHAKE);
            match (is_tls, acceptor) {
                (true, Some(acceptor)) => match acceptor.accept(stream).await {
                    Ok(tls_stream) => Some(Box::new(tls_stream) as Box<dyn Io>),
                    Err(e) => {
                        tracing::debug!(%e, "TLS handshake failed");
                        None
                    }
                },
                _ => Some(Box::new(stream) as Box<dyn Io>),
            }
        }
    })
    .await
}
