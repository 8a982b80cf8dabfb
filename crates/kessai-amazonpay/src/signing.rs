//! `AMZN-PAY-RSASSA-PSS` / `AMZN-PAY-RSASSA-PSS-V2` request signatures.
//!
//! Both sides use this module: the client to sign, the emulator to verify. The canonical request is
//! rebuilt from the `SignedHeaders` that the client lists, so clients that sign different header
//! sets (the Node SDK signs `user-agent`, PHP does not) all verify.

use crate::keys::{KeyError, PrivateKey, PublicKey};
use base64::Engine as _;
use sha2::{Digest, Sha256};

/// The signature algorithm named in the `authorization` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    /// `AMZN-PAY-RSASSA-PSS`: PSS salt of 20 bytes (the SDKs' default).
    V1,
    /// `AMZN-PAY-RSASSA-PSS-V2`: PSS salt of 32 bytes.
    V2,
}

impl Algorithm {
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::V1 => "AMZN-PAY-RSASSA-PSS",
            Algorithm::V2 => "AMZN-PAY-RSASSA-PSS-V2",
        }
    }

    pub fn parse(name: &str) -> Option<Algorithm> {
        match name {
            "AMZN-PAY-RSASSA-PSS" => Some(Algorithm::V1),
            "AMZN-PAY-RSASSA-PSS-V2" => Some(Algorithm::V2),
            _ => None,
        }
    }

    pub fn salt_len(self) -> usize {
        match self {
            Algorithm::V1 => 20,
            Algorithm::V2 => 32,
        }
    }
}

/// Lowercase hex SHA-256.
pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// RFC 3986 percent-encoding: everything but `A-Z a-z 0-9 - _ . ~`.
pub fn rfc3986_encode(text: &str) -> String {
    const SET: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~');
    percent_encoding::utf8_percent_encode(text, SET).to_string()
}

/// Canonical query string from already-encoded `name=value` pairs: sorted by name, then value.
pub fn canonical_query(pairs: &[(String, String)]) -> String {
    let mut sorted: Vec<&(String, String)> = pairs.iter().collect();
    sorted.sort();
    sorted
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// Canonical query string from a raw query as received (pairs kept as sent, then sorted).
pub fn canonical_query_from_raw(raw: &str) -> String {
    let pairs: Vec<(String, String)> = raw
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (k.to_owned(), v.to_owned()),
            None => (p.to_owned(), String::new()),
        })
        .collect();
    canonical_query(&pairs)
}

/// The canonical request. `headers` are `(name, value)` with any case of name; only those named
/// in `signed_headers` (lowercase) are used, in sorted order.
pub fn canonical_request(
    method: &str,
    canonical_uri: &str,
    canonical_query: &str,
    headers: &[(String, String)],
    signed_headers: &[String],
    body: &[u8],
) -> Result<String, String> {
    let mut names: Vec<String> = signed_headers
        .iter()
        .map(|h| h.to_ascii_lowercase())
        .collect();
    names.sort();
    names.dedup();
    let mut out = String::new();
    out.push_str(&method.to_ascii_uppercase());
    out.push('\n');
    out.push_str(canonical_uri);
    out.push('\n');
    out.push_str(canonical_query);
    out.push('\n');
    for name in &names {
        let value = headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .ok_or_else(|| format!("signed header {name} is not in the request"))?;
        out.push_str(name);
        out.push(':');
        out.push_str(value);
        out.push('\n');
    }
    out.push('\n');
    out.push_str(&names.join(";"));
    out.push('\n');
    out.push_str(&sha256_hex(body));
    Ok(out)
}

pub fn string_to_sign(algorithm: Algorithm, canonical_request: &str) -> String {
    format!(
        "{}\n{}",
        algorithm.name(),
        sha256_hex(canonical_request.as_bytes())
    )
}

/// A parsed `authorization` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization {
    pub algorithm: Algorithm,
    pub public_key_id: String,
    pub signed_headers: Vec<String>,
    pub signature: Vec<u8>,
}

