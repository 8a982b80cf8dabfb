//! Kessai's `vResultCode` table.
//!
//! A code is 16 characters in 4 blocks of 4: `KKKK FFFF 0000 0000`.
//! - block 1 (`KKKK`) is the outcome: `S000` success, `E1xx` request refused before it was read,
//!   `E2xx` a field is invalid, `E3xx` the order does not allow the command, `E4xx` Amazon Pay
//!   declined or refused, `E5xx` the outcome at Amazon Pay is unknown or the gateway failed;
//! - block 2 (`FFFF`) names the field at fault (`F001` orderId, …) or is `0000`;
//! - blocks 3 and 4 are reserved and `0000`.
//!
//! Every distinct failure has its own block 1, so a merchant can branch on the first four
//! characters alone. `docs/result-codes.md` lists the table; a test keeps it in step with [`Kind::ALL`].

use crate::order::Refusal;

/// The outcome part of a result code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Success,
    /// Accepted; Amazon Pay decides later (a pending authorization).
    AuthorizationPending,
    // E1xx: the request as a whole
    AuthHashMismatch,
    UnknownMerchant,
    DummyModeMismatch,
    MalformedBody,
    MissingParams,
    BodyTooLarge,
    UnknownCommand,
    MissingAuthHash,
    NotSupportedYet,
    IdempotencyKeyInvalid,
    IdempotencyKeyReused,
    IdempotencyKeyInFlight,
    // E2xx: one field
    FieldMissing,
    FieldDecimal,
    FieldNegative,
    FieldNonAsciiDigits,
    FieldNotANumber,
    FieldBelowMinimum,
    FieldAboveMaximum,
    FieldTooLong,
    FieldInvalidCharacters,
    FieldInvalidValue,
    FieldNotAllowed,
    FieldWrongType,
    FieldInvalidUrl,
    // E3xx: the order
    DuplicateOrderId,
    UnknownOrderId,
    AlreadyCaptured,
    RefundBeforeCapture,
    CancelAfterCapture,
    CaptureExceedsAuthorized,
    RefundExceedsRefundable,
    NotAuthorizedYet,
    OrderClosed,
    CheckoutSessionMismatch,
    AuthorizationInProgress,
    FullyRefunded,
    BuyerNotSignedIn,
    ConcurrentCommand,
    ConsentOnly,
    NotRecurring,
    ConsentNotActive,
    NotOneTime,
    PayRedirectUsed,
    // E4xx: Amazon Pay said no
    AmazonDeclined,
    AmazonBuyerCanceled,
    AmazonSoftDeclined,
    AmazonHardDeclined,
    AmazonRejected,
    AmazonTransactionTimedOut,
    AmazonProcessingFailure,
    AmazonRefused,
    AmazonCheckoutExpired,
    AuthorizationExpired,
    AmazonCanceledAuthorization,
    AmazonRefundDeclined,
    // E5xx: unknown outcome or failure
    OutcomeUnknown,
    AmazonUnreachable,
    AmazonServerError,
    AmazonAnswerNotUnderstood,
    DatabaseUnavailable,
    Internal,
    // E2xx, added with Search
    FieldWrongShape,
    FieldInvalidDate,
    RangeReversed,
}

