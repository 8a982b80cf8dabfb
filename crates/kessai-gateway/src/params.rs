//! Reading MDK request fields; each mistake has its own code.
//!
//! The MDK `json_encode`s what the merchant's code set, so a field the MDK defines as a number or
//! a flag arrives as a JSON string (`"100"`, `"true"`, the MDK's own samples) or as a JSON integer
//! or boolean (`100`, `true`). [`read_json_forms`] turns those integers and booleans into their
//! text once, at the edge, so every command reads one form; anything else that is not a string
//! (`1.5`, `-1`, `1e3`, `true` for a number, a number for a text field) is refused by the field's
//! reader with the code of that mistake.

use kessai_core::{AmountError, Field, IdError, Kind, OrderId, ResultCode, Yen};
use serde_json::{Map, Value};

/// Fields whose values are digits: amounts, counts, and choices such as `accountingType`.
const DIGIT_FIELDS: &[&str] = &[
    "amount",
    "frequencyValue",
    "accountingType",
    "consentAuthType",
    "payConfirmScreenType",
    "addInfoRespFlag",
    "maxCount",
    "containDummyFlag",
];

/// Fields whose values are `"true"` or `"false"`.
const FLAG_FIELDS: &[&str] = &[
    "withCapture",
    "suppressShippingAddressView",
    "extendExpiration",
    "newerFlag",
];

/// The request's params with JSON integers in digit fields and JSON booleans in flag fields
/// written as the strings the MDK's samples send (`100` → `"100"`, `true` → `"true"`). Other
/// values are left as they are, for the field readers to judge.
pub fn read_json_forms(mut params: Map<String, Value>) -> Map<String, Value> {
    for (name, value) in params.iter_mut() {
        let text = match value {
            Value::Number(n) if DIGIT_FIELDS.contains(&name.as_str()) => {
                n.as_u64().map(|v| v.to_string())
            }
            Value::Bool(b) if FLAG_FIELDS.contains(&name.as_str()) => Some(b.to_string()),
            _ => None,
        };
        if let Some(text) = text {
            *value = Value::String(text);
        }
    }
    params
}

/// Why a value that is not a string (after [`read_json_forms`]) cannot be read for `field`.
fn refuse_form(field: Field, value: &Value) -> ResultCode {
    let name = field.name();
    if DIGIT_FIELDS.contains(&name) {
        if let Value::Number(n) = value {
            let (kind, why) = match (n.as_i64(), n.as_f64()) {
                (Some(_), _) => (Kind::FieldNegative, "must not be negative"),
                (None, Some(f)) if f.fract() != 0.0 => {
                    (Kind::FieldDecimal, "must be a whole number")
                }
                _ => (
                    Kind::FieldNotANumber,
                    "must be an integer written with the digits 0-9 (no exponent, no decimal point)",
                ),
            };
            return ResultCode::field(kind, field, format!("{why} (got {n})."));
        }
        return ResultCode::field(
            Kind::FieldWrongType,
            field,
            format!(
                "must be a JSON string or integer (got {}).",
                json_type(value)
            ),
        );
    }
    if FLAG_FIELDS.contains(&name) {
        return ResultCode::field(
            Kind::FieldWrongType,
            field,
            format!(
                "must be true or false, as a JSON boolean or string (got {}).",
                json_type(value)
            ),
        );
    }
    ResultCode::field(
        Kind::FieldWrongType,
        field,
        format!("must be a JSON string (got {}).", json_type(value)),
    )
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

pub struct Params<'a>(pub &'a Map<String, Value>);

impl<'a> Params<'a> {
    /// A string field (or a digit or flag field, after [`read_json_forms`]); absent, null and ""
    /// all count as absent.
    pub fn opt(&self, field: Field) -> Result<Option<&'a str>, ResultCode> {
        match self.0.get(field.name()) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if s.is_empty() => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.as_str())),
            Some(other) => Err(refuse_form(field, other)),
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn read(params: Value) -> Map<String, Value> {
        read_json_forms(params.as_object().cloned().unwrap_or_default())
    }

    #[test]
    fn integers_and_booleans_read_as_the_mdk_samples_text() {
        let map = read(json!({
            "amount": 100, "frequencyValue": 3, "accountingType": 1, "withCapture": true,
            "extendExpiration": false, "orderId": 123, "noteToBuyer": true,
        }));
        let p = Params(&map);
        assert_eq!(
            p.amount(Field::Amount, 1000).map(|a| a.map(|y| y.get())),
            Ok(Some(100))
        );
        assert_eq!(p.opt(Field::FrequencyValue), Ok(Some("3")));
        assert_eq!(p.choice(Field::AccountingType, &["0", "1"]), Ok(Some("1")));
        assert_eq!(p.flag(Field::WithCapture), Ok(Some(true)));
        assert_eq!(p.flag(Field::ExtendExpiration), Ok(Some(false)));
        // Text fields keep refusing other JSON types.
        assert_eq!(
            p.order_id(Field::OrderId).map_err(|e| e.code()),
            Err("E212F00100000000".to_owned())
        );
        assert_eq!(
            p.text(Field::NoteToBuyer, 255).map_err(|e| e.kind),
            Err(Kind::FieldWrongType)
        );
    }

    #[test]
    fn other_forms_are_refused_with_their_own_code() {
        let cases: &[(Value, Kind)] = &[
            (json!(1.5), Kind::FieldDecimal),
            (json!(-1), Kind::FieldNegative),
            (json!(1e3), Kind::FieldNotANumber),
            (json!(1000.0), Kind::FieldNotANumber),
            (json!(1e30), Kind::FieldNotANumber),
            (json!("１００"), Kind::FieldNonAsciiDigits),
            (json!(true), Kind::FieldWrongType),
            (json!([100]), Kind::FieldWrongType),
            (json!({"v": 100}), Kind::FieldWrongType),
            (json!(0), Kind::FieldBelowMinimum),
            (json!(10_000_001), Kind::FieldAboveMaximum),
        ];
        for (value, kind) in cases {
            let map = read(json!({ "amount": value }));
            let r = Params(&map).amount(Field::Amount, 10_000_000);
            let e = r.expect_err(&format!("{value} is refused"));
            assert_eq!(e.kind, *kind, "{value}");
            assert_eq!(e.field, Some(Field::Amount), "{value}");
            assert!(e.message.contains("amount"), "{value}: {}", e.message);
        }
        let flags: &[(Value, Kind)] = &[
            (json!("maybe"), Kind::FieldInvalidValue),
            (json!(1), Kind::FieldWrongType),
            (json!("TRUE"), Kind::FieldInvalidValue),
        ];
        for (value, kind) in flags {
            let map = read(json!({ "withCapture": value }));
            let e = Params(&map).flag(Field::WithCapture).expect_err("refused");
            assert_eq!(
                (e.kind, e.field),
                (*kind, Some(Field::WithCapture)),
                "{value}"
            );
        }
        let map = read(json!({ "accountingType": 2, "payConfirmScreenType": true }));
        let p = Params(&map);
        assert_eq!(
            p.choice(Field::AccountingType, &["0", "1"])
                .map_err(|e| e.kind),
            Err(Kind::FieldInvalidValue)
        );
        assert_eq!(
            p.choice(Field::PayConfirmScreenType, &["0", "1"])
                .map_err(|e| e.kind),
            Err(Kind::FieldWrongType)
        );
    }
}
