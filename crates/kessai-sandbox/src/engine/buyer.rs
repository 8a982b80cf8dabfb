//! The buyer's choices on the sign-in page: which test buyer, which address, which payment
//! method (from [`crate::buyers`]).

use super::EngineError;
use crate::buyers::{self, Instrument, Simulation, TestAddress, TestBuyer};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuyerChoice {
    buyer_id: String,
    address_id: String,
    instrument_id: String,
}

impl BuyerChoice {
    pub fn new(buyer_id: String, address_id: String, instrument_id: String) -> BuyerChoice {
        BuyerChoice {
            buyer_id,
            address_id,
            instrument_id,
        }
    }

    /// The first test buyer, their home address and a payment method that succeeds.
    pub fn default_choice() -> BuyerChoice {
        let (b, a, i) = buyers::default_choice();
        BuyerChoice::new(b.id.into(), a.id.into(), i.id.into())
    }

    pub fn instrument_id(&self) -> &str {
        &self.instrument_id
    }

    /// The buyer, address and payment method chosen, each checked to exist.
    pub fn resolve(
        &self,
    ) -> Result<
        (
            &'static TestBuyer,
            &'static TestAddress,
            &'static Instrument,
        ),
        EngineError,
    > {
        let buyer = buyers::buyer(&self.buyer_id).ok_or(EngineError::UnknownBuyer)?;
        let address = buyer
            .addresses
            .iter()
            .find(|a| a.id == self.address_id)
            .ok_or(EngineError::UnknownAddress)?;
        let instrument =
            buyers::instrument(&self.instrument_id).ok_or(EngineError::UnknownInstrument)?;
        Ok((buyer, address, instrument))
    }

    /// How the chosen payment method behaves (a succeeding one if it is unknown).
    pub fn simulation(&self) -> Simulation {
        buyers::instrument(&self.instrument_id)
            .map(|i| i.simulation)
            .unwrap_or(Simulation::Success)
    }
}