impl Kind {
    pub const ALL: [Kind; 67] = [
        Kind::Success,
        Kind::AuthorizationPending,
        Kind::AuthHashMismatch,
        Kind::UnknownMerchant,
        Kind::DummyModeMismatch,
        Kind::MalformedBody,
        Kind::MissingParams,
        Kind::BodyTooLarge,
        Kind::UnknownCommand,
        Kind::MissingAuthHash,
        Kind::NotSupportedYet,
        Kind::IdempotencyKeyInvalid,
        Kind::IdempotencyKeyReused,
        Kind::IdempotencyKeyInFlight,
        Kind::FieldMissing,
        Kind::FieldDecimal,
        Kind::FieldNegative,
        Kind::FieldNonAsciiDigits,
        Kind::FieldNotANumber,
        Kind::FieldBelowMinimum,
        Kind::FieldAboveMaximum,
        Kind::FieldTooLong,
        Kind::FieldInvalidCharacters,
        Kind::FieldInvalidValue,
        Kind::FieldNotAllowed,
        Kind::FieldWrongType,
        Kind::FieldInvalidUrl,
        Kind::DuplicateOrderId,
        Kind::UnknownOrderId,
        Kind::AlreadyCaptured,
        Kind::RefundBeforeCapture,
        Kind::CancelAfterCapture,
        Kind::CaptureExceedsAuthorized,
        Kind::RefundExceedsRefundable,
        Kind::NotAuthorizedYet,
        Kind::OrderClosed,
        Kind::CheckoutSessionMismatch,
        Kind::AuthorizationInProgress,
        Kind::FullyRefunded,
        Kind::BuyerNotSignedIn,
        Kind::ConcurrentCommand,
        Kind::ConsentOnly,
        Kind::NotRecurring,
        Kind::ConsentNotActive,
        Kind::NotOneTime,
        Kind::PayRedirectUsed,
        Kind::AmazonDeclined,
        Kind::AmazonBuyerCanceled,
        Kind::AmazonSoftDeclined,
        Kind::AmazonHardDeclined,
        Kind::AmazonRejected,
        Kind::AmazonTransactionTimedOut,
        Kind::AmazonProcessingFailure,
        Kind::AmazonRefused,
        Kind::AmazonCheckoutExpired,
        Kind::AuthorizationExpired,
        Kind::AmazonCanceledAuthorization,
        Kind::AmazonRefundDeclined,
        Kind::OutcomeUnknown,
        Kind::AmazonUnreachable,
        Kind::AmazonServerError,
        Kind::AmazonAnswerNotUnderstood,
        Kind::DatabaseUnavailable,
        Kind::Internal,
        Kind::FieldWrongShape,
        Kind::FieldInvalidDate,
        Kind::RangeReversed,
    ];

