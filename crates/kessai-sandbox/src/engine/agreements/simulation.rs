//! Sandbox simulations: the JSON a seller writes in a note field to ask for an outcome
//! (`{"SandboxSimulation": {"State": "Declined", "ReasonCode": "InvalidPaymentMethod"}}`).
//! Read only for objects of the sandbox; a note without `SandboxSimulation` is just a note.

use serde_json::Value;

/// Where the note was written: each place takes its own simulations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoteOf {
    Authorization,
    Capture,
    Refund,
    /// `ClosureReason` of CloseOrderReference.
    OrderReferenceClosure,
    /// `SellerNote` of SetOrderReferenceDetails.
    OrderReferenceNote,
}

/// An outcome asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Simulation {
    /// Declined with `InvalidPaymentMethod`; the agreement (or order reference) is suspended,
    /// and open again after `reopen_after_minutes` if given (asynchronous authorizations only).
    InvalidPaymentMethod {
        soft_decline: Option<bool>,
        reopen_after_minutes: Option<u32>,
    },
    AmazonRejected,
    TransactionTimedOut,
    /// Open, then Closed/ExpiredUnused after this many minutes.
    ExpiredUnused {
        minutes: u32,
    },
    AmazonClosed,
    /// Pending (a capture completes later; an authorization stays pending).
    Pending,
    /// The order reference gets the `PaymentMethodNotAllowed` constraint.
    PaymentMethodNotAllowed,
}

/// The note asks for something this emulator (or Amazon) cannot simulate there.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidSimulation(pub String);

