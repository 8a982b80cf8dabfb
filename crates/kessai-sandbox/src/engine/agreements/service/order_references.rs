//! The order references made on an agreement (CreateOrderReferenceForId) and their changes.

use super::*;

impl Agreements {
    /// CreateOrderReferenceForId on an Open agreement.
    pub async fn create_order_reference(
        &self,
        s: Scope<'_>,
        agreement_id: &str,
        attributes: &OrderAttributes,
        inherit_shipping_address: bool,
        confirm_now: bool,
    ) -> Result<OrderReference, EngineError> {
        let _guard = self.write.lock().await;
        self.settle_locked(s.now).await?;
        let agreement = mine(&s, self.store.agreement(agreement_id).await?, || {
            Refusal::UnknownBillingAgreement(agreement_id.to_owned())
        })?;
        if agreement.state() != BillingAgreementState::Open {
            return Err(Refusal::BillingAgreementStatus(agreement.state()).into());
        }
        if let Some(total) = attributes.order_total {
            if total.currency() != agreement.currency() {
                return Err(Refusal::CurrencyMismatch {
                    expected: agreement.currency(),
                    got: total.currency(),
                }
                .into());
            }
        }
        let id = loop {
            let id = OrderReferenceId::generate(s.environment, &*self.ids);
            if !self.store.exists(Kind::OrderReference, id.as_str()).await? {
                break id;
            }
        };
        let mut order = OrderReference::draft(
            id,
            s.seller.id().clone(),
            s.environment,
            agreement.id().clone(),
            agreement.buyer_id(),
            agreement
                .address_id()
                .filter(|_| inherit_shipping_address)
                .map(str::to_owned),
            attributes.clone(),
            s.now,
        );
        if confirm_now {
            order = order.plan_confirm(s.now)?;
        }
        self.store
            .write(&Write {
                records: vec![Record::OrderReference(order.clone())],
                ..Default::default()
            })
            .await?;
        Ok(order)
    }

    /// Loads an order reference of the caller under the lock, applies `plan`, stores it.
    pub async fn change_order_reference(
        &self,
        s: Scope<'_>,
        id: &str,
        plan: impl FnOnce(&OrderReference, bool) -> Result<OrderReference, Refusal>,
    ) -> Result<OrderReference, EngineError> {
        let _guard = self.write.lock().await;
        self.settle_locked(s.now).await?;
        let before = mine(&s, self.store.order_reference(id).await?, || {
            Refusal::UnknownOrderReference(id.to_owned())
        })?;
        let mut captured = false;
        for a in before.authorizations() {
            if let Some(a) = self.store.authorization(a.as_str()).await? {
                captured |= a.captured().minor() > 0;
            }
        }
        let after = plan(&before, captured)?;
        if after != before {
            self.store
                .write(&Write {
                    records: vec![Record::OrderReference(after.clone())],
                    ..Default::default()
                })
                .await?;
        }
        Ok(after)
    }
}