    /// Block 1 of the code.
    pub fn block(self) -> &'static str {
        match self {
            Kind::Success => "S000",
            Kind::AuthorizationPending => "P001",
            Kind::AuthHashMismatch => "E101",
            Kind::UnknownMerchant => "E102",
            Kind::DummyModeMismatch => "E103",
            Kind::MalformedBody => "E104",
            Kind::MissingParams => "E105",
            Kind::BodyTooLarge => "E106",
            Kind::UnknownCommand => "E107",
            Kind::MissingAuthHash => "E108",
            Kind::NotSupportedYet => "E109",
            Kind::IdempotencyKeyInvalid => "E110",
            Kind::IdempotencyKeyReused => "E111",
            Kind::IdempotencyKeyInFlight => "E112",
            Kind::FieldMissing => "E201",
            Kind::FieldDecimal => "E202",
            Kind::FieldNegative => "E203",
            Kind::FieldNonAsciiDigits => "E204",
            Kind::FieldNotANumber => "E205",
            Kind::FieldBelowMinimum => "E206",
            Kind::FieldAboveMaximum => "E207",
            Kind::FieldTooLong => "E208",
            Kind::FieldInvalidCharacters => "E209",
            Kind::FieldInvalidValue => "E210",
            Kind::FieldNotAllowed => "E211",
            Kind::FieldWrongType => "E212",
            Kind::FieldInvalidUrl => "E213",
            Kind::DuplicateOrderId => "E301",
            Kind::UnknownOrderId => "E302",
            Kind::AlreadyCaptured => "E303",
            Kind::RefundBeforeCapture => "E304",
            Kind::CancelAfterCapture => "E305",
            Kind::CaptureExceedsAuthorized => "E306",
            Kind::RefundExceedsRefundable => "E307",
            Kind::NotAuthorizedYet => "E308",
            Kind::OrderClosed => "E309",
            Kind::CheckoutSessionMismatch => "E310",
            Kind::AuthorizationInProgress => "E311",
            Kind::FullyRefunded => "E312",
            Kind::BuyerNotSignedIn => "E313",
            Kind::ConcurrentCommand => "E314",
            Kind::ConsentOnly => "E315",
            Kind::NotRecurring => "E316",
            Kind::ConsentNotActive => "E317",
            Kind::NotOneTime => "E318",
            Kind::PayRedirectUsed => "E319",
            Kind::AmazonDeclined => "E401",
            Kind::AmazonBuyerCanceled => "E402",
            Kind::AmazonSoftDeclined => "E403",
            Kind::AmazonHardDeclined => "E404",
            Kind::AmazonRejected => "E405",
            Kind::AmazonTransactionTimedOut => "E406",
            Kind::AmazonProcessingFailure => "E407",
            Kind::AmazonRefused => "E408",
            Kind::AmazonCheckoutExpired => "E409",
            Kind::AuthorizationExpired => "E410",
            Kind::AmazonCanceledAuthorization => "E411",
            Kind::AmazonRefundDeclined => "E412",
            Kind::OutcomeUnknown => "E500",
            Kind::AmazonUnreachable => "E501",
            Kind::AmazonServerError => "E502",
            Kind::AmazonAnswerNotUnderstood => "E503",
            Kind::DatabaseUnavailable => "E504",
            Kind::Internal => "E599",
            Kind::FieldWrongShape => "E214",
            Kind::FieldInvalidDate => "E215",
            Kind::RangeReversed => "E216",
        }
    }

    /// What the code means, in one line (the text of `docs/result-codes.md`).
    pub fn meaning(self) -> &'static str {
        match self {
            Kind::Success => "Success.",
            Kind::AuthorizationPending => "Amazon Pay is still confirming the payment (a pending authorization); the result comes by push to authorizePushUrl, usually within minutes to hours; commands on the order answer E311 until then.",
            Kind::AuthHashMismatch => "authHash does not match SHA-256(merchantCcid + params + secret key).",
            Kind::UnknownMerchant => "merchantCcid is not a merchant of this gateway.",
            Kind::DummyModeMismatch => "dummyRequest does not fit the path: \"1\" only on /test-paynow, \"0\" only on /paynow.",
            Kind::MalformedBody => "The body is not a JSON object (raw, or URL-encoded).",
            Kind::MissingParams => "The body has no \"params\" object.",
            Kind::BodyTooLarge => "The body is larger than 64 KiB.",
            Kind::UnknownCommand => "No such command or service at this path.",
            Kind::MissingAuthHash => "The body has no \"authHash\" string.",
            Kind::IdempotencyKeyInvalid => "The Idempotency-Key header is empty, longer than 255 characters, or not printable ASCII.",
            Kind::IdempotencyKeyReused => "The Idempotency-Key was used before with another command or other params; use a new key for a new request.",
            Kind::IdempotencyKeyInFlight => "The first request with this Idempotency-Key is still running; retry in a moment.",
            Kind::NotSupportedYet => "The command or option is part of the protocol but not supported by this gateway yet.",
            Kind::FieldMissing => "A required field is missing or empty.",
            Kind::FieldDecimal => "An amount has a decimal point; yen amounts are whole numbers.",
            Kind::FieldNegative => "An amount is negative.",
            Kind::FieldNonAsciiDigits => "An amount uses non-ASCII (for example full-width) digits.",
            Kind::FieldNotANumber => "A number field is not written with the digits 0-9.",
            Kind::FieldBelowMinimum => "A number is below its minimum.",
            Kind::FieldAboveMaximum => "A number is above its maximum.",
            Kind::FieldTooLong => "A field is longer than its maximum length.",
            Kind::FieldInvalidCharacters => "A field has characters it may not contain.",
            Kind::FieldInvalidValue => "A field's value is not one of the allowed values.",
            Kind::FieldNotAllowed => "A field may not be given in this combination.",
            Kind::FieldWrongType => "A field has the wrong JSON type: text fields take strings; number and flag fields take strings, integers or booleans (see decisions).",
            Kind::FieldInvalidUrl => "A URL field is not an absolute http(s) URL.",
            Kind::DuplicateOrderId => "The orderId was already used by this merchant.",
            Kind::UnknownOrderId => "No order with this orderId exists for this merchant.",
            Kind::AlreadyCaptured => "The order was already captured; only one capture is allowed.",
            Kind::RefundBeforeCapture => "The order is authorized but not captured; refund needs a capture (use Cancel).",
            Kind::CancelAfterCapture => "The order was captured; cancel is possible only before capture (use Refund).",
            Kind::CaptureExceedsAuthorized => "The capture amount exceeds the authorized amount.",
            Kind::RefundExceedsRefundable => "The refund amount exceeds refundableAmount.",
            Kind::NotAuthorizedYet => "The buyer has not completed checkout; the order is not authorized.",
            Kind::OrderClosed => "The order is closed (canceled, declined, expired or canceled by the buyer).",
            Kind::CheckoutSessionMismatch => "The buyer returned with an Amazon Pay checkout session that is not this order's.",
            Kind::AuthorizationInProgress => "The authorization is in progress; try again when it has a result.",
            Kind::FullyRefunded => "The order is fully refunded; refundableAmount is 0.",
            Kind::BuyerNotSignedIn => "The buyer has not signed in at Amazon Pay yet.",
            Kind::ConcurrentCommand => "Another command on the same order changed it at the same time; read the order and retry.",
            Kind::ConsentOnly => "The order is a recurring consent without a charge (consentAuthType \"0\"): there is nothing to capture, cancel, refund or re-authorize; charge it with ReAuthorize, end it with Terminate.",
            Kind::NotRecurring => "The order (orderId, or originalOrderId of ReAuthorize) is not a recurring (随時) consent order; ReAuthorize, Terminate and UpdateConsent need one.",
            Kind::ConsentNotActive => "The recurring consent is not active: the buyer has not agreed yet, or it was terminated or expired.",
            Kind::NotOneTime => "UpdateAuthorize after authorization is for one-time (都度) orders; a recurring order's later charges are ReAuthorize orders.",
            Kind::PayRedirectUsed => "The payRedirectUrl was already used, or the order has moved on; it works once.",
            Kind::AmazonDeclined => "Amazon Pay declined the payment at checkout.",
            Kind::AmazonBuyerCanceled => "The buyer canceled at Amazon Pay.",
            Kind::AmazonSoftDeclined => "Amazon Pay declined the authorization (SoftDeclined); a retry may succeed.",
            Kind::AmazonHardDeclined => "Amazon Pay declined the authorization (HardDeclined); the buyer must change the payment method.",
            Kind::AmazonRejected => "Amazon Pay rejected the transaction (AmazonRejected).",
            Kind::AmazonTransactionTimedOut => "Amazon Pay timed out the authorization (TransactionTimedOut).",
            Kind::AmazonProcessingFailure => "Amazon Pay failed to process the transaction (ProcessingFailure); retry later.",
            Kind::AmazonRefused => "Amazon Pay refused the request; the message carries its reasonCode.",
            Kind::AuthorizationExpired => "The authorization expired unused (Amazon Pay keeps it 30 days); nothing can be captured.",
            Kind::AmazonCanceledAuthorization => "Amazon Pay canceled the authorization; nothing can be captured.",
            Kind::AmazonRefundDeclined => "Amazon Pay declined a refund it had accepted; its amount is refundable again.",
            Kind::AmazonCheckoutExpired => "The Amazon Pay checkout session expired before the buyer finished.",
            Kind::OutcomeUnknown => "The operation was recorded, but whether Amazon Pay carried it out is not known yet; sending the same command again is safe and answers with what really happened (it is never done twice).",
            Kind::AmazonUnreachable => "Amazon Pay could not be reached or did not answer in time; the outcome is unknown.",
            Kind::AmazonServerError => "Amazon Pay answered with a server error; the outcome is unknown.",
            Kind::AmazonAnswerNotUnderstood => "Amazon Pay's answer could not be read; the outcome is unknown.",
            Kind::DatabaseUnavailable => "The gateway's database could not be reached or did not answer in time; send the same command again later (it is never carried out twice).",
            Kind::Internal => "An internal error of the gateway; nothing was changed.",
            Kind::FieldWrongShape => "A field has the wrong JSON shape: a list of strings, a {\"from\",\"to\"} range, an object of filters, or a single string or integer was expected.",
            Kind::FieldInvalidDate => "A date is not YYYYMMDDhhmmss or YYYYMMDD (Japan time), or names no real day or time.",
            Kind::RangeReversed => "A range's from is after its to.",
        }
    }

    pub fn mstatus(self) -> &'static str {
        match self {
            Kind::Success => "success",
            Kind::OutcomeUnknown | Kind::AuthorizationPending => "pending",
            _ => "failure",
        }
    }
}

