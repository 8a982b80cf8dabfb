//! The form parameters of one MWS request, read into typed values with Amazon's defaults.

use super::error::MwsError;
use kessai_core::{Currency, Money, MoneyError};
use std::collections::BTreeMap;

#[derive(Debug, Clone)]
pub struct Params {
    /// As received, in order (the signature is checked over these).
    pairs: Vec<(String, String)>,
    map: BTreeMap<String, String>,
}

impl Params {
    /// Reads a form body (`+` is a space). A parameter given twice is refused: the signature
    /// and the operation could read different values.
    pub fn parse(body: &[u8]) -> Result<Params, MwsError> {
        let pairs: Vec<(String, String)> = form_urlencoded::parse(body)
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        let mut map = BTreeMap::new();
        for (k, v) in &pairs {
            if map.insert(k.clone(), v.clone()).is_some() {
                return Err(MwsError::invalid(
                    k,
                    "the parameter is given more than once.",
                ));
            }
        }
        Ok(Params { pairs, map })
    }

    pub fn pairs(&self) -> &[(String, String)] {
        &self.pairs
    }

    /// The value, if given and not empty.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.map
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    pub fn required(&self, name: &str) -> Result<&str, MwsError> {
        self.get(name).ok_or_else(|| MwsError::missing(name))
    }

    /// Free text of at most `max` characters.
    pub fn text(&self, name: &str, max: usize) -> Result<Option<String>, MwsError> {
        match self.get(name) {
            Some(v) if v.chars().count() > max => Err(MwsError::invalid(
                name,
                format!("it is longer than {max} characters."),
            )),
            v => Ok(v.map(str::to_owned)),
        }
    }

    /// `true` / `false` (any case); `default` when left out.
    pub fn boolean(&self, name: &str, default: bool) -> Result<bool, MwsError> {
        match self.get(name) {
            None => Ok(default),
            Some(v) if v.eq_ignore_ascii_case("true") => Ok(true),
            Some(v) if v.eq_ignore_ascii_case("false") => Ok(false),
            Some(_) => Err(MwsError::invalid(name, "it must be true or false.")),
        }
    }

