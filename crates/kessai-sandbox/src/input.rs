//! Strict reading of request JSON: every unknown field, wrong type and bad amount is an error that
//! names the field by its full path (`paymentDetails.chargeAmount.amount`).

use crate::error::ApiError;
use kessai_amazonpay::wire::ErrorCode;
use kessai_core::{Currency, Money, MoneyError};
use serde_json::{Map, Value};

/// The largest amount of one value Amazon accepts, per currency.
pub fn max_amount(currency: Currency) -> i64 {
    match currency {
        Currency::Jpy => 10_000_000,
        Currency::Usd | Currency::Eur | Currency::Gbp => 15_000_000,
    }
}

/// Parses a request body that must be a JSON object. An empty body counts as `{}`.
pub fn parse_object(body: &[u8]) -> Result<Map<String, Value>, ApiError> {
    if body.iter().all(|b| b.is_ascii_whitespace()) {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(ApiError::bad_request(
            ErrorCode::InvalidRequestFormat,
            "The request body must be a JSON object.",
        )),
        Err(e) => Err(ApiError::bad_request(
            ErrorCode::InvalidRequestFormat,
            format!("The request body is not valid JSON: {e}"),
        )),
    }
}

/// A JSON object being read, with the path that leads to it.
pub struct Obj<'a> {
    map: &'a Map<String, Value>,
    path: String,
}

impl<'a> Obj<'a> {
    pub fn root(map: &'a Map<String, Value>) -> Self {
        Obj {
            map,
            path: String::new(),
        }
    }

    fn name(&self, field: &str) -> String {
        if self.path.is_empty() {
            field.to_owned()
        } else {
            format!("{}.{}", self.path, field)
        }
    }

    /// Refuses any field not in `allowed`.
    pub fn only(&self, allowed: &[&str]) -> Result<(), ApiError> {
        for key in self.map.keys() {
            if !allowed.contains(&key.as_str()) {
                return Err(ApiError::bad_request(
                    ErrorCode::UnrecognizedField,
                    format!("The field {} is not recognized.", self.name(key)),
                ));
            }
        }
        Ok(())
    }