/// A request or order field that a result code can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Field {
    OrderId,
    Amount,
    WithCapture,
    AccountingType,
    PayConfirmScreenType,
    SuccessUrl,
    CancelUrl,
    ErrorUrl,
    NoteToBuyer,
    AuthorizePushUrl,
    CapturePushUrl,
    CancelPushUrl,
    CancellationReason,
    AddInfoRespFlag,
    MerchantCcid,
    TxnVersion,
    DummyRequest,
    AuthHash,
    Params,
    AmazonCheckoutSessionId,
    ConsentAuthType,
    FrequencyUnit,
    FrequencyValue,
    SuppressShippingAddressView,
    PlatformId,
    AddressRestrictions,
    PayConfirmScreenUrl,
    ExtendExpiration,
    OriginalOrderId,
    ClosureReason,
    ServiceTypeCd,
    NewerFlag,
    ContainDummyFlag,
    MaxCount,
    SearchParameters,
    OrderStatus,
    Command,
    Mstatus,
    TxnDatetime,
    DetailOrderType,
    DetailCommandType,
    CenterOrderId,
    CenterTransactionId,
    ConsentStatus,
    RequestId,
}

impl Field {
    pub const ALL: [Field; 45] = [
        Field::OrderId,
        Field::Amount,
        Field::WithCapture,
        Field::AccountingType,
        Field::PayConfirmScreenType,
        Field::SuccessUrl,
        Field::CancelUrl,
        Field::ErrorUrl,
        Field::NoteToBuyer,
        Field::AuthorizePushUrl,
        Field::CapturePushUrl,
        Field::CancelPushUrl,
        Field::CancellationReason,
        Field::AddInfoRespFlag,
        Field::MerchantCcid,
        Field::TxnVersion,
        Field::DummyRequest,
        Field::AuthHash,
        Field::Params,
        Field::AmazonCheckoutSessionId,
        Field::ConsentAuthType,
        Field::FrequencyUnit,
        Field::FrequencyValue,
        Field::SuppressShippingAddressView,
        Field::PlatformId,
        Field::AddressRestrictions,
        Field::PayConfirmScreenUrl,
        Field::ExtendExpiration,
        Field::OriginalOrderId,
        Field::ClosureReason,
        Field::ServiceTypeCd,
        Field::NewerFlag,
        Field::ContainDummyFlag,
        Field::MaxCount,
        Field::SearchParameters,
        Field::OrderStatus,
        Field::Command,
        Field::Mstatus,
        Field::TxnDatetime,
        Field::DetailOrderType,
        Field::DetailCommandType,
        Field::CenterOrderId,
        Field::CenterTransactionId,
        Field::ConsentStatus,
        Field::RequestId,
    ];

