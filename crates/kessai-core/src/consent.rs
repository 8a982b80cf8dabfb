//! The recurring (随時) consent as a state machine of pure functions, beside the one-time order.
//!
//! A recurring order (Authorize with `accountingType` "1") carries a [`Consent`]: the buyer's
//! agreement that the merchant may charge them later (Amazon Pay's Recurring charge permission).
//! Charges against it are new orders (ReAuthorize) that then live the one-time life.
//!
//! As with [`crate::order`], `plan_*` says whether a command may run now, [`Consent::apply`]
//! says what the consent is after an event, and both refuse with a typed [`Refusal`].

use crate::money::Yen;
use crate::order::Refusal;

/// Largest amount of one recurring charge (and of the consent's amount).
pub const MAX_RECURRING_AMOUNT: u64 = 100_000;

/// How often the merchant expects to charge (`frequencyUnit`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FrequencyUnit {
    Year,
    Month,
    Week,
    Day,
}

impl FrequencyUnit {
    pub const ALL: [FrequencyUnit; 4] = [
        FrequencyUnit::Year,
        FrequencyUnit::Month,
        FrequencyUnit::Week,
        FrequencyUnit::Day,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            FrequencyUnit::Year => "Year",
            FrequencyUnit::Month => "Month",
            FrequencyUnit::Week => "Week",
            FrequencyUnit::Day => "Day",
        }
    }

    pub fn parse(text: &str) -> Option<FrequencyUnit> {
        FrequencyUnit::ALL.into_iter().find(|u| u.as_str() == text)
    }

    /// The largest `frequencyValue` of this unit (the smallest is 1).
    pub fn max_value(self) -> u16 {
        match self {
            FrequencyUnit::Year => 1,
            FrequencyUnit::Month => 12,
            FrequencyUnit::Week => 52,
            FrequencyUnit::Day => 365,
        }
    }
}

/// `frequencyUnit` with `frequencyValue`, checked against each other.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Frequency {
    unit: FrequencyUnit,
    value: u16,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("frequencyValue must be 1 to {max} with frequencyUnit {unit} (got {got})", unit = .unit.as_str())]
pub struct FrequencyError {
    pub unit: FrequencyUnit,
    pub max: u16,
    pub got: u64,
}

impl Frequency {
    pub fn new(unit: FrequencyUnit, value: u64) -> Result<Frequency, FrequencyError> {
        let max = unit.max_value();
        match u16::try_from(value) {
            Ok(v) if (1..=max).contains(&v) => Ok(Frequency { unit, value: v }),
            _ => Err(FrequencyError {
                unit,
                max,
                got: value,
            }),
        }
    }

    pub fn unit(self) -> FrequencyUnit {
        self.unit
    }

    pub fn value(self) -> u16 {
        self.value
    }
}

/// Where a consent is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConsentState {
    /// Asked for; the buyer has not agreed at Amazon Pay yet (or never did).
    Requested,
    /// The buyer agreed: the merchant may charge (ReAuthorize) and change it (UpdateConsent).
    Active,
    /// Ended by the merchant (Terminate) or closed at Amazon Pay.
    Terminated,
    /// Ended because it lapsed at Amazon Pay.
    Expired,
}

impl ConsentState {
    pub const ALL: [ConsentState; 4] = [
        ConsentState::Requested,
        ConsentState::Active,
        ConsentState::Terminated,
        ConsentState::Expired,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ConsentState::Requested => "Requested",
            ConsentState::Active => "Active",
            ConsentState::Terminated => "Terminated",
            ConsentState::Expired => "Expired",
        }
    }

    pub fn parse(text: &str) -> Option<ConsentState> {
        ConsentState::ALL.into_iter().find(|s| s.as_str() == text)
    }

    pub fn is_ended(self) -> bool {
        matches!(self, ConsentState::Terminated | ConsentState::Expired)
    }
}

/// Something that happened to a consent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsentEvent {
    /// The buyer agreed at Amazon Pay (the checkout completed).
    BuyerAgreed,
    /// UpdateConsent: the expected amount and frequency changed.
    Updated {
        amount: Yen,
        frequency: Frequency,
    },
    /// Terminate, or Amazon Pay closed the charge permission.
    Terminated,
    Expired,
}

/// A recurring consent: what the buyer agreed to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Consent {
    pub state: ConsentState,
    /// The amount the merchant expects to charge each time (Amazon's recurring metadata).
    pub amount: Yen,
    pub frequency: Frequency,
    /// `consentAuthType` "1": the consent came with a first authorization.
    pub with_authorization: bool,
}

impl Consent {
    pub fn new(amount: Yen, frequency: Frequency, with_authorization: bool) -> Consent {
        Consent {
            state: ConsentState::Requested,
            amount,
            frequency,
            with_authorization,
        }
    }

    fn require_active(&self) -> Result<(), Refusal> {
        match self.state {
            ConsentState::Active => Ok(()),
            s => Err(Refusal::ConsentNotActive(s)),
        }
    }

    /// ReAuthorize: a new charge against the consent, while it is active.
    pub fn plan_charge(&self) -> Result<(), Refusal> {
        self.require_active()
    }

    /// UpdateConsent: while it is active, repeatable.
    pub fn plan_update(&self) -> Result<(), Refusal> {
        self.require_active()
    }