/// Reads the simulation in `note`, if it carries one.
pub fn read(note: &str, place: NoteOf) -> Result<Option<Simulation>, InvalidSimulation> {
    if !note.contains("SandboxSimulation") {
        return Ok(None);
    }
    let value: Value = serde_json::from_str(note.trim())
        .map_err(|e| InvalidSimulation(format!("the SandboxSimulation JSON is not valid: {e}")))?;
    let Some(sim) = value.get("SandboxSimulation").and_then(Value::as_object) else {
        return Err(InvalidSimulation(
            "SandboxSimulation must be a JSON object.".into(),
        ));
    };
    let text = |key: &str| sim.get(key).and_then(Value::as_str).map(str::trim);
    let minutes = |key: &str| -> Result<Option<u32>, InvalidSimulation> {
        match sim.get(key) {
            None => Ok(None),
            Some(v) => v
                .as_u64()
                .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
                .and_then(|n| u32::try_from(n).ok())
                .filter(|n| (1..=1440).contains(n))
                .map(Some)
                .ok_or_else(|| InvalidSimulation(format!("{key} must be 1 to 1440 minutes."))),
        }
    };
    let soft_decline = match sim.get("SoftDecline") {
        None => None,
        Some(Value::Bool(b)) => Some(*b),
        Some(Value::String(s)) if s.trim().eq_ignore_ascii_case("true") => Some(true),
        Some(Value::String(s)) if s.trim().eq_ignore_ascii_case("false") => Some(false),
        Some(_) => {
            return Err(InvalidSimulation(
                "SoftDecline must be true or false.".into(),
            ))
        }
    };
    use NoteOf as P;
    let found = match (place, text("State"), text("ReasonCode"), text("Constraint")) {
        (P::Authorization, Some("Declined"), Some("InvalidPaymentMethod"), None) => {
            Simulation::InvalidPaymentMethod {
                soft_decline,
                reopen_after_minutes: minutes("PaymentMethodUpdateTimeInMins")?,
            }
        }
        (
            P::Authorization | P::Capture | P::Refund,
            Some("Declined"),
            Some("AmazonRejected"),
            None,
        ) => Simulation::AmazonRejected,
        (P::Authorization, Some("Declined"), Some("TransactionTimedOut"), None) => {
            Simulation::TransactionTimedOut
        }
        (P::Authorization, Some("Closed"), Some("ExpiredUnused"), None) => {
            Simulation::ExpiredUnused {
                minutes: minutes("ExpirationTimeInMins")?.unwrap_or(1),
            }
        }
        (
            P::Authorization | P::Capture | P::OrderReferenceClosure,
            Some("Closed"),
            Some("AmazonClosed"),
            None,
        ) => Simulation::AmazonClosed,
        (P::Authorization | P::Capture, Some("Pending"), None, None) => Simulation::Pending,
        (P::OrderReferenceNote, None, None, Some("PaymentMethodNotAllowed")) => {
            Simulation::PaymentMethodNotAllowed
        }
        (_, state, reason, constraint) => {
            return Err(InvalidSimulation(format!(
                "The simulation (State {}, ReasonCode {}, Constraint {}) is not supported here.",
                state.unwrap_or("-"),
                reason.unwrap_or("-"),
                constraint.unwrap_or("-")
            )))
        }
    };
    Ok(Some(found))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[allow(clippy::type_complexity)]
    fn reads_the_documented_simulations_and_refuses_others() {
        use NoteOf as P;
        let cases: &[(&str, NoteOf, Result<Option<Simulation>, ()>)] = &[
            ("just a note", P::Authorization, Ok(None)),
            (
                r#"{"SandboxSimulation": {"State":"Declined", "ReasonCode":"InvalidPaymentMethod", "PaymentMethodUpdateTimeInMins":5}}"#,
                P::Authorization,
                Ok(Some(Simulation::InvalidPaymentMethod {
                    soft_decline: None,
                    reopen_after_minutes: Some(5),
                })),
            ),
            (
                r#" {"SandboxSimulation": {"State":"Declined","ReasonCode":"InvalidPaymentMethod","SoftDecline":"true"}} "#,
                P::Authorization,
                Ok(Some(Simulation::InvalidPaymentMethod {
                    soft_decline: Some(true),
                    reopen_after_minutes: None,
                })),
            ),
            (
                r#"{"SandboxSimulation":{"State":"Declined","ReasonCode":"InvalidPaymentMethod","SoftDecline":false}}"#,
                P::Authorization,
                Ok(Some(Simulation::InvalidPaymentMethod {
                    soft_decline: Some(false),
                    reopen_after_minutes: None,
                })),
            ),
            (
                r#"{"SandboxSimulation":{"State":"Declined","ReasonCode":"AmazonRejected"}}"#,
                P::Refund,
                Ok(Some(Simulation::AmazonRejected)),
            ),
            (
                r#"{"SandboxSimulation":{"State":"Declined","ReasonCode":"TransactionTimedOut"}}"#,
                P::Capture,
                Err(()),
            ),
            (
                r#"{"SandboxSimulation":{"State":"Closed","ReasonCode":"ExpiredUnused","ExpirationTimeInMins":3}}"#,
                P::Authorization,
                Ok(Some(Simulation::ExpiredUnused { minutes: 3 })),
            ),
            (
                r#"{"SandboxSimulation":{"State":"Closed","ReasonCode":"AmazonClosed"}}"#,
                P::OrderReferenceClosure,
                Ok(Some(Simulation::AmazonClosed)),
            ),
            (
                r#"{"SandboxSimulation":{"State":"Pending"}}"#,
                P::Capture,
                Ok(Some(Simulation::Pending)),
            ),
            (
                r#"{"SandboxSimulation":{"Constraint":"PaymentMethodNotAllowed"}}"#,
                P::OrderReferenceNote,
                Ok(Some(Simulation::PaymentMethodNotAllowed)),
            ),
            (
                r#"{"SandboxSimulation":{"State":"Declined","ReasonCode":"Nope"}}"#,
                P::Authorization,
                Err(()),
            ),
            (r#"{"SandboxSimulation": "#, P::Authorization, Err(())),
            (
                r#"{"SandboxSimulation":{"State":"Closed","ReasonCode":"ExpiredUnused","ExpirationTimeInMins":0}}"#,
                P::Authorization,
                Err(()),
            ),
        ];
        for (note, place, expected) in cases {
            let got = read(note, *place).map_err(|_| ());
            assert_eq!(&got, expected, "note {note}");
        }
    }
}