    /// The field's name on the wire.
    pub fn name(self) -> &'static str {
        match self {
            Field::OrderId => "orderId",
            Field::Amount => "amount",
            Field::WithCapture => "withCapture",
            Field::AccountingType => "accountingType",
            Field::PayConfirmScreenType => "payConfirmScreenType",
            Field::SuccessUrl => "successUrl",
            Field::CancelUrl => "cancelUrl",
            Field::ErrorUrl => "errorUrl",
            Field::NoteToBuyer => "noteToBuyer",
            Field::AuthorizePushUrl => "authorizePushUrl",
            Field::CapturePushUrl => "capturePushUrl",
            Field::CancelPushUrl => "cancelPushUrl",
            Field::CancellationReason => "cancellationReason",
            Field::AddInfoRespFlag => "addInfoRespFlag",
            Field::MerchantCcid => "merchantCcid",
            Field::TxnVersion => "txnVersion",
            Field::DummyRequest => "dummyRequest",
            Field::AuthHash => "authHash",
            Field::Params => "params",
            Field::AmazonCheckoutSessionId => "amazonCheckoutSessionId",
            Field::ConsentAuthType => "consentAuthType",
            Field::FrequencyUnit => "frequencyUnit",
            Field::FrequencyValue => "frequencyValue",
            Field::SuppressShippingAddressView => "suppressShippingAddressView",
            Field::PlatformId => "platformId",
            Field::AddressRestrictions => "addressRestrictions",
            Field::PayConfirmScreenUrl => "payConfirmScreenUrl",
            Field::ExtendExpiration => "extendExpiration",
            Field::OriginalOrderId => "originalOrderId",
            Field::ClosureReason => "closureReason",
            Field::ServiceTypeCd => "serviceTypeCd",
            Field::NewerFlag => "newerFlag",
            Field::ContainDummyFlag => "containDummyFlag",
            Field::MaxCount => "maxCount",
            Field::SearchParameters => "searchParameters",
            Field::OrderStatus => "orderStatus",
            Field::Command => "command",
            Field::Mstatus => "mstatus",
            Field::TxnDatetime => "txnDatetime",
            Field::DetailOrderType => "detailOrderType",
            Field::DetailCommandType => "detailCommandType",
            Field::CenterOrderId => "centerOrderId",
            Field::CenterTransactionId => "centerTransactionId",
            Field::ConsentStatus => "consentStatus",
            Field::RequestId => "requestId",
        }
    }

    /// Block 2 of the code: `F` and the 1-based position in [`Field::ALL`].
    pub fn block(self) -> String {
        let index = Field::ALL.iter().position(|f| *f == self).unwrap_or(0) + 1;
        format!("F{index:03}")
    }
}

