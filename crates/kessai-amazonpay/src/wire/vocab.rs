//! Amazon's words: states, reason codes, payment intents, charge permission types and error codes.
//!
//! Amazon may add values at any time, so every enum keeps what it does not know in `Unknown`, and
//! writes back exactly the text it read. Match on the variants; compare nothing as a string.

use std::fmt;

/// Declares one vocabulary: variants with Amazon's exact spelling and an `Unknown(String)` fallback.
macro_rules! vocabulary {
    (
        $(#[$doc:meta])*
        $name:ident {
            $($(#[$vdoc:meta])* $variant:ident = $text:literal,)+
        }
    ) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
        #[serde(from = "String", into = "String")]
        pub enum $name {
            $($(#[$vdoc])* $variant,)+
            /// A value this version does not know, kept exactly as Amazon wrote it.
            Unknown(String),
        }

        impl $name {
            /// Every value this version knows, in declaration order.
            pub const KNOWN: &'static [$name] = &[$($name::$variant,)+];

            /// Reads Amazon's text; anything unknown becomes `Unknown` (never an error).
            pub fn parse(text: &str) -> $name {
                match text {
                    $($text => $name::$variant,)+
                    other => $name::Unknown(other.to_owned()),
                }
            }

            /// Amazon's text for this value.
            pub fn as_str(&self) -> &str {
                match self {
                    $($name::$variant => $text,)+
                    $name::Unknown(text) => text,
                }
            }

            /// Whether this version knows the value.
            pub fn is_known(&self) -> bool {
                !matches!(self, $name::Unknown(_))
            }
        }

        impl From<String> for $name {
            fn from(text: String) -> $name {
                match $name::parse(&text) {
                    $name::Unknown(_) => $name::Unknown(text),
                    known => known,
                }
            }
        }

        impl From<&str> for $name {
            fn from(text: &str) -> $name {
                $name::parse(text)
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> String {
                match value {
                    $name::Unknown(text) => text,
                    known => known.as_str().to_owned(),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

vocabulary! {
    /// `statusDetails.state` of a Checkout Session.
    CheckoutSessionState {
        Open = "Open",
        Completed = "Completed",
        Canceled = "Canceled",
    }
}

vocabulary! {
    /// `statusDetails.state` of a Charge.
    ChargeState {
        AuthorizationInitiated = "AuthorizationInitiated",
        Authorized = "Authorized",
        CaptureInitiated = "CaptureInitiated",
        Captured = "Captured",
        Canceled = "Canceled",
        Declined = "Declined",
    }
}

vocabulary! {
    /// `statusDetails.state` of a Charge Permission.
    ChargePermissionState {
        Chargeable = "Chargeable",
        NonChargeable = "NonChargeable",
        Closed = "Closed",
    }
}

vocabulary! {
    /// `statusDetails.state` of a Refund.
    RefundState {
        RefundInitiated = "RefundInitiated",
        Refunded = "Refunded",
        Declined = "Declined",
    }
}

vocabulary! {
    /// Why an object is in its state: `statusDetails.reasonCode`, or a Charge Permission's
    /// `statusDetails.reasons[].reasonCode`. One list for all objects, since Amazon reuses codes
    /// across them (`BuyerCanceled`, `AmazonCanceled`, `Expired`, …).
    ReasonCode {
        // Checkout Session canceled.
        BuyerCanceled = "BuyerCanceled",
        Expired = "Expired",
        Declined = "Declined",
        AmazonCanceled = "AmazonCanceled",
        // Charge declined (and refund declined: AmazonRejected, ProcessingFailure).
        SoftDeclined = "SoftDeclined",
        HardDeclined = "HardDeclined",
        AmazonRejected = "AmazonRejected",
        ProcessingFailure = "ProcessingFailure",
        TransactionTimedOut = "TransactionTimedOut",
        // Charge canceled.
        ExpiredUnused = "ExpiredUnused",
        MerchantCanceled = "MerchantCanceled",
        ChargePermissionCanceled = "ChargePermissionCanceled",
        // Charge Permission non-chargeable.
        PaymentMethodInvalid = "PaymentMethodInvalid",
        PaymentMethodDeleted = "PaymentMethodDeleted",
        BillingAddressDeleted = "BillingAddressDeleted",
        PaymentMethodExpired = "PaymentMethodExpired",
        PaymentMethodNotAllowed = "PaymentMethodNotAllowed",
        PaymentMethodNotSet = "PaymentMethodNotSet",
        MfaFailed = "MFAFailed",
        ChargeInProgress = "ChargeInProgress",
        // Charge Permission closed.
        MerchantClosed = "MerchantClosed",
        AmazonClosed = "AmazonClosed",
    }
}

vocabulary! {
    /// `paymentDetails.paymentIntent`.
    PaymentIntent {
        /// Only a chargeable Charge Permission; the merchant charges later.
        Confirm = "Confirm",
        Authorize = "Authorize",
        AuthorizeWithCapture = "AuthorizeWithCapture",
    }
}

vocabulary! {
    /// `chargePermissionType`.
    ChargePermissionType {
        OneTime = "OneTime",
        Recurring = "Recurring",
        PaymentMethodOnFile = "PaymentMethodOnFile",
    }
}

vocabulary! {
    /// The `reasonCode` of an error answer (`{"reasonCode", "message"}`).
    ErrorCode {
        // 400
        InvalidHeaderValue = "InvalidHeaderValue",
        InvalidRequest = "InvalidRequest",
        InvalidParameterValue = "InvalidParameterValue",
        InvalidRequestFormat = "InvalidRequestFormat",
        MissingHeader = "MissingHeader",
        MissingHeaderValue = "MissingHeaderValue",
        MissingParameterValue = "MissingParameterValue",
        UnrecognizedField = "UnrecognizedField",
        InvalidSandboxSimulationSpecified = "InvalidSandboxSimulationSpecified",
        DuplicateIdempotencyKey = "DuplicateIdempotencyKey",
        InvalidParameterCombination = "InvalidParameterCombination",
        CurrencyMismatch = "CurrencyMismatch",
        InvalidApiVersion = "InvalidAPIVersion",
        TransactionAmountExceeded = "TransactionAmountExceeded",
        PeriodicAmountExceeded = "PeriodicAmountExceeded",
        // 401, 403
        UnauthorizedAccess = "UnauthorizedAccess",
        InvalidAuthentication = "InvalidAuthentication",
        InvalidAccountStatus = "InvalidAccountStatus",
        InvalidRequestSignature = "InvalidRequestSignature",
        InvalidAuthorizationToken = "InvalidAuthorizationToken",
        // 404, 405, 408, 409
        ResourceNotFound = "ResourceNotFound",
        UnsupportedOperation = "UnsupportedOperation",
        RequestNotSupported = "RequestNotSupported",
        RequestTimeout = "RequestTimeout",
        AmountMismatch = "AmountMismatch",
        // 422
        InvalidChargeStatus = "InvalidChargeStatus",
        InvalidCheckoutSessionStatus = "InvalidCheckoutSessionStatus",
        InvalidChargePermissionStatus = "InvalidChargePermissionStatus",
        ChargePermissionNotModifiable = "ChargePermissionNotModifiable",
        CheckoutSessionCanceled = "CheckoutSessionCanceled",
        TransactionCountExceeded = "TransactionCountExceeded",
        AmazonRejected = "AmazonRejected",
        HardDeclined = "HardDeclined",
        SoftDeclined = "SoftDeclined",
        PaymentMethodNotAllowed = "PaymentMethodNotAllowed",
        MfaNotCompleted = "MFANotCompleted",
        TransactionTimedOut = "TransactionTimedOut",
        // 426, 429, 5xx
        TlsVersionNotSupported = "TLSVersionNotSupported",
        TooManyRequests = "TooManyRequests",
        InternalServerError = "InternalServerError",
        ProcessingFailure = "ProcessingFailure",
        ServiceUnavailable = "ServiceUnavailable",
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// Every known value of every vocabulary reads back as itself, through text and through JSON.
    macro_rules! round_trip_known {
        ($($name:ident),+) => {$(
            for value in $name::KNOWN {
                assert!(value.is_known());
                assert_eq!(&$name::parse(value.as_str()), value);
                assert_eq!(value.to_string(), value.as_str());
                let json = serde_json::to_string(value).unwrap();
                assert_eq!(json, format!("\"{}\"", value.as_str()));
                assert_eq!(&serde_json::from_str::<$name>(&json).unwrap(), value);
            }
        )+};
    }

    #[test]
    fn known_values_round_trip() {
        round_trip_known!(
            CheckoutSessionState,
            ChargeState,
            ChargePermissionState,
            RefundState,
            ReasonCode,
            PaymentIntent,
            ChargePermissionType,
            ErrorCode
        );
    }

    #[test]
    fn spellings_are_amazons() {
        assert_eq!(ReasonCode::MfaFailed.as_str(), "MFAFailed");
        assert_eq!(ErrorCode::InvalidApiVersion.as_str(), "InvalidAPIVersion");
        assert_eq!(ErrorCode::MfaNotCompleted.as_str(), "MFANotCompleted");
        assert_eq!(
            ChargeState::parse("AuthorizationInitiated"),
            ChargeState::AuthorizationInitiated
        );
        assert_eq!(
            serde_json::from_str::<PaymentIntent>("\"AuthorizeWithCapture\"").unwrap(),
            PaymentIntent::AuthorizeWithCapture
        );
    }

    #[test]
    fn unknown_values_are_kept_exactly() {
        for text in ["Suspended", "open", "", "Open ", "新しい状態"] {
            let state: ChargeState = serde_json::from_value(serde_json::json!(text)).unwrap();
            assert_eq!(state, ChargeState::Unknown(text.to_owned()));
            assert!(!state.is_known());
            assert_eq!(state.as_str(), text);
            assert_eq!(
                serde_json::to_value(&state).unwrap(),
                serde_json::json!(text)
            );
        }
        let reason = ReasonCode::from("PaymentMethodSuspended".to_owned());
        assert_eq!(reason.to_string(), "PaymentMethodSuspended");
        assert_eq!(String::from(reason), "PaymentMethodSuspended");
    }

    #[test]
    fn case_matters() {
        assert_eq!(
            CheckoutSessionState::parse("OPEN"),
            CheckoutSessionState::Unknown("OPEN".into())
        );
    }

    #[test]
    fn non_strings_are_refused() {
        assert!(serde_json::from_str::<RefundState>("1").is_err());
        assert!(serde_json::from_str::<RefundState>("null").is_err());
    }
}