/// Why an `authorization` header is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthorizationError {
    #[error(
        "the authorization header is not '<algorithm> PublicKeyId=…, SignedHeaders=…, Signature=…'"
    )]
    Malformed,
    #[error("unknown signature algorithm {0}")]
    UnknownAlgorithm(String),
    #[error("the signature is not Base64")]
    SignatureNotBase64,
}

pub fn parse_authorization(header: &str) -> Result<Authorization, AuthorizationError> {
    let (algorithm, rest) = header
        .split_once(' ')
        .ok_or(AuthorizationError::Malformed)?;
    let mut public_key_id = None;
    let mut signed_headers = None;
    let mut signature = None;
    for part in rest.split(", ") {
        let (key, value) = part.split_once('=').ok_or(AuthorizationError::Malformed)?;
        match key.trim() {
            "PublicKeyId" => public_key_id = Some(value.trim()),
            "SignedHeaders" => signed_headers = Some(value.trim()),
            "Signature" => signature = Some(value.trim()),
            _ => return Err(AuthorizationError::Malformed),
        }
    }
    let (Some(public_key_id), Some(signed_headers), Some(signature)) =
        (public_key_id, signed_headers, signature)
    else {
        return Err(AuthorizationError::Malformed);
    };
    if public_key_id.is_empty() || signed_headers.is_empty() {
        return Err(AuthorizationError::Malformed);
    }
    let algorithm = Algorithm::parse(algorithm)
        .ok_or_else(|| AuthorizationError::UnknownAlgorithm(algorithm.to_owned()))?;
    let signature = base64::engine::general_purpose::STANDARD
        .decode(signature)
        .map_err(|_| AuthorizationError::SignatureNotBase64)?;
    Ok(Authorization {
        algorithm,
        public_key_id: public_key_id.to_owned(),
        signed_headers: signed_headers
            .split(';')
            .map(|h| h.to_ascii_lowercase())
            .collect(),
        signature,
    })
}

/// Signs a string to sign with V2 (ring implements PSS with a salt as long as the digest).
pub fn sign(key: &PrivateKey, string_to_sign: &str) -> Result<String, KeyError> {
    let signature = key.sign_pss_sha256(string_to_sign.as_bytes())?;
    Ok(base64::engine::general_purpose::STANDARD.encode(signature))
}

pub fn verify(
    key: &PublicKey,
    algorithm: Algorithm,
    string_to_sign: &str,
    signature: &[u8],
) -> bool {
    key.verify_pss_sha256(string_to_sign.as_bytes(), signature, algorithm.salt_len())
}