/// A complete result: the kind, the field at fault if any, and the message for `merrMsg`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResultCode {
    pub kind: Kind,
    pub field: Option<Field>,
    pub message: String,
}

impl ResultCode {
    pub fn success() -> ResultCode {
        ResultCode {
            kind: Kind::Success,
            field: None,
            message: "Success".to_owned(),
        }
    }

    pub fn new(kind: Kind, message: impl Into<String>) -> ResultCode {
        ResultCode {
            kind,
            field: None,
            message: message.into(),
        }
    }

    /// A failure naming a field; the message starts with the field's name.
    pub fn field(kind: Kind, field: Field, detail: impl std::fmt::Display) -> ResultCode {
        ResultCode {
            kind,
            field: Some(field),
            message: format!("{} {}", field.name(), detail),
        }
    }

    /// The 16-character `vResultCode`.
    pub fn code(&self) -> String {
        let field = self.field.map(Field::block);
        format!(
            "{}{}00000000",
            self.kind.block(),
            field.as_deref().unwrap_or("0000")
        )
    }

    pub fn mstatus(&self) -> &'static str {
        self.kind.mstatus()
    }

    /// A stored `vResultCode` and message back as a result code; `None` if the code is not one
    /// of this table's.
    pub fn parse(code: &str, message: impl Into<String>) -> Option<ResultCode> {
        let kind = Kind::ALL
            .into_iter()
            .find(|k| code.get(..4) == Some(k.block()))?;
        let block2 = code.get(4..8)?;
        let field = match block2 {
            "0000" => None,
            b => Some(Field::ALL.into_iter().find(|f| f.block() == b)?),
        };
        let parsed = ResultCode {
            kind,
            field,
            message: message.into(),
        };
        (parsed.code() == code).then_some(parsed)
    }

    pub fn is_success(&self) -> bool {
        self.kind == Kind::Success
    }
}