    /// Terminate: ends an active consent; a consent the buyer never agreed to can be
    /// terminated too (nothing is closed at Amazon then).
    pub fn plan_terminate(&self) -> Result<(), Refusal> {
        match self.state {
            ConsentState::Active | ConsentState::Requested => Ok(()),
            s => Err(Refusal::ConsentNotActive(s)),
        }
    }

    /// The consent after `event`, or a refusal if the event cannot happen now.
    pub fn apply(&self, event: ConsentEvent) -> Result<Consent, Refusal> {
        use ConsentState as S;
        let mut next = *self;
        match (self.state, event) {
            (S::Requested, ConsentEvent::BuyerAgreed) => next.state = S::Active,
            (S::Active, ConsentEvent::Updated { amount, frequency }) => {
                if amount == Yen::ZERO || amount.get() > MAX_RECURRING_AMOUNT {
                    return Err(Refusal::InvalidConsentTransition { state: self.state });
                }
                next.amount = amount;
                next.frequency = frequency;
            }
            (S::Requested | S::Active, ConsentEvent::Terminated) => next.state = S::Terminated,
            (S::Requested | S::Active, ConsentEvent::Expired) => next.state = S::Expired,
            _ => return Err(Refusal::InvalidConsentTransition { state: self.state }),
        }
        Ok(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ConsentState as S;

    fn monthly() -> Frequency {
        Frequency::new(FrequencyUnit::Month, 1).unwrap()
    }

    fn consent_in(state: S) -> Consent {
        Consent {
            state,
            amount: Yen::new(980),
            frequency: monthly(),
            with_authorization: true,
        }
    }

    fn all_events() -> Vec<ConsentEvent> {
        vec![
            ConsentEvent::BuyerAgreed,
            ConsentEvent::Updated {
                amount: Yen::new(1500),
                frequency: Frequency::new(FrequencyUnit::Week, 2).unwrap(),
            },
            ConsentEvent::Terminated,
            ConsentEvent::Expired,
        ]
    }

    #[test]
    fn frequency_limits_per_unit() {
        for (unit, max) in [
            (FrequencyUnit::Year, 1),
            (FrequencyUnit::Month, 12),
            (FrequencyUnit::Week, 52),
            (FrequencyUnit::Day, 365),
        ] {
            assert!(Frequency::new(unit, 0).is_err(), "{unit:?} 0");
            assert!(Frequency::new(unit, 1).is_ok(), "{unit:?} 1");
            assert!(Frequency::new(unit, max).is_ok(), "{unit:?} {max}");
            assert!(
                Frequency::new(unit, max + 1).is_err(),
                "{unit:?} {}",
                max + 1
            );
        }
        assert!(Frequency::new(FrequencyUnit::Day, u64::MAX).is_err());
        assert_eq!(FrequencyUnit::parse("Hour"), None);
        for u in FrequencyUnit::ALL {
            assert_eq!(FrequencyUnit::parse(u.as_str()), Some(u));
        }
    }

    #[test]
    fn every_command_in_every_state() {
        for state in S::ALL {
            let c = consent_in(state);
            let active = state == S::Active;
            assert_eq!(c.plan_charge().is_ok(), active, "charge in {state:?}");
            assert_eq!(c.plan_update().is_ok(), active, "update in {state:?}");
            assert_eq!(
                c.plan_terminate().is_ok(),
                matches!(state, S::Active | S::Requested),
                "terminate in {state:?}"
            );
            if !active {
                assert_eq!(c.plan_charge(), Err(Refusal::ConsentNotActive(state)));
            }
        }
    }

    #[test]
    fn the_allowed_transitions_are_exactly_these() {
        let mut allowed = Vec::new();
        for state in S::ALL {
            for event in all_events() {
                if let Ok(after) = consent_in(state).apply(event) {
                    allowed.push((state, after.state));
                } else {
                    assert_eq!(
                        consent_in(state).apply(event),
                        Err(Refusal::InvalidConsentTransition { state })
                    );
                }
            }
        }
        assert_eq!(
            allowed,
            vec![
                (S::Requested, S::Active),
                (S::Requested, S::Terminated),
                (S::Requested, S::Expired),
                (S::Active, S::Active),
                (S::Active, S::Terminated),
                (S::Active, S::Expired),
            ]
        );
        for state in S::ALL {
            if state.is_ended() {
                for event in all_events() {
                    assert!(consent_in(state).apply(event).is_err());
                }
            }
        }
    }

    #[test]
    fn an_update_changes_amount_and_frequency_and_keeps_the_limits() {
        let c = consent_in(S::Active);
        let weekly = Frequency::new(FrequencyUnit::Week, 2).unwrap();
        let after = c
            .apply(ConsentEvent::Updated {
                amount: Yen::new(100_000),
                frequency: weekly,
            })
            .unwrap();
        assert_eq!((after.amount, after.frequency), (Yen::new(100_000), weekly));
        assert!(c
            .apply(ConsentEvent::Updated {
                amount: Yen::new(100_001),
                frequency: weekly
            })
            .is_err());
        assert!(c
            .apply(ConsentEvent::Updated {
                amount: Yen::ZERO,
                frequency: weekly
            })
            .is_err());
    }
}
