//! Identifiers as newtypes, parsed once at the edge.

use std::fmt;

/// Why a text is not an acceptable identifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("is empty")]
    Empty,
    #[error("is longer than {max} characters")]
    TooLong { max: usize },
    #[error("may contain only the letters A-Z and a-z, the digits 0-9, '-' and '_'")]
    InvalidCharacters,
}

fn check_token(text: &str, max: usize) -> Result<(), IdError> {
    if text.is_empty() {
        return Err(IdError::Empty);
    }
    if text.chars().count() > max {
        return Err(IdError::TooLong { max });
    }
    if !text
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(IdError::InvalidCharacters);
    }
    Ok(())
}

macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident, $max:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            pub const MAX_LEN: usize = $max;

            pub fn parse(text: &str) -> Result<Self, IdError> {
                check_token(text, $max)?;
                Ok($name(text.to_owned()))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

string_id!(
    /// A merchant's order id: up to 100 of `[A-Za-z0-9_-]`, unique per merchant.
    OrderId,
    100
);
string_id!(
    /// The merchant's account id at the gateway (MDK `merchantCcid`).
    MerchantCcid,
    64
);

/// Where random identifiers come from. Everything that makes an id or a random token takes one,
/// so a test can seed it and get the same ids again.
pub trait IdSource: Send + Sync + fmt::Debug {
    /// Fills `buf` with random bytes.
    fn fill(&self, buf: &mut [u8]);

    /// A uniformly random number below `bound` (`0` when `bound` is `0`).
    fn below(&self, bound: u32) -> u32 {
        if bound == 0 {
            return 0;
        }
        // Rejection sampling: drop the top values that would favour small numbers.
        let zone = u32::MAX - (u32::MAX % bound);
        loop {
            let mut b = [0u8; 4];
            self.fill(&mut b);
            let n = u32::from_le_bytes(b);
            if n < zone {
                return n % bound;
            }
        }
    }

    /// `n` random decimal digits.
    fn digits(&self, n: usize) -> String {
        self.pick(b"0123456789", n)
    }

    /// `n` characters drawn from `alphabet` (ASCII).
    fn pick(&self, alphabet: &[u8], n: usize) -> String {
        let len = u32::try_from(alphabet.len()).unwrap_or(u32::MAX);
        (0..n)
            .filter_map(|_| alphabet.get(self.below(len) as usize))
            .map(|&b| char::from(b))
            .collect()
    }

    /// `bytes` random bytes as lowercase hex.
    fn hex(&self, bytes: usize) -> String {
        let mut buf = vec![0u8; bytes];
        self.fill(&mut buf);
        buf.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// A random (version 4) UUID in its usual text form.
    fn uuid(&self) -> String {
        let mut b = [0u8; 16];
        self.fill(&mut b);
        b[6] = (b[6] & 0x0f) | 0x40;
        b[8] = (b[8] & 0x3f) | 0x80;
        let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
        format!(
            "{}-{}-{}-{}-{}",
            &hex[0..8],
            &hex[8..12],
            &hex[12..16],
            &hex[16..20],
            &hex[20..32]
        )
    }
}

/// A cryptographically strong generator (`rand`'s `StdRng`) started from a seed. Started from a
/// seed read from the operating system it serves a real server; started from a fixed seed it
/// gives every test run the same ids.
pub struct SeededIds {
    rng: std::sync::Mutex<rand::rngs::StdRng>,
}

impl SeededIds {
    /// From 32 bytes of seed (e.g. read from the operating system at start).
    pub fn from_seed(seed: [u8; 32]) -> SeededIds {
        SeededIds {
            rng: std::sync::Mutex::new(rand::SeedableRng::from_seed(seed)),
        }
    }

    /// From a small number, for tests and replays.
    pub fn seeded(seed: u64) -> SeededIds {
        SeededIds {
            rng: std::sync::Mutex::new(rand::SeedableRng::seed_from_u64(seed)),
        }
    }
}

impl fmt::Debug for SeededIds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The generator's state would reveal every id to come.
        f.write_str("SeededIds")
    }
}

impl IdSource for SeededIds {
    fn fill(&self, buf: &mut [u8]) {
        let mut rng = match self.rng.lock() {
            Ok(guard) => guard,
            // A panic elsewhere cannot leave a generator inconsistent: keep drawing.
            Err(poisoned) => poisoned.into_inner(),
        };
        rand::RngCore::fill_bytes(&mut *rng, buf);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_ids() {
        let a = SeededIds::seeded(42);
        let b = SeededIds::seeded(42);
        let c = SeededIds::seeded(43);
        let from_a = (a.uuid(), a.digits(7), a.hex(16));
        assert_eq!(from_a, (b.uuid(), b.digits(7), b.hex(16)));
        assert_ne!(from_a.0, c.uuid());
    }

    #[test]
    fn id_shapes() {
        let ids = SeededIds::seeded(1);
        for _ in 0..200 {
            let u = ids.uuid();
            assert_eq!(u.len(), 36);
            assert_eq!(&u[14..15], "4");
            assert!(matches!(&u[19..20], "8" | "9" | "a" | "b"));
            let d = ids.digits(6);
            assert_eq!(d.len(), 6);
            assert!(d.bytes().all(|b| b.is_ascii_digit()));
            assert!(ids.below(3) < 3);
        }
        assert_eq!(ids.below(0), 0);
        assert_eq!(ids.hex(4).len(), 8);
        assert_eq!(ids.pick(b"AB", 5).len(), 5);
    }

    #[test]
    fn order_id_rules() {
        assert!(OrderId::parse("order-1_A").is_ok());
        assert_eq!(OrderId::parse(""), Err(IdError::Empty));
        assert_eq!(
            OrderId::parse(&"a".repeat(101)),
            Err(IdError::TooLong { max: 100 })
        );
        assert!(OrderId::parse(&"a".repeat(100)).is_ok());
        assert_eq!(OrderId::parse("a/b"), Err(IdError::InvalidCharacters));
        assert_eq!(OrderId::parse("注文"), Err(IdError::InvalidCharacters));
    }
}