impl From<Refusal> for ResultCode {
    fn from(refusal: Refusal) -> ResultCode {
        let kind = match refusal {
            Refusal::NotAuthorizedYet(_) => Kind::NotAuthorizedYet,
            Refusal::BuyerNotSignedIn => Kind::BuyerNotSignedIn,
            Refusal::AuthorizationInProgress => Kind::AuthorizationInProgress,
            Refusal::AlreadyCaptured => Kind::AlreadyCaptured,
            Refusal::CaptureExceedsAuthorized { .. } => {
                return ResultCode::field(
                    Kind::CaptureExceedsAuthorized,
                    Field::Amount,
                    format!("is invalid: {refusal}"),
                )
            }
            Refusal::CancelAfterCapture => Kind::CancelAfterCapture,
            Refusal::RefundBeforeCapture => Kind::RefundBeforeCapture,
            Refusal::RefundExceedsRefundable { .. } => {
                return ResultCode::field(
                    Kind::RefundExceedsRefundable,
                    Field::Amount,
                    format!("is invalid: {refusal}"),
                )
            }
            Refusal::FullyRefunded => Kind::FullyRefunded,
            Refusal::Closed(_) => Kind::OrderClosed,
            Refusal::InvalidTransition { .. } | Refusal::InvalidConsentTransition { .. } => {
                Kind::Internal
            }
            Refusal::ConsentOnly => Kind::ConsentOnly,
            Refusal::ConsentNotActive(_) => Kind::ConsentNotActive,
            Refusal::NotRecurring => Kind::NotRecurring,
            Refusal::NotOneTime => Kind::NotOneTime,
        };
        ResultCode::field(
            kind,
            Field::OrderId,
            format!("cannot be used now: {refusal}"),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn stored_codes_parse_back() {
        for kind in Kind::ALL {
            let r = ResultCode::field(kind, Field::Amount, "x");
            assert_eq!(ResultCode::parse(&r.code(), r.message.clone()), Some(r));
            let r = ResultCode::new(kind, "y");
            assert_eq!(ResultCode::parse(&r.code(), "y"), Some(r));
        }
        assert_eq!(ResultCode::parse("X000000000000000", "z"), None);
        assert_eq!(ResultCode::parse("S00000000000000", "z"), None);
    }

    #[test]
    fn codes_are_sixteen_characters_and_blocks_are_unique() {
        let mut seen = HashSet::new();
        for kind in Kind::ALL {
            seen.insert(kind.block());
            let code = ResultCode::field(kind, Field::ClosureReason, "x").code();
            assert_eq!(code.len(), 16, "{kind:?}");
        }
        let distinct_kinds: HashSet<_> = Kind::ALL.iter().collect();
        assert_eq!(seen.len(), distinct_kinds.len());
        let fields: HashSet<_> = Field::ALL.iter().map(|f| f.block()).collect();
        assert_eq!(fields.len(), Field::ALL.len());
    }

    #[test]
    fn amount_below_minimum_names_the_field() {
        let r = ResultCode::field(
            Kind::FieldBelowMinimum,
            Field::Amount,
            "is below the minimum of 1",
        );
        assert_eq!(r.code(), "E206F00200000000");
        assert_eq!(r.mstatus(), "failure");
        assert!(r.message.starts_with("amount "));
        assert_eq!(ResultCode::success().code(), "S000000000000000");
    }

    #[test]
    fn the_documented_table_lists_every_code() {
        let doc = include_str!("../../../docs/result-codes.md");
        for kind in Kind::ALL {
            let row = format!("| `{}` |", kind.block());
            assert!(doc.contains(&row), "docs/result-codes.md lacks {row}");
            assert!(
                doc.contains(kind.meaning()),
                "docs lack meaning of {kind:?}"
            );
        }
        for field in Field::ALL {
            let row = format!("| `{}` | `{}` |", field.block(), field.name());
            assert!(doc.contains(&row), "docs/result-codes.md lacks {row}");
        }
    }
}
