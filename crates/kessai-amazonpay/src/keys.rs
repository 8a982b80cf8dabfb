//! RSA keys: PEM parsing and generation with `rsa`, fast signing with `ring`.

use rsa::pkcs1::{DecodeRsaPrivateKey, DecodeRsaPublicKey};
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
        let public = PublicKey {
            key: key.to_public_key(),
        };
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

/// An RSA public key, used to verify request signatures.
#[derive(Clone, PartialEq, Eq)]
pub struct PublicKey {
    key: rsa::RsaPublicKey,
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PublicKey(..)")
    }
}

impl PublicKey {
    pub fn from_pem(pem: &str) -> Result<PublicKey, KeyError> {
        use rsa::traits::PublicKeyParts;
        let key = rsa::RsaPublicKey::from_public_key_pem(pem)
            .or_else(|_| rsa::RsaPublicKey::from_pkcs1_pem(pem))
            .map_err(|e| KeyError::PublicPem(e.to_string()))?;
        if key.size() < 256 {
            return Err(KeyError::TooShort);
        }
        Ok(PublicKey { key })
    }

    /// SPKI PEM (`-----BEGIN PUBLIC KEY-----`).
    pub fn to_pem(&self) -> Result<String, KeyError> {
        self.key
            .to_public_key_pem(LineEnding::LF)
            .map_err(|e| KeyError::PublicPem(e.to_string()))
    }

    /// Verifies RSASSA-PSS SHA-256 / MGF1-SHA-256 with exactly `salt_len` bytes of salt.
    pub fn verify_pss_sha256(&self, message: &[u8], signature: &[u8], salt_len: usize) -> bool {
        use sha2::Digest;
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
