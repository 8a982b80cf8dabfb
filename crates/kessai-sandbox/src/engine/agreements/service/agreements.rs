//! The billing-agreement commands: Set, Confirm, Validate and Close.

use super::*;

impl Agreements {
    /// Loads an agreement of the caller under the lock, applies `plan`, stores the result.
    async fn change_agreement<T>(
        &self,
        s: Scope<'_>,
        id: &str,
        plan: impl FnOnce(&BillingAgreement) -> Result<(BillingAgreement, T), Refusal>,
    ) -> Result<(BillingAgreement, T), EngineError> {
        let _guard = self.write.lock().await;
        self.settle_locked(s.now).await?;
        let before = mine(&s, self.store.agreement(id).await?, || {
            Refusal::UnknownBillingAgreement(id.to_owned())
        })?;
        let (after, out) = plan(&before)?;
        if after != before {
            let mut change = Change::default();
            change.agreement(&before, after.clone());
            self.commit(change, s.now).await?;
        }
        Ok((after, out))
    }

    pub async fn set_agreement(
        &self,
        s: Scope<'_>,
        id: &str,
        attributes: &AgreementAttributes,
    ) -> Result<BillingAgreement, EngineError> {
        Ok(self
            .change_agreement(s, id, |b| Ok((b.plan_set(attributes, s.now)?, ())))
            .await?
            .0)
    }

    pub async fn confirm_agreement(
        &self,
        s: Scope<'_>,
        id: &str,
    ) -> Result<BillingAgreement, EngineError> {
        Ok(self
            .change_agreement(s, id, |b| Ok((b.plan_confirm(s.now)?, ())))
            .await?
            .0)
    }

    pub async fn validate_agreement(
        &self,
        s: Scope<'_>,
        id: &str,
    ) -> Result<(BillingAgreement, Validation), EngineError> {
        self.change_agreement(s, id, |b| b.plan_validate(s.now))
            .await
    }

    pub async fn close_agreement(
        &self,
        s: Scope<'_>,
        id: &str,
        reason: Option<&str>,
    ) -> Result<BillingAgreement, EngineError> {
        Ok(self
            .change_agreement(s, id, |b| Ok((b.plan_close(reason, s.now)?, ())))
            .await?
            .0)
    }
}
