//! Reading MDK request fields: every value is a JSON string; each mistake has its own code.

use kessai_core::{AmountError, Field, IdError, Kind, OrderId, ResultCode, Yen};
use serde_json::{Map, Value};

pub struct Params<'a>(pub &'a Map<String, Value>);

impl<'a> Params<'a> {
    /// A string field; absent, null and "" all count as absent.
    pub fn opt(&self, field: Field) -> Result<Option<&'a str>, ResultCode> {
        match self.0.get(field.name()) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if s.is_empty() => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.as_str())),
            Some(_) => Err(ResultCode::field(
                Kind::FieldWrongType,
                field,
                "must be a JSON string.",
            )),
        }
    }

    pub fn req(&self, field: Field) -> Result<&'a str, ResultCode> {
        self.opt(field)?
            .ok_or_else(|| ResultCode::field(Kind::FieldMissing, field, "is required."))
    }

    pub fn order_id(&self, field: Field) -> Result<OrderId, ResultCode> {
        let text = self.req(field)?;
        OrderId::parse(text).map_err(|e| {
            let kind = match e {
                IdError::Empty => Kind::FieldMissing,
                IdError::TooLong { .. } => Kind::FieldTooLong,
                IdError::InvalidCharacters => Kind::FieldInvalidCharacters,
            };
            ResultCode::field(kind, field, e)
        })
    }

    pub fn amount(&self, field: Field, max: u64) -> Result<Option<Yen>, ResultCode> {
        let Some(text) = self.opt(field)? else {
            return Ok(None);
        };
        Yen::parse_bounded(text, 1, max).map(Some).map_err(|e| {
            let kind = match e {
                AmountError::Empty => Kind::FieldMissing,
                AmountError::Decimal => Kind::FieldDecimal,
                AmountError::Negative => Kind::FieldNegative,
                AmountError::NonAsciiDigits => Kind::FieldNonAsciiDigits,
                AmountError::NotANumber => Kind::FieldNotANumber,
                AmountError::BelowMinimum { .. } => Kind::FieldBelowMinimum,
                AmountError::AboveMaximum { .. } => Kind::FieldAboveMaximum,
            };
            ResultCode::field(kind, field, format!("{e} (got {text:?})"))
        })
    }

    /// One of `allowed`, or absent.
    pub fn choice(&self, field: Field, allowed: &[&str]) -> Result<Option<&'a str>, ResultCode> {
        match self.opt(field)? {
            None => Ok(None),
            Some(v) if allowed.contains(&v) => Ok(Some(v)),
            Some(v) => Err(ResultCode::field(
                Kind::FieldInvalidValue,
                field,
                format!("must be one of {} (got {v:?}).", allowed.join(", ")),
            )),
        }
    }

    pub fn flag(&self, field: Field) -> Result<Option<bool>, ResultCode> {
        Ok(self.choice(field, &["true", "false"])?.map(|v| v == "true"))
    }

    /// Text of at most `max` characters.
    pub fn text(&self, field: Field, max: usize) -> Result<Option<String>, ResultCode> {
        match self.opt(field)? {
            Some(v) if v.chars().count() > max => Err(ResultCode::field(
                Kind::FieldTooLong,
                field,
                format!("is longer than {max} characters."),
            )),
            other => Ok(other.map(str::to_owned)),
        }
    }

    /// An absolute http(s) URL of at most 256 bytes.
    pub fn url(&self, field: Field) -> Result<Option<String>, ResultCode> {
        let Some(v) = self.opt(field)? else {
            return Ok(None);
        };
        if v.len() > 256 {
            return Err(ResultCode::field(
                Kind::FieldTooLong,
                field,
                "is longer than 256 bytes.",
            ));
        }
        match url::Url::parse(v) {
            Ok(u) if (u.scheme() == "http" || u.scheme() == "https") && u.host().is_some() => {
                Ok(Some(v.to_owned()))
            }
            _ => Err(ResultCode::field(
                Kind::FieldInvalidUrl,
                field,
                format!("must be an absolute http(s) URL (got {v:?})."),
            )),
        }
    }

    /// A field that must not be given in this combination.
    pub fn forbid(&self, field: Field, why: &str) -> Result<(), ResultCode> {
        match self.opt(field)? {
            Some(_) => Err(ResultCode::field(Kind::FieldNotAllowed, field, why)),
            None => Ok(()),
        }
    }
}
