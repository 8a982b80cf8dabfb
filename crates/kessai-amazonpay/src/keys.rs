//! RSA keys: PEM parsing and generation with `rsa`, fast signing and V2 verification with `ring`.

use rsa::pkcs1::{DecodeRsaPrivateKey, DecodeRsaPublicKey, EncodeRsaPublicKey};
use rsa::pkcs8::{
    DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey, LineEnding,
};
use std::fmt;

/// Why a key could not be read or made.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("not an RSA private key in PEM (PKCS#1 or PKCS#8): {0}")]
    PrivatePem(String),
    #[error("not an RSA public key in PEM (SPKI or PKCS#1): {0}")]
    PublicPem(String),
    #[error("the key must be at least 2048 bits")]
    TooShort,
    #[error("key generation failed: {0}")]
    Generate(String),
}

/// An RSA private key. Its `Debug` prints nothing of the key.
pub struct PrivateKey {
    ring: ring::signature::RsaKeyPair,
    pkcs8_pem: String,
    public: PublicKey,
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PrivateKey(..)")
    }
}

impl PrivateKey {
    pub fn from_pem(pem: &str) -> Result<PrivateKey, KeyError> {
        let key = rsa::RsaPrivateKey::from_pkcs8_pem(pem)
            .or_else(|_| rsa::RsaPrivateKey::from_pkcs1_pem(pem))
            .map_err(|e| KeyError::PrivatePem(e.to_string()))?;
        PrivateKey::from_rsa(key)
    }

    /// A new 2048-bit key.
    pub fn generate() -> Result<PrivateKey, KeyError> {
        let mut rng = rand::thread_rng();
        let key = rsa::RsaPrivateKey::new(&mut rng, 2048)
            .map_err(|e| KeyError::Generate(e.to_string()))?;
        PrivateKey::from_rsa(key)
    }

    fn from_rsa(key: rsa::RsaPrivateKey) -> Result<PrivateKey, KeyError> {
        use rsa::traits::PublicKeyParts;
        if key.size() < 256 {
            return Err(KeyError::TooShort);
        }
        let der = key
            .to_pkcs8_der()
            .map_err(|e| KeyError::PrivatePem(e.to_string()))?;
        let ring = ring::signature::RsaKeyPair::from_pkcs8(der.as_bytes())
            .map_err(|e| KeyError::PrivatePem(e.to_string()))?;
        let pkcs8_pem = key
            .to_pkcs8_pem(LineEnding::LF)
            .map_err(|e| KeyError::PrivatePem(e.to_string()))?
            .to_string();
        let public = PublicKey::from_rsa(key.to_public_key())?;
        Ok(PrivateKey {
            ring,
            pkcs8_pem,
            public,
        })
    }

    pub fn to_pem(&self) -> &str {
        &self.pkcs8_pem
    }

    pub fn public_key(&self) -> &PublicKey {
        &self.public
    }

    /// RSASSA-PSS with SHA-256 and a 32-byte salt (what `AMZN-PAY-RSASSA-PSS-V2` names).
    pub fn sign_pss_sha256(&self, message: &[u8]) -> Result<Vec<u8>, KeyError> {
        let rng = ring::rand::SystemRandom::new();
        let mut signature = vec![0u8; self.ring.public().modulus_len()];
        self.ring
            .sign(
                &ring::signature::RSA_PSS_SHA256,
                &rng,
                message,
                &mut signature,
            )
            .map_err(|e| KeyError::Generate(e.to_string()))?;
        Ok(signature)
    }

    /// RSASSA-PKCS1-v1_5 with SHA-256 (what SNS `SignatureVersion` 2 uses).
    pub fn sign_pkcs1_sha256(&self, message: &[u8]) -> Result<Vec<u8>, KeyError> {
        let rng = ring::rand::SystemRandom::new();
        let mut signature = vec![0u8; self.ring.public().modulus_len()];
        self.ring
            .sign(
                &ring::signature::RSA_PKCS1_SHA256,
                &rng,
                message,
                &mut signature,
            )
            .map_err(|e| KeyError::Generate(e.to_string()))?;
        Ok(signature)
    }
}

/// The only PSS salt length ring verifies with SHA-256: the digest's length.
const RING_PSS_SALT_LEN: usize = 32;

/// An RSA public key, used to verify request signatures.
#[derive(Clone, PartialEq, Eq)]
pub struct PublicKey {
    key: rsa::RsaPublicKey,
    /// The key as ring reads it (PKCS#1 DER), for the PSS checks ring can make.
    pkcs1_der: Vec<u8>,
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PublicKey(..)")
    }
}

