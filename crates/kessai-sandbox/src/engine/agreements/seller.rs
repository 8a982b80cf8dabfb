//! A seller registered for the MWS API: its MWS access key and secret, its Login with Amazon
//! client id and where it wants its notifications.

use super::ids::SellerId;
use kessai_core::{Currency, Secret};

#[derive(Debug, Clone)]
pub struct Seller {
    id: SellerId,
    access_key: String,
    secret_key: Secret<String>,
    lwa_client_id: String,
    currency: Currency,
    ipn_url: Option<String>,
}

impl Seller {
    pub fn new(
        id: SellerId,
        access_key: String,
        secret_key: Secret<String>,
        lwa_client_id: String,
        currency: Currency,
        ipn_url: Option<String>,
    ) -> Seller {
        Seller {
            id,
            access_key,
            secret_key,
            lwa_client_id,
            currency,
            ipn_url,
        }
    }

    pub fn id(&self) -> &SellerId {
        &self.id
    }
    pub fn access_key(&self) -> &str {
        &self.access_key
    }
    pub fn secret_key(&self) -> &Secret<String> {
        &self.secret_key
    }
    pub fn lwa_client_id(&self) -> &str {
        &self.lwa_client_id
    }
    pub fn currency(&self) -> Currency {
        self.currency
    }
    pub fn ipn_url(&self) -> Option<&str> {
        self.ipn_url.as_deref()
    }
}
