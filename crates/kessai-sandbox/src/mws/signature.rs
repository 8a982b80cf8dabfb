//! MWS Signature Version 2: `HMAC(secret, "POST\n{host}\n{path}\n{canonical query}")`, where the
//! canonical query is every parameter but `Signature`, sorted by name, each side percent-encoded
//! (all bytes but `A-Z a-z 0-9 - _ . ~`).
//!
//! Clients differ in small ways Amazon tolerates, so a request is accepted when its signature
//! matches any of: the host with or without its port, upper- or lower-case hex in the
//! percent-encoding (docs/decisions.md).

use base64::Engine as _;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

/// What SigV2 leaves unencoded: the RFC 3986 unreserved characters.
const ENCODE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// `SignatureMethod`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    HmacSha256,
    HmacSha1,
}

impl Method {
    pub fn parse(text: &str) -> Option<Method> {
        match text {
            "HmacSHA256" => Some(Method::HmacSha256),
            "HmacSHA1" => Some(Method::HmacSha1),
            _ => None,
        }
    }

    fn algorithm(self) -> ring::hmac::Algorithm {
        match self {
            Method::HmacSha256 => ring::hmac::HMAC_SHA256,
            Method::HmacSha1 => ring::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
        }
    }
}

/// Percent-encodes as SigV2 does, with upper- (Amazon's) or lower-case hex.
pub fn encode(text: &str, lower_hex: bool) -> String {
    let encoded = utf8_percent_encode(text, ENCODE).to_string();
    if !lower_hex {
        return encoded;
    }
    let mut out = String::with_capacity(encoded.len());
    let mut after_percent = 0;
    for c in encoded.chars() {
        if c == '%' {
            after_percent = 2;
            out.push(c);
        } else if after_percent > 0 {
            after_percent -= 1;
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// The sorted, encoded parameters (without `Signature`).
pub fn canonical_query(params: &[(String, String)], lower_hex: bool) -> String {
    let mut pairs: Vec<&(String, String)> =
        params.iter().filter(|(k, _)| k != "Signature").collect();
    pairs.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.cmp(&b.1)));
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k, lower_hex), encode(v, lower_hex)))
        .collect::<Vec<_>>()
        .join("&")
}

pub fn string_to_sign(host: &str, path: &str, canonical: &str) -> String {
    format!("POST\n{host}\n{path}\n{canonical}")
}

/// The Base64 signature of `data`.
pub fn sign(secret: &str, data: &str, method: Method) -> String {
    let key = ring::hmac::Key::new(method.algorithm(), secret.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(ring::hmac::sign(&key, data.as_bytes()))
}

/// The hosts a client may have signed with: as received (lower-cased), and without its port.
fn host_variants(host: &str) -> Vec<String> {
    let host = host.to_ascii_lowercase();
    let mut out = vec![host.clone()];
    // Not an IPv6 literal's colons: only a trailing `:digits`.
    if let Some((name, port)) = host.rsplit_once(':') {
        if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) && !name.ends_with(':') {
            out.push(name.to_owned());
        }
    }
    out
}

