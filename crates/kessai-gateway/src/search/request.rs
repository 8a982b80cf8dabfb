//! Reading a Search request into a [`SearchQuery`]: each mistake is refused with the field named.
//!
//! The MDK `json_encode`s what the merchant set, so integers and flags come as JSON numbers and
//! booleans as often as strings; both are read. Lists (`serviceTypeCd`, `orderStatus`, …) must be
//! JSON arrays of strings, ranges `{"from","to"}` objects, and unknown keys inside
//! `searchParameters` are refused (a misspelt filter would otherwise widen the search silently).

use crate::commands::CommandName;
use kessai_core::{AmountError, ConsentState, Field, Kind, MerchantCcid, OrderId, OrderState};
use kessai_core::{ResultCode, Yen};
use kessai_store::{
    DummyFilter, Mstatus, OrderIdFilter, Range, SearchQuery, TransactionFilter, MAX_SEARCH_COUNT,
};
use serde_json::{Map, Value};
use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time, UtcOffset};

/// `maxCount` when the request has none.
pub const DEFAULT_MAX_COUNT: u32 = 100;

/// The largest amount a range may name (the largest one-time order).
const MAX_AMOUNT: u64 = 10_000_000;

/// A parsed Search request: the query, or the knowledge that nothing can match (two filters on
/// the same thing with no value in common).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchRequest {
    pub query: SearchQuery,
    pub matches_nothing: bool,
}

const COMMON_KEYS: [&str; 6] = [
    "orderId",
    "orderStatus",
    "command",
    "mstatus",
    "txnDatetime",
    "amount",
];
const AMAZONPAY_KEYS: [&str; 8] = [
    "detailOrderType",
    "detailCommandType",
    "centerOrderId",
    "centerTransactionId",
    "accountingType",
    "consentStatus",
    "originalOrderId",
    "payConfirmScreenType",
];

fn wrong_shape(field: Field, what: &str) -> ResultCode {
    ResultCode::field(Kind::FieldWrongShape, field, format!("must be {what}."))
}

/// A present, non-null value.
fn get<'a>(map: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    map.get(key).filter(|v| !v.is_null())
}

fn object(v: Option<&Value>, field: Field) -> Result<Option<&Map<String, Value>>, ResultCode> {
    match v {
        None => Ok(None),
        Some(Value::Object(m)) => Ok(Some(m)),
        Some(_) => Err(wrong_shape(field, "a JSON object")),
    }
}

/// A string of at most `max` characters; "" counts as absent.
fn text(v: Option<&Value>, field: Field, max: usize) -> Result<Option<String>, ResultCode> {
    match v {
        None => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) if s.chars().count() > max => Err(ResultCode::field(
            Kind::FieldTooLong,
            field,
            format!("is longer than {max} characters."),
        )),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(ResultCode::field(
            Kind::FieldWrongType,
            field,
            "must be a JSON string.",
        )),
    }
}

/// A string, or an integer written as a JSON number, as text.
fn number_text(v: &Value, field: Field) -> Result<Option<String>, ResultCode> {
    match v {
        Value::String(s) if s.is_empty() => Ok(None),
        Value::String(s) => Ok(Some(s.clone())),
        Value::Number(n) => Ok(Some(n.to_string())),
        _ => Err(wrong_shape(field, "an integer (a JSON number or string)")),
    }
}

fn amount_kind(e: &AmountError) -> Kind {
    match e {
        AmountError::Empty => Kind::FieldMissing,
        AmountError::Decimal => Kind::FieldDecimal,
        AmountError::Negative => Kind::FieldNegative,
        AmountError::NonAsciiDigits => Kind::FieldNonAsciiDigits,
        AmountError::NotANumber => Kind::FieldNotANumber,
        AmountError::BelowMinimum { .. } => Kind::FieldBelowMinimum,
        AmountError::AboveMaximum { .. } => Kind::FieldAboveMaximum,
    }
}

/// An integer in `min..=max`, from a JSON number or string; `what` prefixes the message (a
/// range's `from`/`to`).
fn integer(
    v: Option<&Value>,
    field: Field,
    what: &str,
    min: u64,
    max: u64,
) -> Result<Option<u64>, ResultCode> {
    let Some(v) = v else { return Ok(None) };
    let Some(t) = number_text(v, field)? else {
        return Ok(None);
    };
    Yen::parse_bounded(&t, min, max)
        .map(|y| Some(y.get()))
        .map_err(|e| ResultCode::field(amount_kind(&e), field, format!("{what}{e} (got {t:?})")))
}

