//! Sellers and the buyer's side: what the test helpers and the widgets change.

use super::*;
use kessai_core::{Currency, Secret};

impl Agreements {
    /// A new seller with fresh MWS keys.
    pub async fn create_seller(
        &self,
        currency: Currency,
        ipn_url: Option<String>,
        now: Timestamp,
    ) -> Result<Seller, EngineError> {
        let ids = &*self.ids;
        let seller = Seller::new(
            SellerId::generate(ids),
            format!("AKIA{}", ids.pick(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 16)),
            Secret::new(ids.pick(
                b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/",
                40,
            )),
            format!("amzn1.application-oa2-client.{}", ids.hex(16)),
            currency,
            ipn_url,
        );
        self.store.insert_seller(&seller, now).await?;
        Ok(seller)
    }

    /// A Draft agreement as the widgets leave it.
    pub async fn create_agreement(
        &self,
        seller: &Seller,
        environment: Environment,
        buyer_id: &str,
        address_id: Option<String>,
        payment_method: Option<PaymentMethod>,
        now: Timestamp,
    ) -> Result<BillingAgreement, EngineError> {
        let _guard = self.write.lock().await;
        let id = loop {
            let id = BillingAgreementId::generate(environment, &*self.ids);
            if !self.store.exists(Kind::Agreement, id.as_str()).await? {
                break id;
            }
        };
        let ba = BillingAgreement::draft(
            id,
            seller.id().clone(),
            environment,
            seller.currency(),
            buyer_id,
            address_id,
            payment_method,
            now,
        );
        self.store
            .write(&Write {
                records: vec![Record::Agreement(ba.clone())],
                ..Default::default()
            })
            .await?;
        Ok(ba)
    }

    /// The buyer acts on an agreement in a widget (consent, payment method).
    pub async fn as_buyer(
        &self,
        id: &str,
        now: Timestamp,
        act: impl FnOnce(&BillingAgreement) -> BillingAgreement,
    ) -> Result<BillingAgreement, EngineError> {
        let _guard = self.write.lock().await;
        self.settle_locked(now).await?;
        let before = self
            .store
            .agreement(id)
            .await?
            .ok_or_else(|| Refusal::UnknownBillingAgreement(id.to_owned()))?;
        let after = act(&before);
        let mut change = Change::default();
        change.agreement(&before, after.clone());
        self.commit(change, now).await?;
        Ok(after)
    }

    /// The agreement's buyer changes a choice in a widget; another buyer's agreement is
    /// unknown to them.
    pub async fn buyer_change(
        &self,
        id: &str,
        buyer_id: &str,
        change: BuyerChange,
        now: Timestamp,
    ) -> Result<BillingAgreement, EngineError> {
        let _guard = self.write.lock().await;
        self.settle_locked(now).await?;
        let before = self
            .store
            .agreement(id)
            .await?
            .filter(|b| b.buyer_id() == buyer_id)
            .ok_or_else(|| Refusal::UnknownBillingAgreement(id.to_owned()))?;
        let after = before.plan_buyer_change(change, now)?;
        let mut change = Change::default();
        change.agreement(&before, after.clone());
        self.commit(change, now).await?;
        Ok(after)
    }
}