impl PublicKey {
    pub fn from_pem(pem: &str) -> Result<PublicKey, KeyError> {
        let key = rsa::RsaPublicKey::from_public_key_pem(pem)
            .or_else(|_| rsa::RsaPublicKey::from_pkcs1_pem(pem))
            .map_err(|e| KeyError::PublicPem(e.to_string()))?;
        PublicKey::from_rsa(key)
    }

    fn from_rsa(key: rsa::RsaPublicKey) -> Result<PublicKey, KeyError> {
        use rsa::traits::PublicKeyParts;
        if key.size() < 256 {
            return Err(KeyError::TooShort);
        }
        let pkcs1_der = key
            .to_pkcs1_der()
            .map_err(|e| KeyError::PublicPem(e.to_string()))?
            .as_bytes()
            .to_vec();
        Ok(PublicKey { key, pkcs1_der })
    }

    /// SPKI PEM (`-----BEGIN PUBLIC KEY-----`).
    pub fn to_pem(&self) -> Result<String, KeyError> {
        self.key
            .to_public_key_pem(LineEnding::LF)
            .map_err(|e| KeyError::PublicPem(e.to_string()))
    }

    /// Verifies RSASSA-PSS SHA-256 / MGF1-SHA-256 with exactly `salt_len` bytes of salt.
    ///
    /// A salt as long as the digest (32 bytes, V2) is checked with ring, about ten times faster;
    /// ring checks no other salt length, so V1's 20 bytes go to the `rsa` crate.
    pub fn verify_pss_sha256(&self, message: &[u8], signature: &[u8], salt_len: usize) -> bool {
        use rsa::traits::PublicKeyParts;
        use sha2::Digest;
        // ring takes moduli of 2048 to 8192 bits; a larger key stays with the `rsa` crate.
        if salt_len == RING_PSS_SALT_LEN && self.key.size() <= 1024 {
            return ring::signature::UnparsedPublicKey::new(
                &ring::signature::RSA_PSS_2048_8192_SHA256,
                &self.pkcs1_der,
            )
            .verify(message, signature)
            .is_ok();
        }
        let hashed = sha2::Sha256::digest(message);
        let scheme = rsa::Pss::new_with_salt::<sha2::Sha256>(salt_len);
        self.key.verify(scheme, &hashed, signature).is_ok()
    }

    /// Verifies RSASSA-PKCS1-v1_5 with SHA-256.
    pub fn verify_pkcs1_sha256(&self, message: &[u8], signature: &[u8]) -> bool {
        use sha2::Digest;
        let hashed = sha2::Sha256::digest(message);
        let scheme = rsa::Pkcs1v15Sign::new::<sha2::Sha256>();
        self.key.verify(scheme, &hashed, signature).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::Digest;

    /// A PSS signature made by the `rsa` crate with `salt_len` bytes of salt.
    fn rsa_signature(key: &rsa::RsaPrivateKey, message: &[u8], salt_len: usize) -> Vec<u8> {
        let hashed = sha2::Sha256::digest(message);
        let scheme = rsa::Pss::new_with_salt::<sha2::Sha256>(salt_len);
        key.sign_with_rng(&mut rand::thread_rng(), scheme, &hashed)
            .unwrap_or_default()
    }

    #[test]
    fn pss_salt_32_by_ring_and_salt_20_by_rsa_each_verify_only_their_own_length() {
        let Ok(private) = rsa::RsaPrivateKey::new(&mut rand::thread_rng(), 2048) else {
            unreachable!("key generation failed")
        };
        let Ok(public) = PublicKey::from_rsa(private.to_public_key()) else {
            unreachable!("the public key is refused")
        };
        let message = b"AMZN-PAY-RSASSA-PSS-V2\nabc";
        let salt_32 = rsa_signature(&private, message, 32);
        let salt_20 = rsa_signature(&private, message, 20);
        assert!(public.verify_pss_sha256(message, &salt_32, 32));
        assert!(!public.verify_pss_sha256(message, &salt_32, 20));
        assert!(public.verify_pss_sha256(message, &salt_20, 20));
        assert!(!public.verify_pss_sha256(message, &salt_20, 32));
        assert!(!public.verify_pss_sha256(b"another message", &salt_32, 32));
        let mut tampered = salt_32.clone();
        if let Some(b) = tampered.last_mut() {
            *b ^= 1;
        }
        assert!(!public.verify_pss_sha256(message, &tampered, 32));
        assert!(!public.verify_pss_sha256(message, &[], 32));
    }
}
