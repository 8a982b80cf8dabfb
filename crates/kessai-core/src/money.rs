//! Money as integers in minor units. No floats anywhere.

use std::fmt;

/// An amount of Japanese yen. JPY has no minor unit, so one unit is one yen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Yen(u64);

/// Why a text is not an acceptable amount of yen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AmountError {
    #[error("is empty")]
    Empty,
    #[error("has a decimal point; yen amounts are whole numbers")]
    Decimal,
    #[error("is negative")]
    Negative,
    #[error("uses non-ASCII (for example full-width) digits; use 0-9")]
    NonAsciiDigits,
    #[error("is not a whole number written with the digits 0-9")]
    NotANumber,
    #[error("is below the minimum of {min}")]
    BelowMinimum { min: u64 },
    #[error("is above the maximum of {max}")]
    AboveMaximum { max: u64 },
}

impl Yen {
    pub const ZERO: Yen = Yen(0);

    pub const fn new(yen: u64) -> Self {
        Yen(yen)
    }

    pub const fn get(self) -> u64 {
        self.0
    }

    pub fn checked_add(self, other: Yen) -> Option<Yen> {
        self.0.checked_add(other.0).map(Yen)
    }

    pub fn checked_sub(self, other: Yen) -> Option<Yen> {
        self.0.checked_sub(other.0).map(Yen)
    }

    pub fn saturating_sub(self, other: Yen) -> Yen {
        Yen(self.0.saturating_sub(other.0))
    }

    /// Parses an amount as merchants write it: ASCII digits only, within `min..=max`.
    ///
    /// Each kind of mistake has its own error so that the caller can tell the merchant exactly
    /// what is wrong ("1.5", "-1" and "１００" are three different mistakes).
    pub fn parse_bounded(text: &str, min: u64, max: u64) -> Result<Yen, AmountError> {
        let text = text.trim_matches(' ');
        if text.is_empty() {
            return Err(AmountError::Empty);
        }
        if text.starts_with('-') {
            return Err(AmountError::Negative);
        }
        if text.contains('.') {
            return Err(AmountError::Decimal);
        }
        if text.chars().any(|c| !c.is_ascii() && c.is_numeric()) {
            return Err(AmountError::NonAsciiDigits);
        }
        if !text.bytes().all(|b| b.is_ascii_digit()) {
            return Err(AmountError::NotANumber);
        }
        // Anything longer than 19 digits cannot fit; it is certainly above any maximum we use.
        let value = match text.trim_start_matches('0') {
            "" => 0,
            digits if digits.len() > 18 => return Err(AmountError::AboveMaximum { max }),
            digits => digits.parse::<u64>().map_err(|_| AmountError::NotANumber)?,
        };
        if value < min {
            return Err(AmountError::BelowMinimum { min });
        }
        if value > max {
            return Err(AmountError::AboveMaximum { max });
        }
        Ok(Yen(value))
    }
}

impl fmt::Display for Yen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// An ISO 4217 currency that Amazon Pay settles in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Currency {
    Jpy,
    Usd,
    Eur,
    Gbp,
}

impl Currency {
    pub fn parse(code: &str) -> Option<Currency> {
        match code {
            "JPY" => Some(Currency::Jpy),
            "USD" => Some(Currency::Usd),
            "EUR" => Some(Currency::Eur),
            "GBP" => Some(Currency::Gbp),
            _ => None,
        }
    }

    pub fn code(self) -> &'static str {
        match self {
            Currency::Jpy => "JPY",
            Currency::Usd => "USD",
            Currency::Eur => "EUR",
            Currency::Gbp => "GBP",
        }
    }

    /// Number of decimal digits of the minor unit.
    pub fn exponent(self) -> u32 {
        match self {
            Currency::Jpy => 0,
            Currency::Usd | Currency::Eur | Currency::Gbp => 2,
        }
    }
}

/// Why a decimal string is not an amount of a currency.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("is not a decimal number")]
    NotDecimal,
    #[error("has more decimal places than {currency} allows ({allowed})")]
    TooManyDecimals {
        currency: &'static str,
        allowed: u32,
    },
    #[error("is negative")]
    Negative,
    #[error("is too large")]
    TooLarge,
}

/// An amount in minor units of a currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Money {
    minor: i64,
    currency: Currency,
}

impl Money {
    pub const fn new(minor: i64, currency: Currency) -> Self {
        Money { minor, currency }
    }