/// `"0"`/`"1"` (or 0/1).
fn zero_or_one(v: Option<&Value>, field: Field) -> Result<Option<u8>, ResultCode> {
    let bad = || ResultCode::field(Kind::FieldInvalidValue, field, "must be \"0\" or \"1\".");
    match v {
        None => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) if s == "0" => Ok(Some(0)),
        Some(Value::String(s)) if s == "1" => Ok(Some(1)),
        Some(Value::Number(n)) if n.as_u64() == Some(0) => Ok(Some(0)),
        Some(Value::Number(n)) if n.as_u64() == Some(1) => Ok(Some(1)),
        Some(Value::String(_) | Value::Number(_)) => Err(bad()),
        Some(_) => Err(wrong_shape(
            field,
            "\"0\" or \"1\" (a JSON string or number)",
        )),
    }
}

/// A flag: `true`/`false` (JSON booleans or strings) or `1`/`0` (numbers or strings).
fn flag(v: Option<&Value>, field: Field) -> Result<Option<bool>, ResultCode> {
    match v {
        None => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) if s == "true" || s == "1" => Ok(Some(true)),
        Some(Value::String(s)) if s == "false" || s == "0" => Ok(Some(false)),
        Some(Value::Number(n)) if n.as_u64() == Some(1) => Ok(Some(true)),
        Some(Value::Number(n)) if n.as_u64() == Some(0) => Ok(Some(false)),
        Some(Value::String(_) | Value::Number(_)) => Err(ResultCode::field(
            Kind::FieldInvalidValue,
            field,
            "must be true or false (or \"1\"/\"0\").",
        )),
        Some(_) => Err(wrong_shape(field, "a JSON boolean, string or number")),
    }
}

/// A JSON array of non-empty strings.
fn list(v: Option<&Value>, field: Field) -> Result<Vec<String>, ResultCode> {
    let Some(v) = v else { return Ok(Vec::new()) };
    let Value::Array(items) = v else {
        return Err(wrong_shape(field, "a JSON array of strings"));
    };
    items
        .iter()
        .map(|item| match item {
            Value::String(s) if !s.is_empty() => Ok(s.clone()),
            _ => Err(wrong_shape(field, "a JSON array of non-empty strings")),
        })
        .collect()
}

/// A list whose every value is one of a vocabulary.
fn choices<T: Copy + PartialEq>(
    v: Option<&Value>,
    field: Field,
    all: &[T],
    name: fn(T) -> &'static str,
) -> Result<Vec<T>, ResultCode> {
    let mut out = Vec::new();
    for text in list(v, field)? {
        let Some(value) = all.iter().copied().find(|c| name(*c) == text) else {
            let allowed: Vec<_> = all.iter().map(|c| name(*c)).collect();
            return Err(ResultCode::field(
                Kind::FieldInvalidValue,
                field,
                format!("has {text:?}; the values are {}.", allowed.join(", ")),
            ));
        };
        if !out.contains(&value) {
            out.push(value);
        }
    }
    Ok(out)
}

/// The values of two filters on the same thing: both must hold. `None` if nothing can match.
fn both<T: PartialEq>(a: Vec<T>, b: Vec<T>) -> Option<Vec<T>> {
    match (a.is_empty(), b.is_empty()) {
        (_, true) => Some(a),
        (true, false) => Some(b),
        (false, false) => {
            let common: Vec<T> = a.into_iter().filter(|x| b.contains(x)).collect();
            (!common.is_empty()).then_some(common)
        }
    }
}

/// `{"from","to"}`, each end optional; any other key is refused.
fn range(v: Option<&Value>, field: Field) -> Result<(Option<&Value>, Option<&Value>), ResultCode> {
    let Some(m) = object(v, field).map_err(|_| wrong_shape(field, "a {\"from\",\"to\"} object"))?
    else {
        return Ok((None, None));
    };
    if let Some(key) = m.keys().find(|k| *k != "from" && *k != "to") {
        return Err(wrong_shape(
            field,
            &format!("a {{\"from\",\"to\"}} object (it has {key:?})"),
        ));
    }
    Ok((get(m, "from"), get(m, "to")))
}

fn japan() -> UtcOffset {
    UtcOffset::from_hms(9, 0, 0).unwrap_or(UtcOffset::UTC)
}