    /// A reference id: 1 to 32 of `A-Z a-z 0-9 - _`.
    pub fn reference_id(&self, name: &str) -> Result<String, MwsError> {
        let v = self.required(name)?;
        if v.len() > 32
            || !v
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(MwsError::invalid(
                name,
                "it must be 1 to 32 characters of A-Z, a-z, 0-9, '-' and '_'.",
            ));
        }
        Ok(v.to_owned())
    }

    /// `TransactionTimeout`: minutes, 0 (synchronous) to 1440; 1440 when left out.
    pub fn transaction_timeout(&self) -> Result<u32, MwsError> {
        const NAME: &str = "TransactionTimeout";
        match self.get(NAME) {
            None => Ok(1440),
            Some(v) => v
                .parse::<u32>()
                .ok()
                .filter(|n| *n <= 1440 && v.bytes().all(|b| b.is_ascii_digit()))
                .ok_or_else(|| {
                    MwsError::invalid(NAME, "it must be a whole number of minutes from 0 to 1440.")
                }),
        }
    }

    /// `{prefix}.Amount` and `{prefix}.CurrencyCode`, both required.
    pub fn money(&self, prefix: &str) -> Result<Money, MwsError> {
        let amount_name = format!("{prefix}.Amount");
        let code_name = format!("{prefix}.CurrencyCode");
        let amount = self.required(&amount_name)?;
        let code = self.required(&code_name)?;
        let currency = Currency::parse(code).ok_or_else(|| {
            MwsError::invalid(
                &code_name,
                format!("{code} is not a currency Amazon Pay takes."),
            )
        })?;
        let money = Money::parse_decimal(amount, currency).map_err(|e| {
            let why = match e {
                MoneyError::TooManyDecimals { currency, allowed } => {
                    format!("{currency} amounts take at most {allowed} decimal places.")
                }
                other => format!("the amount {other}."),
            };
            MwsError::invalid(&amount_name, why)
        })?;
        if money.minor() <= 0 {
            return Err(MwsError::invalid(
                &amount_name,
                "the amount must be greater than 0.",
            ));
        }
        Ok(money)
    }

    /// As [`Params::money`], when `{prefix}.Amount` is given.
    pub fn optional_money(&self, prefix: &str) -> Result<Option<Money>, MwsError> {
        if self.get(&format!("{prefix}.Amount")).is_none() {
            return Ok(None);
        }
        self.money(prefix).map(Some)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn p(body: &str) -> Params {
        Params::parse(body.as_bytes()).unwrap()
    }

    #[test]
    #[allow(clippy::type_complexity)]
    fn money_is_read_strictly() {
        let cases: &[(&str, Result<(i64, Currency), &str>)] = &[
            (
                "A.Amount=1000&A.CurrencyCode=JPY",
                Ok((1000, Currency::Jpy)),
            ),
            (
                "A.Amount=1000.00&A.CurrencyCode=JPY",
                Ok((1000, Currency::Jpy)),
            ),
            (
                "A.Amount=10.5&A.CurrencyCode=USD",
                Ok((1050, Currency::Usd)),
            ),
            (
                "A.Amount=100.123&A.CurrencyCode=JPY",
                Err("InvalidParameterValue"),
            ),
            (
                "A.Amount=10.123&A.CurrencyCode=USD",
                Err("InvalidParameterValue"),
            ),
            (
                "A.Amount=1.5&A.CurrencyCode=JPY",
                Err("InvalidParameterValue"),
            ),
            (
                "A.Amount=0&A.CurrencyCode=JPY",
                Err("InvalidParameterValue"),
            ),
            (
                "A.Amount=-1&A.CurrencyCode=JPY",
                Err("InvalidParameterValue"),
            ),
            (
                "A.Amount=abc&A.CurrencyCode=JPY",
                Err("InvalidParameterValue"),
            ),
            (
                "A.Amount=1&A.CurrencyCode=XYZ",
                Err("InvalidParameterValue"),
            ),
            ("A.Amount=1", Err("MissingParameter")),
            ("A.CurrencyCode=JPY", Err("MissingParameter")),
        ];
        for (body, expected) in cases {
            let got = p(body)
                .money("A")
                .map(|m| (m.minor(), m.currency()))
                .map_err(|e| e.code);
            assert_eq!(&got, expected, "{body}");
        }
    }

    #[test]
    fn defaults_and_limits() {
        assert_eq!(p("").transaction_timeout().unwrap(), 1440);
        assert_eq!(p("TransactionTimeout=0").transaction_timeout().unwrap(), 0);
        assert!(p("TransactionTimeout=1441").transaction_timeout().is_err());
        assert!(p("TransactionTimeout=-1").transaction_timeout().is_err());
        assert!(p("TransactionTimeout=+5").transaction_timeout().is_err());
        assert!(!p("").boolean("CaptureNow", false).unwrap());
        assert!(p("CaptureNow=True").boolean("CaptureNow", false).unwrap());
        assert!(p("CaptureNow=yes").boolean("CaptureNow", false).is_err());
        assert_eq!(p("R=abc-_1").reference_id("R").unwrap(), "abc-_1");
        assert!(p(&format!("R={}", "a".repeat(33)))
            .reference_id("R")
            .is_err());
        assert!(p("R=a%20b").reference_id("R").is_err());
        assert_eq!(
            p("R=").reference_id("R").unwrap_err().code,
            "MissingParameter"
        );
        assert!(p(&format!("N={}", "あ".repeat(256)))
            .text("N", 255)
            .is_err());
        assert_eq!(
            p(&format!("N={}", "あ".repeat(255)))
                .text("N", 255)
                .unwrap()
                .unwrap()
                .chars()
                .count(),
            255
        );
        assert!(Params::parse(b"A=1&A=2").is_err());
        assert_eq!(p("X=a+b%2B").get("X"), Some("a b+"));
    }
}