    pub fn jpy(yen: Yen) -> Self {
        Money {
            minor: i64::try_from(yen.get()).unwrap_or(i64::MAX),
            currency: Currency::Jpy,
        }
    }

    pub fn minor(self) -> i64 {
        self.minor
    }

    pub fn currency(self) -> Currency {
        self.currency
    }

    /// Parses a non-negative decimal string such as `"100"`, `"100.5"` or `"100.50"`.
    /// Trailing zeros after the point are accepted for JPY (`"100.00"`); a non-zero fraction is not.
    pub fn parse_decimal(text: &str, currency: Currency) -> Result<Money, MoneyError> {
        let (int_part, frac_part) = match text.split_once('.') {
            Some((i, f)) => (i, f),
            None => (text, ""),
        };
        if int_part.starts_with('-') {
            return Err(MoneyError::Negative);
        }
        if int_part.is_empty()
            || !int_part.bytes().all(|b| b.is_ascii_digit())
            || !frac_part.bytes().all(|b| b.is_ascii_digit())
            || (text.contains('.') && frac_part.is_empty())
        {
            return Err(MoneyError::NotDecimal);
        }
        let exp = currency.exponent() as usize;
        let significant = frac_part.trim_end_matches('0');
        if significant.len() > exp {
            return Err(MoneyError::TooManyDecimals {
                currency: currency.code(),
                allowed: currency.exponent(),
            });
        }
        let mut digits = String::with_capacity(int_part.len() + exp);
        digits.push_str(int_part.trim_start_matches('0'));
        digits.push_str(significant);
        for _ in significant.len()..exp {
            digits.push('0');
        }
        if digits.trim_start_matches('0').len() > 17 {
            return Err(MoneyError::TooLarge);
        }
        let minor = if digits.trim_start_matches('0').is_empty() {
            0
        } else {
            digits.parse::<i64>().map_err(|_| MoneyError::TooLarge)?
        };
        Ok(Money { minor, currency })
    }

    /// Formats as Amazon writes amounts: JPY without decimals, others with two.
    pub fn to_decimal_string(self) -> String {
        let exp = self.currency.exponent();
        if exp == 0 {
            return self.minor.to_string();
        }
        let scale = 10_i64.pow(exp);
        format!(
            "{}.{:0width$}",
            self.minor / scale,
            (self.minor % scale).abs(),
            width = exp as usize
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_bounded_amounts_with_one_error_per_mistake() {
        let cases: &[(&str, Result<u64, AmountError>)] = &[
            ("1", Ok(1)),
            ("10000000", Ok(10_000_000)),
            ("0", Err(AmountError::BelowMinimum { min: 1 })),
            (
                "10000001",
                Err(AmountError::AboveMaximum { max: 10_000_000 }),
            ),
            ("1.5", Err(AmountError::Decimal)),
            ("-1", Err(AmountError::Negative)),
            ("１００", Err(AmountError::NonAsciiDigits)),
            ("12a", Err(AmountError::NotANumber)),
            ("", Err(AmountError::Empty)),
            (
                "99999999999999999999999",
                Err(AmountError::AboveMaximum { max: 10_000_000 }),
            ),
            ("0005", Ok(5)),
        ];
        for (text, expected) in cases {
            let got = Yen::parse_bounded(text, 1, 10_000_000).map(Yen::get);
            assert_eq!(&got, expected, "input {text:?}");
        }
    }

    #[test]
    fn parses_and_formats_decimal_money() {
        let jpy = |s| Money::parse_decimal(s, Currency::Jpy);
        assert_eq!(jpy("100"), Ok(Money::new(100, Currency::Jpy)));
        assert_eq!(jpy("100.00"), Ok(Money::new(100, Currency::Jpy)));
        assert!(matches!(
            jpy("100.5"),
            Err(MoneyError::TooManyDecimals { .. })
        ));
        assert_eq!(jpy("-1"), Err(MoneyError::Negative));
        assert_eq!(jpy("1e3"), Err(MoneyError::NotDecimal));
        assert_eq!(jpy("1."), Err(MoneyError::NotDecimal));
        let usd = Money::parse_decimal("12.3", Currency::Usd);
        assert_eq!(usd, Ok(Money::new(1230, Currency::Usd)));
        assert_eq!(Money::new(1230, Currency::Usd).to_decimal_string(), "12.30");
        assert_eq!(Money::new(5, Currency::Usd).to_decimal_string(), "0.05");
        assert_eq!(Money::new(4200, Currency::Jpy).to_decimal_string(), "4200");
    }
}