/// `YYYYMMDDhhmmss` or `YYYYMMDD` in Japan time; a day alone is its first second (`end`: its
/// last).
fn date(text: &str, end: bool) -> Option<OffsetDateTime> {
    if !text.bytes().all(|b| b.is_ascii_digit()) || !(text.len() == 8 || text.len() == 14) {
        return None;
    }
    let n = |range: std::ops::Range<usize>| text.get(range)?.parse::<u16>().ok();
    let month = Month::try_from(u8::try_from(n(4..6)?).ok()?).ok()?;
    let day =
        Date::from_calendar_date(i32::from(n(0..4)?), month, u8::try_from(n(6..8)?).ok()?).ok()?;
    let time = if text.len() == 14 {
        let part = |r| n(r).and_then(|v| u8::try_from(v).ok());
        Time::from_hms(part(8..10)?, part(10..12)?, part(12..14)?).ok()?
    } else if end {
        Time::from_hms(23, 59, 59).ok()?
    } else {
        Time::MIDNIGHT
    };
    Some(PrimitiveDateTime::new(day, time).assume_offset(japan()))
}

fn date_range(v: Option<&Value>, field: Field) -> Result<Range<OffsetDateTime>, ResultCode> {
    let (from, to) = range(v, field)?;
    let end = |v: Option<&Value>, name: &str, last: bool| -> Result<_, ResultCode> {
        let Some(v) = v else { return Ok(None) };
        let Some(t) = number_text(v, field)? else {
            return Ok(None);
        };
        date(&t, last).map(Some).ok_or_else(|| {
            ResultCode::field(
                Kind::FieldInvalidDate,
                field,
                format!("{name} must be YYYYMMDDhhmmss or YYYYMMDD in Japan time, a real day and time (got {t:?})."),
            )
        })
    };
    let r = Range {
        from: end(from, "from", false)?,
        to: end(to, "to", true)?,
    };
    reversed(&r, field)?;
    Ok(r)
}

fn amount_range(v: Option<&Value>, field: Field) -> Result<Range<Yen>, ResultCode> {
    let (from, to) = range(v, field)?;
    let r = Range {
        from: integer(from, field, "from ", 0, MAX_AMOUNT)?.map(Yen::new),
        to: integer(to, field, "to ", 0, MAX_AMOUNT)?.map(Yen::new),
    };
    reversed(&r, field)?;
    Ok(r)
}

fn reversed<T: PartialOrd>(r: &Range<T>, field: Field) -> Result<(), ResultCode> {
    match (&r.from, &r.to) {
        (Some(f), Some(t)) if f > t => Err(ResultCode::field(
            Kind::RangeReversed,
            field,
            "from is after to.",
        )),
        _ => Ok(()),
    }
}

fn unknown_keys(m: &Map<String, Value>, known: &[&str], part: &str) -> Result<(), ResultCode> {
    match m.keys().find(|k| !known.contains(&k.as_str())) {
        Some(key) => Err(ResultCode::field(
            Kind::FieldInvalidValue,
            Field::SearchParameters,
            format!(
                "{part} has no filter {key:?}; its filters are {}.",
                known.join(", ")
            ),
        )),
        None => Ok(()),
    }
}

fn order_id(v: Option<&Value>, field: Field) -> Result<Option<OrderId>, ResultCode> {
    let Some(t) = text(v, field, 100)? else {
        return Ok(None);
    };
    OrderId::parse(&t)
        .map(Some)
        .map_err(|e| ResultCode::field(Kind::FieldInvalidCharacters, field, e))
}

