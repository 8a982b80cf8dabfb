//! Refunds of a captured charge: asked for, then settled (or declined) 30 seconds later. Refunds
//! may exceed the capture by a small allowance, as Amazon's do.

use super::clock::REFUND_SETTLES_AFTER;
use super::ids::{money, ChargeId, MerchantId, RefundId};
use super::{
    Action, AmountOf, ChargeState, Engine, EngineError, Environment, Kind, Merchant, Object,
    Simulated,
};
use kessai_core::{Currency, Money};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RefundState {
    RefundInitiated,
    Refunded,
    /// Declined (simulated).
    Declined,
}

impl RefundState {
    pub fn name(self) -> &'static str {
        match self {
            RefundState::RefundInitiated => "RefundInitiated",
            RefundState::Refunded => "Refunded",
            RefundState::Declined => "Declined",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Refund {
    id: RefundId,
    charge_id: ChargeId,
    merchant_id: MerchantId,
    created: i64,
    settles: i64,
    /// Simulated: the refund settles as declined.
    declines: bool,
    #[serde(with = "money")]
    amount: Money,
    state: RefundState,
    updated: i64,
    soft_descriptor: Option<String>,
    environment: Option<Environment>,
}

impl Refund {
    pub fn id(&self) -> &RefundId {
        &self.id
    }
    pub fn charge_id(&self) -> &ChargeId {
        &self.charge_id
    }
    pub fn merchant_id(&self) -> &MerchantId {
        &self.merchant_id
    }
    pub fn created(&self) -> i64 {
        self.created
    }
    pub fn amount(&self) -> Money {
        self.amount
    }
    pub fn state(&self) -> RefundState {
        self.state
    }
    pub fn updated(&self) -> i64 {
        self.updated
    }
    pub fn soft_descriptor(&self) -> Option<&str> {
        self.soft_descriptor.as_deref()
    }
    pub fn environment(&self) -> Option<Environment> {
        self.environment
    }

    pub(super) fn deadline(&self) -> Option<i64> {
        (self.state == RefundState::RefundInitiated).then_some(self.settles)
    }
}

/// How far refunds may exceed the capture: min(15 %, 8,400 JPY or 75 USD/EUR/GBP).
pub fn refund_allowance(captured_minor: i64, currency: Currency) -> i64 {
    let cap = match currency {
        Currency::Jpy => 8_400,
        Currency::Usd | Currency::Eur | Currency::Gbp => 7_500,
    };
    (captured_minor * 15 / 100).min(cap)
}

impl Engine {
    pub fn create_refund(
        &mut self,
        merchant: &Merchant,
        charge_id: &ChargeId,
        amount: Money,
        soft_descriptor: Option<String>,
        sim: Option<Simulated>,
        now: i64,
    ) -> Result<&Refund, EngineError> {
        let declines = match sim {
            None => false,
            Some(Simulated::RefundDeclined) => true,
            Some(other) => {
                return Err(EngineError::UnfitSimulation {
                    code: other.code().to_owned(),
                    action: Action::Refund,
                })
            }
        };
        let charge = self.charge(merchant, charge_id)?;
        let environment = charge.environment();
        if charge.state() != &ChargeState::Captured {
            return Err(EngineError::InvalidState {
                object: Object::Charge,
                state: charge.state().name(),
                action: Action::Refund,
            });
        }
        let captured = charge.captured().map(|m| m.minor()).unwrap_or(0);
        let currency = charge.amount().currency();
        if amount.currency() != currency {
            return Err(EngineError::CurrencyMismatch {
                of: AmountOf::Refund,
            });
        }
        let already: i64 = self
            .refunds
            .values()
            .filter(|r| &r.charge_id == charge_id && r.state != RefundState::Declined)
            .map(|r| r.amount.minor())
            .sum();
        let allowance = refund_allowance(captured, currency);
        if already + amount.minor() > captured + allowance {
            return Err(EngineError::RefundExceeded {
                amount,
                total: Money::new(already + amount.minor(), currency),
                most: Money::new(captured + allowance, currency),
                captured: Money::new(captured, currency),
                allowance: Money::new(allowance, currency),
            });
        }
        let base = charge_id
            .as_str()
            .rsplit_once("-C")
            .map(|(b, _)| b)
            .unwrap_or(charge_id.as_str());
        let id = RefundId::new(format!("{base}-R{}", self.ids.digits(6)));
        let settles = now + REFUND_SETTLES_AFTER;
        let refund = Refund {
            id: id.clone(),
            charge_id: charge_id.clone(),
            merchant_id: merchant.id().clone(),
            created: now,
            settles,
            declines,
            amount,
            state: RefundState::RefundInitiated,
            updated: now,
            soft_descriptor,
            environment,
        };
        self.refunds.insert(id.clone(), refund);
        self.schedule(settles, Kind::Refund, id.as_str());
        self.touch(Kind::Refund, id.as_str());
        self.refund(merchant, &id)
    }

    pub(super) fn settle_refund(&mut self, id: &RefundId, when: i64) -> bool {
        let Some(rec) = self.refunds.get_mut(id) else {
            return false;
        };
        if rec.state != RefundState::RefundInitiated || rec.settles > when {
            return false;
        }
        rec.updated = when;
        if rec.declines {
            rec.state = RefundState::Declined;
            self.touch(Kind::Refund, id.as_str());
            return true;
        }
        rec.state = RefundState::Refunded;
        let charge_id = rec.charge_id.clone();
        let amount = rec.amount;
        self.touch(Kind::Refund, id.as_str());
        if let Some(charge) = self.charges.get_mut(&charge_id) {
            charge.add_refunded(amount);
            self.touch(Kind::Charge, charge_id.as_str());
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refund_allowance_is_fifteen_percent_capped() {
        assert_eq!(refund_allowance(10_000, Currency::Jpy), 1_500);
        assert_eq!(refund_allowance(1_000_000, Currency::Jpy), 8_400);
        assert_eq!(refund_allowance(100_000, Currency::Usd), 7_500);
    }
}
