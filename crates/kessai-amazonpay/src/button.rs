//! The signed payload of Amazon's `checkout.js` button (`createCheckoutSessionConfig`).
//!
//! The merchant serialises a Create Checkout Session request once, signs that exact string and
//! hands both to the script; Amazon (or the emulator) creates the checkout session from it when
//! the buyer presses the button. The string to sign is the algorithm name, a newline and the hex
//! SHA-256 of `payloadJSON`, as for API requests; the key and the PSS salt are the same.

use crate::keys::{KeyError, PrivateKey, PublicKey};
use crate::signing::{self, Algorithm};
use base64::Engine as _;

/// `createCheckoutSessionConfig`: the payload exactly as signed, its signature and who signed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedPayload {
    /// `payloadJSON`: the string that was hashed, byte for byte.
    pub payload_json: String,
    /// `signature`: Base64 RSASSA-PSS.
    pub signature: String,
    /// `publicKeyId`.
    pub public_key_id: String,
    /// `algorithm`.
    pub algorithm: Algorithm,
}

impl SignedPayload {
    /// Signs `payload_json` with `AMZN-PAY-RSASSA-PSS-V2`.
    pub fn sign(
        key: &PrivateKey,
        public_key_id: &str,
        payload_json: String,
    ) -> Result<SignedPayload, KeyError> {
        let signature = signing::sign(key, &signing::string_to_sign(Algorithm::V2, &payload_json))?;
        Ok(SignedPayload {
            payload_json,
            signature,
            public_key_id: public_key_id.to_owned(),
            algorithm: Algorithm::V2,
        })
    }
}

/// Why a button payload's signature is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PayloadSignatureError {
    #[error("the signature is not Base64")]
    NotBase64,
    #[error("the signature does not match payloadJSON: it was changed after signing, or signed with another key")]
    Mismatch,
}

/// Checks `signature` (Base64) over `payload_json` with `key`, as `algorithm` names it (salt 32
/// for V2, 20 for the legacy name).
pub fn verify(
    key: &PublicKey,
    algorithm: Algorithm,
    payload_json: &str,
    signature: &str,
) -> Result<(), PayloadSignatureError> {
    let raw = base64::engine::general_purpose::STANDARD
        .decode(signature.trim())
        .map_err(|_| PayloadSignatureError::NotBase64)?;
    let to_sign = signing::string_to_sign(algorithm, payload_json);
    if signing::verify(key, algorithm, &to_sign, &raw) {
        Ok(())
    } else {
        Err(PayloadSignatureError::Mismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signed_payload_verifies_and_a_changed_one_does_not() {
        let key = PrivateKey::generate().unwrap();
        let payload = r#"{"storeId":"amzn1.application-oa2-client.x","webCheckoutDetails":{"checkoutReviewReturnUrl":"https://shop.example/review"}}"#;
        let signed = SignedPayload::sign(&key, "SANDBOX-KEY", payload.to_owned()).unwrap();
        assert_eq!(signed.payload_json, payload);
        let public = key.public_key();
        assert_eq!(
            verify(public, signed.algorithm, payload, &signed.signature),
            Ok(())
        );
        let changed = payload.replace("review", "elsewhere");
        assert_eq!(
            verify(public, signed.algorithm, &changed, &signed.signature),
            Err(PayloadSignatureError::Mismatch)
        );
        let other = PrivateKey::generate().unwrap().public_key().clone();
        assert_eq!(
            verify(&other, signed.algorithm, payload, &signed.signature),
            Err(PayloadSignatureError::Mismatch)
        );
        assert_eq!(
            verify(public, signed.algorithm, payload, "not base64!"),
            Err(PayloadSignatureError::NotBase64)
        );
    }
}