pub fn authorization_header(
    public_key_id: &str,
    signed_headers: &[String],
    signature_b64: &str,
) -> String {
    format!(
        "{} PublicKeyId={}, SignedHeaders={}, Signature={}",
        Algorithm::V2.name(),
        public_key_id,
        signed_headers.join(";"),
        signature_b64
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn java_headers() -> Vec<(String, String)> {
        [
            ("accept", "application/json"),
            ("content-type", "application/json"),
            ("x-amz-pay-date", "20180524T223710Z"),
            ("x-amz-pay-host", "pay-api.amazon.eu"),
            ("x-amz-pay-region", "EU"),
        ]
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
    }

    fn signed(headers: &[(String, String)]) -> Vec<String> {
        headers.iter().map(|(n, _)| n.clone()).collect()
    }

    fn encode_pairs(pairs: &[(&str, &str)]) -> String {
        let encoded: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (rfc3986_encode(k), rfc3986_encode(v)))
            .collect();
        canonical_query(&encoded)
    }

    /// The Java SDK's vectors (amazon-pay-v2.md §2.4 A): line 2 of StringToSign.
    #[test]
    fn java_sdk_vectors() {
        let nonunreserved = "@#$%^&+=/,?><`\";:\\|][{} ";
        let cases: Vec<(&str, String, String, &str)> = vec![
            (
                "GET",
                "/".into(),
                String::new(),
                "bb49552975c396f1e49d5510e1555b8b0627dc491bc61aaefdb561f202ad8020",
            ),
            (
                "GET",
                "/-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz".into(),
                String::new(),
                "a0e5dd63e175587f29d51c6b08be5c746a568209ac66ab1f967e0ba515aa80bc",
            ),
            (
                "GET",
                format!("/{}", rfc3986_encode("\u{1234}")),
                String::new(),
                "77f6544c8fb336d430895659da1e30415a1558b4b013f4d7926bb3a6275f701d",
            ),
            (
                "GET",
                "/".into(),
                encode_pairs(&[("\u{1234}", "bar")]),
                "ef1007307504f2ca9f0b6310b04056f5d3d6d18e7bf3d90663133f19ec132ecc",
            ),
            (
                "POST",
                "/".into(),
                String::new(),
                "54156f5badd6da7fa630b2c334c808ad376530001d334ae9960457215aa626d3",
            ),
            (
                "POST",
                "/".into(),
                encode_pairs(&[("foo", "bar")]),
                "cc82525870b2d03666c287fd8b2c0d2fc6fa1693d9f357d27f7cac8cbcc12832",
            ),
            (
                "GET",
                "/".into(),
                encode_pairs(&[("foo", "b"), ("foo", "a")]),
                "a33266ec31c7f0ca8a0738eb49fb8c81319f14374a0b86d52e6911a9748a6d42",
            ),
            (
                "GET",
                "/".into(),
                encode_pairs(&[("a", "foo"), ("b", "foo")]),
                "6615ba7ca3734e97b35013f77c74d111ce2fa63ab52be161ad41bcd4b010120f",
            ),
            (
                "GET",
                "/".into(),
                encode_pairs(&[("A.1", "foo"), ("A.2", "foo"), ("A.10", "foo")]),
                "29d908d70c4bb50d62272976787245b52ed52e569fdae56ef3aa6d8979978ee7",
            ),
            (
                "GET",
                "/".into(),
                encode_pairs(&[("foo", "aha"), ("foo", "Zoo")]),
                "f379cbd2e2fc9d5d50667a07ec22996335f731b474bb8bd366647d05d958c9d5",
            ),
            (
                "POST",
                "/".into(),
                encode_pairs(&[("f oo", "b ar")]),
                "99be3aeb19b5a1aebafc807d59f3740d3e604ae31cf928592fa70739ea64bb32",
            ),
            (
                "POST",
                "/".into(),
                encode_pairs(&[(nonunreserved, nonunreserved)]),
                "66bbbf2b5d6d297a9393abbc0b4f9d62e30666bb0ec0dea8f1d4e45551440e4c",
            ),
        ];
        let headers = java_headers();
        for (method, uri, query, expected) in cases {
            let canonical =
                canonical_request(method, &uri, &query, &headers, &signed(&headers), b"")
                    .unwrap_or_default();
            let sts = string_to_sign(Algorithm::V1, &canonical);
            assert_eq!(
                sts,
                format!("AMZN-PAY-RSASSA-PSS\n{expected}"),
                "{method} {uri} {query}"
            );
        }
    }

    #[test]
    fn get_vanilla_canonical_request_in_full() {
        let headers = java_headers();
        let canonical = canonical_request("GET", "/", "", &headers, &signed(&headers), b"");
        assert_eq!(
            canonical.as_deref(),
            Ok("GET\n/\n\naccept:application/json\ncontent-type:application/json\nx-amz-pay-date:20180524T223710Z\nx-amz-pay-host:pay-api.amazon.eu\nx-amz-pay-region:EU\n\naccept;content-type;x-amz-pay-date;x-amz-pay-host;x-amz-pay-region\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        );
    }

    /// The docs example (§2.4 B), whose body hash is given rather than computed.
    #[test]
    fn docs_example_string_to_sign() {
        let canonical = "POST\n/live/v2/checkoutSessions\n\naccept:application/json\ncontent-type:application/json\nx-amz-pay-date:20190923T231908Z\nx-amz-pay-host:pay-api.amazon.com\nx-amz-pay-idempotency-key:cllHyiNvS8cJ8Zas\nx-amz-pay-region:us\n\naccept;content-type;x-amz-pay-date;x-amz-pay-host;x-amz-pay-idempotency-key;x-amz-pay-region\n0b6c19dc5bc1883ebd68d3c77ee929922c6b4a59e0a506d96c45e0c024c3295b";
        assert_eq!(
            string_to_sign(Algorithm::V1, canonical),
            "AMZN-PAY-RSASSA-PSS\n2f872f4c389cdc08e1ce630d688f675a1dc00f4fb4d7e5221f33656daa4f3dca"
        );
    }

    /// The JP / V2 vector (§2.4 C), built from its parts.
    #[test]
    fn jp_v2_vector() {
        let body = br#"{"webCheckoutDetails":{"checkoutReviewReturnUrl":"https://a.example/review"},"storeId":"amzn1.application-oa2-client.x"}"#;
        assert_eq!(
            sha256_hex(body),
            "01795d85410983453ba1e885384ac895e222c26bd8b64b4fd660a8d4664a7bd6"
        );
        let headers: Vec<(String, String)> = [
            ("Accept", "application/json"),
            ("Content-Type", "application/json"),
            ("X-Amz-Pay-Date", "20240101T000000Z"),
            ("X-Amz-Pay-Host", "pay-api.amazon.jp"),
            ("X-Amz-Pay-Idempotency-Key", "abc123"),
            ("X-Amz-Pay-Region", "jp"),
            ("User-Agent", "not signed"),
        ]
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
        let signed: Vec<String> = "accept;content-type;x-amz-pay-date;x-amz-pay-host;x-amz-pay-idempotency-key;x-amz-pay-region"
            .split(';')
            .map(String::from)
            .collect();
        let canonical =
            canonical_request("POST", "/v2/checkoutSessions", "", &headers, &signed, body)
                .unwrap_or_default();
        assert_eq!(
            string_to_sign(Algorithm::V2, &canonical),
            "AMZN-PAY-RSASSA-PSS-V2\n567717d17eb45485e6cfe0869ae8f6210989362f7ae257e9542adb5b20e1c551"
        );
    }

    #[test]
    fn sign_then_verify_and_tampering_fails() {
        let Ok(key) = PrivateKey::generate() else {
            unreachable!("key generation failed")
        };
        let sts = string_to_sign(Algorithm::V2, "GET\n/\n\n\n\n");
        let sig = sign(&key, &sts).unwrap_or_default();
        let header = authorization_header(
            "SANDBOX-X",
            &["accept".into(), "x-amz-pay-date".into()],
            &sig,
        );
        let parsed = parse_authorization(&header);
        let Ok(parsed) = parsed else {
            unreachable!("{parsed:?}")
        };
        assert_eq!(parsed.algorithm, Algorithm::V2);
        assert_eq!(parsed.signed_headers, vec!["accept", "x-amz-pay-date"]);
        assert!(verify(
            key.public_key(),
            Algorithm::V2,
            &sts,
            &parsed.signature
        ));
        // the same signature does not verify as V1 (salt 20), nor for another message
        assert!(!verify(
            key.public_key(),
            Algorithm::V1,
            &sts,
            &parsed.signature
        ));
        assert!(!verify(
            key.public_key(),
            Algorithm::V2,
            "other",
            &parsed.signature
        ));
    }

    #[test]
    fn raw_query_is_sorted_not_reencoded() {
        assert_eq!(
            canonical_query_from_raw("b=2&a=x%20y&a=1"),
            "a=1&a=x%20y&b=2"
        );
        assert_eq!(canonical_query_from_raw(""), "");
    }

    #[test]
    fn malformed_authorization_headers() {
        assert_eq!(
            parse_authorization("nonsense"),
            Err(AuthorizationError::Malformed)
        );
        assert!(matches!(
            parse_authorization("HMAC PublicKeyId=a, SignedHeaders=b, Signature=AAAA"),
            Err(AuthorizationError::UnknownAlgorithm(_))
        ));
        assert_eq!(
            parse_authorization("AMZN-PAY-RSASSA-PSS PublicKeyId=a, SignedHeaders=b, Signature=!!"),
            Err(AuthorizationError::SignatureNotBase64)
        );
    }
}