    fn get(&self, field: &str) -> Option<&'a Value> {
        match self.map.get(field) {
            None | Some(Value::Null) => None,
            Some(v) => Some(v),
        }
    }

    pub fn opt_str(&self, field: &str, max_len: usize) -> Result<Option<&'a str>, ApiError> {
        match self.get(field) {
            None => Ok(None),
            Some(Value::String(s)) => {
                if s.chars().count() > max_len {
                    Err(ApiError::invalid(
                        &self.name(field),
                        format!("it is longer than {max_len} characters."),
                    ))
                } else {
                    Ok(Some(s.as_str()))
                }
            }
            Some(_) => Err(ApiError::invalid(&self.name(field), "it must be a string.")),
        }
    }

    pub fn req_str(&self, field: &str, max_len: usize) -> Result<&'a str, ApiError> {
        match self.opt_str(field, max_len)? {
            Some(s) if !s.is_empty() => Ok(s),
            _ => Err(ApiError::missing(&self.name(field))),
        }
    }

    pub fn opt_url(&self, field: &str) -> Result<Option<&'a str>, ApiError> {
        let Some(text) = self.opt_str(field, 2048)? else {
            return Ok(None);
        };
        match url::Url::parse(text) {
            Ok(u) if u.scheme() == "https" || u.scheme() == "http" => Ok(Some(text)),
            _ => Err(ApiError::invalid(
                &self.name(field),
                "it must be an absolute http(s) URL.",
            )),
        }
    }

    pub fn opt_bool(&self, field: &str) -> Result<Option<bool>, ApiError> {
        match self.get(field) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(_) => Err(ApiError::invalid(
                &self.name(field),
                "it must be true or false.",
            )),
        }
    }

    /// A positive whole number given as a string (or a JSON number), returned as text.
    pub fn opt_digits(&self, field: &str) -> Result<Option<String>, ApiError> {
        let text = match self.get(field) {
            None => return Ok(None),
            Some(Value::String(s)) => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            Some(_) => return Err(ApiError::invalid(&self.name(field), "it must be a number.")),
        };
        if text.is_empty()
            || text.len() > 4
            || !text.bytes().all(|b| b.is_ascii_digit())
            || text.trim_start_matches('0').is_empty()
        {
            return Err(ApiError::invalid(
                &self.name(field),
                "it must be a whole number from 1 to 9999.",
            ));
        }
        Ok(Some(text))
    }

    pub fn opt_enum(&self, field: &str, allowed: &[&str]) -> Result<Option<&'a str>, ApiError> {
        match self.opt_str(field, 64)? {
            None => Ok(None),
            Some(s) if allowed.contains(&s) => Ok(Some(s)),
            Some(s) => Err(ApiError::invalid(
                &self.name(field),
                format!("{s} is not one of {}.", allowed.join(", ")),
            )),
        }
    }

    /// As [`Obj::opt_enum`], for one of Amazon's vocabularies: only the `allowed` values are taken.
    pub fn opt_vocab<T>(&self, field: &str, allowed: &[T]) -> Result<Option<T>, ApiError>
    where
        T: for<'t> From<&'t str> + std::fmt::Display,
    {
        let names: Vec<String> = allowed.iter().map(T::to_string).collect();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        Ok(self.opt_enum(field, &names)?.map(T::from))
    }

    /// The object itself, as received (for fields kept as given).
    pub fn value(&self) -> Value {
        Value::Object(self.map.clone())
    }

    pub fn opt_obj(&self, field: &str) -> Result<Option<Obj<'a>>, ApiError> {
        match self.get(field) {
            None => Ok(None),
            Some(Value::Object(map)) => Ok(Some(Obj {
                map,
                path: self.name(field),
            })),
            Some(_) => Err(ApiError::invalid(
                &self.name(field),
                "it must be an object.",
            )),
        }
    }

    pub fn req_obj(&self, field: &str) -> Result<Obj<'a>, ApiError> {
        self.opt_obj(field)?
            .ok_or_else(|| ApiError::missing(&self.name(field)))
    }

    /// A Price: `{amount, currencyCode}`; the amount may be a string or a JSON number.
    pub fn opt_price(&self, field: &str, ledger: Currency) -> Result<Option<Money>, ApiError> {
        let Some(price) = self.opt_obj(field)? else {
            return Ok(None);
        };
        price.only(&["amount", "currencyCode"])?;
        let amount_name = price.name("amount");
        let amount_text = match price.get("amount") {
            None => return Err(ApiError::missing(&amount_name)),
            Some(Value::String(s)) if !s.is_empty() => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            Some(_) => {
                return Err(ApiError::invalid(
                    &amount_name,
                    "it must be a decimal string.",
                ))
            }
        };
        let code = price.req_str("currencyCode", 3)?;
        let currency = Currency::parse(code).ok_or_else(|| {
            ApiError::invalid(
                &price.name("currencyCode"),
                format!("{code} is not a supported currency."),
            )
        })?;
        if currency != ledger {
            return Err(ApiError::bad_request(
                ErrorCode::CurrencyMismatch,
                format!(
                    "{} is {code} but this merchant's ledger currency is {}.",
                    price.name("currencyCode"),
                    ledger.code()
                ),
            ));
        }
        let money = Money::parse_decimal(&amount_text, currency).map_err(|e| match e {
            MoneyError::TooLarge => ApiError::bad_request(
                ErrorCode::TransactionAmountExceeded,
                format!("{amount_name} exceeds the maximum amount."),
            ),
            other => ApiError::invalid(&amount_name, other),
        })?;
        if money.minor() <= 0 {
            return Err(ApiError::invalid(
                &amount_name,
                "it must be greater than zero.",
            ));
        }
        if money.minor() > max_amount(currency) {
            return Err(ApiError::bad_request(
                ErrorCode::TransactionAmountExceeded,
                format!(
                    "{amount_name} {} exceeds the maximum of {} {}.",
                    money.to_decimal_string(),
                    Money::new(max_amount(currency), currency).to_decimal_string(),
                    currency.code()
                ),
            ));
        }
        Ok(Some(money))
    }

    pub fn req_price(&self, field: &str, ledger: Currency) -> Result<Money, ApiError> {
        self.opt_price(field, ledger)?
            .ok_or_else(|| ApiError::missing(&self.name(field)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(text: &str) -> Map<String, Value> {
        parse_object(text.as_bytes()).unwrap_or_default()
    }

    #[test]
    fn price_rules() {
        let m = obj(
            r#"{"a":{"amount":"100","currencyCode":"JPY"},"b":{"amount":"1.5","currencyCode":"JPY"},"c":{"amount":100,"currencyCode":"USD"},"d":{"amount":"10000001","currencyCode":"JPY"},"e":{"amount":"0","currencyCode":"JPY"},"f":{"amount":"1","currencyCode":"JPY","x":1}}"#,
        );
        let o = Obj::root(&m);
        assert_eq!(
            o.opt_price("a", Currency::Jpy).ok().flatten(),
            Some(Money::new(100, Currency::Jpy))
        );
        assert_eq!(
            o.opt_price("b", Currency::Jpy).err().map(|e| e.reason_code),
            Some(ErrorCode::InvalidParameterValue)
        );
        assert_eq!(
            o.opt_price("c", Currency::Jpy).err().map(|e| e.reason_code),
            Some(ErrorCode::CurrencyMismatch)
        );
        assert_eq!(
            o.opt_price("d", Currency::Jpy).err().map(|e| e.reason_code),
            Some(ErrorCode::TransactionAmountExceeded)
        );
        assert_eq!(
            o.opt_price("e", Currency::Jpy).err().map(|e| e.reason_code),
            Some(ErrorCode::InvalidParameterValue)
        );
        assert_eq!(
            o.opt_price("f", Currency::Jpy).err().map(|e| e.reason_code),
            Some(ErrorCode::UnrecognizedField)
        );
        assert_eq!(
            o.req_price("zz", Currency::Jpy)
                .err()
                .map(|e| e.reason_code),
            Some(ErrorCode::MissingParameterValue)
        );
    }

    #[test]
    fn body_must_be_a_json_object() {
        assert_eq!(
            parse_object(b"[1]").err().map(|e| e.reason_code),
            Some(ErrorCode::InvalidRequestFormat)
        );
        assert_eq!(
            parse_object(b"{nope").err().map(|e| e.reason_code),
            Some(ErrorCode::InvalidRequestFormat)
        );
        assert!(parse_object(b"").is_ok());
    }
}