impl SearchRequest {
    /// Reads `params` of `merchant`; `test_mode`: the request came on `/test-paynow-search`.
    pub fn parse(
        params: &Map<String, Value>,
        merchant: MerchantCcid,
        test_mode: bool,
    ) -> Result<SearchRequest, ResultCode> {
        text(get(params, "requestId"), Field::RequestId, 100)?;
        let services = list(get(params, "serviceTypeCd"), Field::ServiceTypeCd)?;
        if services.is_empty() {
            return Err(ResultCode::field(
                Kind::FieldMissing,
                Field::ServiceTypeCd,
                "is required: [\"amazonpay\"].",
            ));
        }
        if let Some(other) = services.iter().find(|s| *s != "amazonpay") {
            return Err(ResultCode::field(
                Kind::FieldInvalidValue,
                Field::ServiceTypeCd,
                format!("has {other:?}; this gateway searches \"amazonpay\" orders only."),
            ));
        }
        let newest_only = flag(get(params, "newerFlag"), Field::NewerFlag)?.unwrap_or(false);
        let with_dummy =
            flag(get(params, "containDummyFlag"), Field::ContainDummyFlag)?.unwrap_or(false);
        let max_count = integer(
            get(params, "maxCount"),
            Field::MaxCount,
            "",
            1,
            u64::from(MAX_SEARCH_COUNT),
        )?
        .and_then(|n| u32::try_from(n).ok())
        .unwrap_or(DEFAULT_MAX_COUNT);

        let parameters = object(get(params, "searchParameters"), Field::SearchParameters)?;
        let empty = Map::new();
        let parameters = parameters.unwrap_or(&empty);
        if let Some(key) = parameters
            .keys()
            .find(|k| *k != "common" && *k != "amazonpay")
        {
            return Err(ResultCode::field(
                Kind::FieldInvalidValue,
                Field::SearchParameters,
                format!("has {key:?}; this gateway takes \"common\" and \"amazonpay\" only."),
            ));
        }
        let common = object(get(parameters, "common"), Field::SearchParameters)?.unwrap_or(&empty);
        let amazon =
            object(get(parameters, "amazonpay"), Field::SearchParameters)?.unwrap_or(&empty);
        unknown_keys(common, &COMMON_KEYS, "common")?;
        unknown_keys(amazon, &AMAZONPAY_KEYS, "amazonpay")?;

        let order_filter =
            match text(get(common, "orderId"), Field::OrderId, 100)? {
                None => None,
                Some(t) => Some(OrderIdFilter::parse(&t).map_err(|e| {
                    ResultCode::field(Kind::FieldInvalidCharacters, Field::OrderId, e)
                })?),
            };
        let states = choices(
            get(common, "orderStatus"),
            Field::OrderStatus,
            &OrderState::ALL,
            OrderState::as_str,
        )?;
        let detail_states = choices(
            get(amazon, "detailOrderType"),
            Field::DetailOrderType,
            &OrderState::ALL,
            OrderState::as_str,
        )?;
        let commands = choices(
            get(common, "command"),
            Field::Command,
            &CommandName::ALL,
            CommandName::as_str,
        )?;
        let commands: Vec<String> = commands.iter().map(|c| c.as_str().to_owned()).collect();
        let mut detail_commands = list(get(amazon, "detailCommandType"), Field::DetailCommandType)?;
        if let Some(long) = detail_commands.iter().find(|c| c.chars().count() > 64) {
            return Err(ResultCode::field(
                Kind::FieldTooLong,
                Field::DetailCommandType,
                format!("has a value longer than 64 characters ({long:?})."),
            ));
        }
        let mut seen = Vec::new();
        detail_commands.retain(|c| {
            let first = !seen.contains(c);
            seen.push(c.clone());
            first
        });
        let mstatuses = choices(
            get(common, "mstatus"),
            Field::Mstatus,
            &Mstatus::ALL,
            Mstatus::as_str,
        )?;
        let at = date_range(get(common, "txnDatetime"), Field::TxnDatetime)?;
        let amount = amount_range(get(common, "amount"), Field::Amount)?;
        let consent_states = choices(
            get(amazon, "consentStatus"),
            Field::ConsentStatus,
            &ConsentState::ALL,
            ConsentState::as_str,
        )?;
        let accounting_type = zero_or_one(get(amazon, "accountingType"), Field::AccountingType)?;
        let pay_confirm_screen_type = zero_or_one(
            get(amazon, "payConfirmScreenType"),
            Field::PayConfirmScreenType,
        )?;
        let original_order_id = order_id(get(amazon, "originalOrderId"), Field::OriginalOrderId)?;
        let charge_permission_id = text(get(amazon, "centerOrderId"), Field::CenterOrderId, 64)?;
        let charge_id = text(
            get(amazon, "centerTransactionId"),
            Field::CenterTransactionId,
            64,
        )?;

        let states = both(states, detail_states);
        let commands = both(commands, detail_commands);
        let matches_nothing = states.is_none() || commands.is_none();
        let query = SearchQuery {
            merchant,
            // A test-mode request sees test orders only; a live one live orders, and test orders
            // too with containDummyFlag (docs/decisions.md).
            dummy: match (test_mode, with_dummy) {
                (true, _) => DummyFilter::DummyOnly,
                (false, false) => DummyFilter::LiveOnly,
                (false, true) => DummyFilter::Both,
            },
            order_id: order_filter,
            states: states.unwrap_or_default(),
            accounting_type,
            original_order_id,
            consent_states,
            pay_confirm_screen_type,
            charge_permission_id,
            charge_id,
            transactions: TransactionFilter {
                commands: commands.unwrap_or_default(),
                mstatuses,
                at,
                amount,
            },
            newest_only,
            max_count,
        };
        Ok(SearchRequest {
            query,
            matches_nothing,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(params: Value) -> Result<SearchRequest, ResultCode> {
        let mut p = params.as_object().cloned().unwrap();
        p.entry("serviceTypeCd").or_insert(json!(["amazonpay"]));
        SearchRequest::parse(&p, MerchantCcid::parse("M1").unwrap(), false)
    }

    fn refused(params: Value) -> (Kind, Option<Field>) {
        let r = parse(params).unwrap_err();
        (r.kind, r.field)
    }

    #[test]
    fn dates_are_japan_time_days_or_seconds() {
        let jst = |s, end| date(s, end).map(|d| d.to_offset(UtcOffset::UTC));
        assert_eq!(
            jst("20260301093000", false),
            Some(time::macros::datetime!(2026-03-01 00:30:00 UTC))
        );
        assert_eq!(
            jst("20260301", false),
            Some(time::macros::datetime!(2026-02-28 15:00:00 UTC))
        );
        assert_eq!(
            jst("20260301", true),
            Some(time::macros::datetime!(2026-03-01 14:59:59 UTC))
        );
        for bad in [
            "2026-13-45",
            "20261345",
            "20260230",
            "20260301246000",
            "2026030",
            "202603011",
            "２０２６０３０１",
            "",
        ] {
            assert_eq!(date(bad, false), None, "{bad}");
        }
    }

    #[test]
    fn strings_numbers_and_booleans_read_alike() {
        let a = parse(
            json!({"maxCount": "5", "newerFlag": "true", "containDummyFlag": "1",
            "searchParameters": {"common": {"amount": {"from": "10", "to": "20"}},
                                 "amazonpay": {"accountingType": "1"}}}),
        )
        .unwrap();
        let b = parse(
            json!({"maxCount": 5, "newerFlag": true, "containDummyFlag": 1,
            "searchParameters": {"common": {"amount": {"from": 10, "to": 20}},
                                 "amazonpay": {"accountingType": 1}}}),
        )
        .unwrap();
        assert_eq!(a, b);
        assert_eq!(a.query.max_count, 5);
        assert!(a.query.newest_only);
        assert_eq!(a.query.dummy, DummyFilter::Both);
        assert_eq!(a.query.accounting_type, Some(1));
        let d = parse(json!({})).unwrap();
        assert_eq!(d.query.max_count, DEFAULT_MAX_COUNT);
        assert_eq!(d.query.dummy, DummyFilter::LiveOnly);
        assert!(!d.query.newest_only);
    }

    #[test]
    fn each_mistake_names_its_field() {
        use Field as F;
        use Kind as K;
        let cases: Vec<(Value, (Kind, Option<Field>))> = vec![
            (
                json!({"serviceTypeCd": []}),
                (K::FieldMissing, Some(F::ServiceTypeCd)),
            ),
            (
                json!({"serviceTypeCd": "amazonpay"}),
                (K::FieldWrongShape, Some(F::ServiceTypeCd)),
            ),
            (
                json!({"serviceTypeCd": ["card"]}),
                (K::FieldInvalidValue, Some(F::ServiceTypeCd)),
            ),
            (
                json!({"maxCount": 0}),
                (K::FieldBelowMinimum, Some(F::MaxCount)),
            ),
            (
                json!({"maxCount": "1001"}),
                (K::FieldAboveMaximum, Some(F::MaxCount)),
            ),
            (
                json!({"maxCount": 1.5}),
                (K::FieldDecimal, Some(F::MaxCount)),
            ),
            (
                json!({"maxCount": true}),
                (K::FieldWrongShape, Some(F::MaxCount)),
            ),
            (
                json!({"newerFlag": "yes"}),
                (K::FieldInvalidValue, Some(F::NewerFlag)),
            ),
            (
                json!({"containDummyFlag": []}),
                (K::FieldWrongShape, Some(F::ContainDummyFlag)),
            ),
            (
                json!({"searchParameters": []}),
                (K::FieldWrongShape, Some(F::SearchParameters)),
            ),
            (
                json!({"searchParameters": {"card": {}}}),
                (K::FieldInvalidValue, Some(F::SearchParameters)),
            ),
            (
                json!({"searchParameters": {"common": {"orderID": "x"}}}),
                (K::FieldInvalidValue, Some(F::SearchParameters)),
            ),
            (
                json!({"searchParameters": {"common": {"orderId": "a%b"}}}),
                (K::FieldInvalidCharacters, Some(F::OrderId)),
            ),
            (
                json!({"searchParameters": {"common": {"orderId": 12}}}),
                (K::FieldWrongType, Some(F::OrderId)),
            ),
            (
                json!({"searchParameters": {"common": {"orderStatus": "Captured"}}}),
                (K::FieldWrongShape, Some(F::OrderStatus)),
            ),
            (
                json!({"searchParameters": {"common": {"orderStatus": ["end"]}}}),
                (K::FieldInvalidValue, Some(F::OrderStatus)),
            ),
            (
                json!({"searchParameters": {"common": {"command": ["Search"]}}}),
                (K::FieldInvalidValue, Some(F::Command)),
            ),
            (
                json!({"searchParameters": {"common": {"mstatus": ["ok"]}}}),
                (K::FieldInvalidValue, Some(F::Mstatus)),
            ),
            (
                json!({"searchParameters": {"common": {"txnDatetime": {"from": "2026-13-45"}}}}),
                (K::FieldInvalidDate, Some(F::TxnDatetime)),
            ),
            (
                json!({"searchParameters": {"common": {"txnDatetime": "20260301"}}}),
                (K::FieldWrongShape, Some(F::TxnDatetime)),
            ),
            (
                json!({"searchParameters": {"common": {"txnDatetime": {"From": "20260301"}}}}),
                (K::FieldWrongShape, Some(F::TxnDatetime)),
            ),
            (
                json!({"searchParameters": {"common": {"txnDatetime": {"from": "20260302", "to": "20260301"}}}}),
                (K::RangeReversed, Some(F::TxnDatetime)),
            ),
            (
                json!({"searchParameters": {"common": {"amount": {"from": 20, "to": 10}}}}),
                (K::RangeReversed, Some(F::Amount)),
            ),
            (
                json!({"searchParameters": {"common": {"amount": {"from": -1}}}}),
                (K::FieldNegative, Some(F::Amount)),
            ),
            (
                json!({"searchParameters": {"amazonpay": {"accountingType": "2"}}}),
                (K::FieldInvalidValue, Some(F::AccountingType)),
            ),
            (
                json!({"searchParameters": {"amazonpay": {"payConfirmScreenType": false}}}),
                (K::FieldWrongShape, Some(F::PayConfirmScreenType)),
            ),
            (
                json!({"searchParameters": {"amazonpay": {"consentStatus": ["Active", "Paused"]}}}),
                (K::FieldInvalidValue, Some(F::ConsentStatus)),
            ),
            (
                json!({"searchParameters": {"amazonpay": {"detailOrderType": ["PreAuth", 1]}}}),
                (K::FieldWrongShape, Some(F::DetailOrderType)),
            ),
            (
                json!({"searchParameters": {"amazonpay": {"originalOrderId": "a b"}}}),
                (K::FieldInvalidCharacters, Some(F::OriginalOrderId)),
            ),
            (
                json!({"searchParameters": {"amazonpay": {"centerOrderId": "x".repeat(65)}}}),
                (K::FieldTooLong, Some(F::CenterOrderId)),
            ),
        ];
        for (params, expected) in cases {
            assert_eq!(refused(params.clone()), expected, "{params}");
        }
    }

    #[test]
    fn two_filters_on_one_thing_must_both_hold() {
        let r = parse(json!({"searchParameters": {
            "common": {"orderStatus": ["Captured", "Authorized"], "command": ["Capture"]},
            "amazonpay": {"detailOrderType": ["Authorized"], "detailCommandType": ["Capture", "AuthorizeResult"]}}}))
        .unwrap();
        assert!(!r.matches_nothing);
        assert_eq!(r.query.states, [OrderState::Authorized]);
        assert_eq!(r.query.transactions.commands, ["Capture"]);
        let r = parse(json!({"searchParameters": {
            "common": {"orderStatus": ["Captured"]},
            "amazonpay": {"detailOrderType": ["Authorized"]}}}))
        .unwrap();
        assert!(r.matches_nothing);
    }

    #[test]
    fn test_mode_sees_test_orders_only() {
        let p = json!({"serviceTypeCd": ["amazonpay"], "containDummyFlag": "0"});
        let r = SearchRequest::parse(
            p.as_object().unwrap(),
            MerchantCcid::parse("M1").unwrap(),
            true,
        )
        .unwrap();
        assert_eq!(r.query.dummy, DummyFilter::DummyOnly);
    }
}