/// Whether `signature` is a valid signature of the request by `secret` (constant time per
/// candidate).
pub fn verify(
    secret: &str,
    host: &str,
    path: &str,
    params: &[(String, String)],
    signature: &str,
    method: Method,
) -> bool {
    let Ok(given) = base64::engine::general_purpose::STANDARD.decode(signature.trim()) else {
        return false;
    };
    let key = ring::hmac::Key::new(method.algorithm(), secret.as_bytes());
    let mut ok = false;
    for lower_hex in [false, true] {
        let canonical = canonical_query(params, lower_hex);
        for h in host_variants(host) {
            let data = string_to_sign(&h, path, &canonical);
            ok |= ring::hmac::verify(&key, data.as_bytes(), &given).is_ok();
        }
    }
    ok
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vector_params() -> Vec<(String, String)> {
        [
            ("AWSAccessKeyId", "AKIDEXAMPLE"),
            ("Action", "CloseBillingAgreement"),
            ("AmazonBillingAgreementId", "C03-1234567-1234567"),
            ("ClosureReason", "テスト 終了*~"),
            ("SellerId", "A1SELLER"),
            ("SignatureMethod", "HmacSHA256"),
            ("SignatureVersion", "2"),
            ("Timestamp", "2024-05-01T12:34:56Z"),
            ("Version", "2013-01-01"),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
    }

    /// The vector of the reference (made by the Python SDK 2.7.1's signing routine).
    #[test]
    fn signs_the_reference_vector() {
        let params = vector_params();
        let canonical = canonical_query(&params, false);
        assert_eq!(
            canonical,
            "AWSAccessKeyId=AKIDEXAMPLE&Action=CloseBillingAgreement&AmazonBillingAgreementId=C03-1234567-1234567&ClosureReason=%E3%83%86%E3%82%B9%E3%83%88%20%E7%B5%82%E4%BA%86%2A~&SellerId=A1SELLER&SignatureMethod=HmacSHA256&SignatureVersion=2&Timestamp=2024-05-01T12%3A34%3A56Z&Version=2013-01-01"
        );
        let data = string_to_sign(
            "mws.amazonservices.jp",
            "/OffAmazonPayments_Sandbox/2013-01-01",
            &canonical,
        );
        let sig = sign("secret", &data, Method::HmacSha256);
        assert_eq!(sig, "9KI3z49ixU6tL9jjCgr79kDfnniPPfXGvUQy/2YqsV0=");
        assert!(verify(
            "secret",
            "mws.amazonservices.jp",
            "/OffAmazonPayments_Sandbox/2013-01-01",
            &params,
            &sig,
            Method::HmacSha256
        ));
        assert!(!verify(
            "other",
            "mws.amazonservices.jp",
            "/OffAmazonPayments_Sandbox/2013-01-01",
            &params,
            &sig,
            Method::HmacSha256
        ));
    }

    #[test]
    fn accepts_the_host_without_its_port_and_lower_case_hex() {
        let params = vector_params();
        let path = "/OffAmazonPayments_Sandbox/2013-01-01";
        let cases = [
            ("127.0.0.1:8080", false, "127.0.0.1:8080", true),
            ("127.0.0.1", false, "127.0.0.1:8080", true),
            ("127.0.0.1:8080", true, "127.0.0.1:8080", true),
            ("127.0.0.1", true, "127.0.0.1:8080", true),
            ("LOCALHOST:9", false, "localhost:9", true),
            ("127.0.0.2", false, "127.0.0.1:8080", false),
            ("127.0.0.1:8081", false, "127.0.0.1:8080", false),
        ];
        for (signed_host, lower, server_host, expected) in cases {
            let data = string_to_sign(
                &signed_host.to_ascii_lowercase(),
                path,
                &canonical_query(&params, lower),
            );
            let sig = sign("s3cr3t", &data, Method::HmacSha256);
            assert_eq!(
                verify(
                    "s3cr3t",
                    server_host,
                    path,
                    &params,
                    &sig,
                    Method::HmacSha256
                ),
                expected,
                "{signed_host} lower={lower}"
            );
        }
        assert!(encode("テ", true).contains("%e3"));
        assert_eq!(encode("a b*~/+=&:", false), "a%20b%2A~%2F%2B%3D%26%3A");
        assert!(!verify(
            "s",
            "h",
            path,
            &params,
            "not base64!",
            Method::HmacSha256
        ));
    }

    #[test]
    fn hmac_sha1_is_accepted_too() {
        let params = vector_params();
        let data = string_to_sign("h", "/p", &canonical_query(&params, false));
        let sig = sign("k", &data, Method::HmacSha1);
        assert!(verify("k", "h", "/p", &params, &sig, Method::HmacSha1));
        assert!(!verify("k", "h", "/p", &params, &sig, Method::HmacSha256));
    }
}
