//! Authorizations (on an agreement or on an order reference), captures and refunds: each made
//! once per seller reference id, the same command again answered with what it made.

use super::*;
use crate::engine::agreements::payment::{
    AuthorizationOutcome, CaptureOutcome, NewAuthorization, NewCapture, NewRefund,
};
use crate::engine::agreements::simulation::Simulation;
use kessai_core::Money;

/// AuthorizeOnBillingAgreement, or Authorize on an order reference.
#[derive(Debug, Clone)]
pub struct AuthorizeCommand {
    pub reference_id: String,
    pub amount: Money,
    /// `TransactionTimeout` 0.
    pub synchronous: bool,
    pub capture_now: bool,
    pub note: Option<String>,
    pub soft_descriptor: Option<String>,
    pub simulation: Option<Simulation>,
    /// For the order reference AuthorizeOnBillingAgreement makes.
    pub order: OrderAttributes,
    pub inherit_shipping_address: bool,
}

#[derive(Debug, Clone)]
pub struct CaptureCommand {
    pub reference_id: String,
    pub amount: Money,
    pub note: Option<String>,
    pub soft_descriptor: Option<String>,
    pub simulation: Option<Simulation>,
}

#[derive(Debug, Clone)]
pub struct RefundCommand {
    pub reference_id: String,
    pub amount: Money,
    pub note: Option<String>,
    pub soft_descriptor: Option<String>,
    pub simulation: Option<Simulation>,
}

/// How Amazon decides an authorization: a simulation, else the payment method.
fn authorization_outcome(
    simulation: Option<Simulation>,
    payment_method_declines: bool,
    synchronous: bool,
) -> AuthorizationOutcome {
    let reopen = |m: Option<u32>| m.filter(|_| !synchronous).map(|m| i64::from(m) * 60);
    match simulation {
        Some(Simulation::InvalidPaymentMethod {
            soft_decline,
            reopen_after_minutes,
        }) => AuthorizationOutcome::Declined {
            reason: AuthorizationReason::InvalidPaymentMethod,
            soft_decline,
            reopen_after: reopen(reopen_after_minutes),
        },
        Some(Simulation::AmazonRejected) => AuthorizationOutcome::Declined {
            reason: AuthorizationReason::AmazonRejected,
            soft_decline: None,
            reopen_after: None,
        },
        Some(Simulation::TransactionTimedOut) => AuthorizationOutcome::Declined {
            reason: AuthorizationReason::TransactionTimedOut,
            soft_decline: None,
            reopen_after: None,
        },
        Some(Simulation::ExpiredUnused { minutes }) => {
            AuthorizationOutcome::OpenUntil(i64::from(minutes) * 60)
        }
        Some(Simulation::AmazonClosed) => AuthorizationOutcome::AmazonClosed,
        Some(Simulation::Pending) => AuthorizationOutcome::StaysPending,
        Some(Simulation::PaymentMethodNotAllowed) | None if payment_method_declines => {
            AuthorizationOutcome::Declined {
                reason: AuthorizationReason::InvalidPaymentMethod,
                soft_decline: None,
                reopen_after: None,
            }
        }
        Some(Simulation::PaymentMethodNotAllowed) | None => AuthorizationOutcome::Open,
    }
}

impl Agreements {
    /// The object a reference id already names, if the same command made it; a refusal if
    /// the reference id was used otherwise.
    async fn replay(
        &self,
        s: &Scope<'_>,
        reference_id: &str,
        kind: Kind,
        fingerprint: &str,
    ) -> Result<Option<String>, EngineError> {
        match self.store.reference(s.seller.id(), reference_id).await? {
            None => Ok(None),
            Some(row) if row.kind == kind && row.fingerprint == fingerprint => {
                Ok(Some(row.object_id))
            }
            Some(row) if row.kind == kind => {
                Err(Refusal::DuplicateRequest(reference_id.to_owned()).into())
            }
            Some(_) => Err(Refusal::DuplicateReferenceId(reference_id.to_owned()).into()),
        }
    }

    async fn fresh_child<T>(
        &self,
        kind: Kind,
        make: impl Fn(&dyn IdSource) -> T,
        text: impl Fn(&T) -> &str,
    ) -> Result<T, EngineError> {
        loop {
            let id = make(&*self.ids);
            if !self.store.exists(kind, text(&id)).await? {
                return Ok(id);
            }
        }
    }

    /// What a decided authorization does around it: a captured-at-once authorization gets its
    /// capture; a declined one gives its amount back to the agreement's month, and an
    /// `InvalidPaymentMethod` decline suspends the agreement (and its order reference).
    pub(super) async fn after_decision(
        &self,
        auth: Authorization,
        decided: Decided,
        agreement: &mut BillingAgreement,
        order: &mut OrderReference,
        now: Timestamp,
    ) -> Result<(Authorization, Option<Capture>), EngineError> {
        match decided {
            Decided::Opened if auth.capture_now() => {
                let oro = auth.order_reference().clone();
                let id = self
                    .fresh_child(
                        Kind::Capture,
                        |ids| CaptureId::generate(&oro, ids),
                        |c| c.as_str(),
                    )
                    .await?;
                let capture = Capture::new(
                    NewCapture {
                        id,
                        authorization: auth.id().clone(),
                        seller: auth.seller().clone(),
                        environment: auth.environment(),
                        reference_id: auth.reference_id().to_owned(),
                        amount: auth.amount(),
                        note: None,
                        soft_descriptor: auth.soft_descriptor().map(str::to_owned),
                        outcome: CaptureOutcome::Completed,
                    },
                    now,
                );
                Ok((auth.captured_by(&capture, now), Some(capture)))
            }
            Decided::Opened | Decided::Closed => Ok((auth, None)),
            Decided::Declined {
                suspends,
                reopen_after,
            } => {
                *agreement = agreement.released(auth.amount(), auth.created_at());
                if suspends {
                    *agreement = agreement.suspended(reopen_after.map(|s| now + s), now);
                    *order = order.suspended(now);
                }
                Ok((auth, None))
            }
        }
    }

    /// Makes an authorization on `order` (Open) under agreement `before`, with the checks
    /// both kinds of Authorize share, and stores it all.
    async fn authorize_locked(
        &self,
        s: &Scope<'_>,
        before: BillingAgreement,
        order: OrderReference,
        order_is_implied: bool,
        command: &AuthorizeCommand,
        fp: String,
    ) -> Result<Authorization, EngineError> {
        before.plan_charge(command.amount, s.now)?;
        let oro_id = order.id().clone();
        let auth_id = self
            .fresh_child(
                Kind::Authorization,
                |ids| AuthorizationId::generate(&oro_id, ids),
                |a| a.as_str(),
            )
            .await?;
        let declines = before.payment_method().is_none_or(|p| p.declines());
        let (auth, decided) = Authorization::new(
            NewAuthorization {
                id: auth_id.clone(),
                order_reference: oro_id,
                agreement: before.id().clone(),
                seller: s.seller.id().clone(),
                environment: s.environment,
                reference_id: command.reference_id.clone(),
                amount: command.amount,
                note: command.note.clone(),
                soft_descriptor: command.soft_descriptor.clone(),
                capture_now: command.capture_now,
                synchronous: command.synchronous,
                outcome: authorization_outcome(command.simulation, declines, command.synchronous),
            },
            s.now,
        );
        let mut agreement = before.consumed(command.amount, s.now);
        let mut order = order.with_authorization(auth_id.clone(), s.now);
        let (auth, capture) = match decided {
            Some(d) => {
                self.after_decision(auth, d, &mut agreement, &mut order, s.now)
                    .await?
            }
            None => (auth, None),
        };
        if order_is_implied {
            order = order.closed_by_amazon(s.now);
        }
        let mut change = Change::default();
        change.references.push(ReferenceRow {
            seller: s.seller.id().clone(),
            reference_id: command.reference_id.clone(),
            kind: Kind::Authorization,
            object_id: auth_id.as_str().to_owned(),
            fingerprint: fp,
        });
        change.agreement(&before, agreement);
        change.records.push(Record::OrderReference(order));
        change.authorization(auth.clone(), decided.is_some());
        if let Some(c) = capture {
            change.capture(c, true);
        }
        self.commit(change, s.now).await?;
        Ok(auth)
    }

    /// AuthorizeOnBillingAgreement: an order reference made, confirmed and closed around one
    /// authorization. Answers the authorization (its order reference id within).
    pub async fn authorize_on_agreement(
        &self,
        s: Scope<'_>,
        agreement_id: &str,
        command: &AuthorizeCommand,
    ) -> Result<Authorization, EngineError> {
        let _guard = self.write.lock().await;
        self.settle_locked(s.now).await?;
        let before = mine(&s, self.store.agreement(agreement_id).await?, || {
            Refusal::UnknownBillingAgreement(agreement_id.to_owned())
        })?;
        let fp = fingerprint(agreement_id, command);
        if let Some(id) = self
            .replay(&s, &command.reference_id, Kind::Authorization, &fp)
            .await?
        {
            return self.existing_authorization(&id).await;
        }
        let oro_id = loop {
            let id = OrderReferenceId::generate(s.environment, &*self.ids);
            if !self.store.exists(Kind::OrderReference, id.as_str()).await? {
                break id;
            }
        };
        let attributes = OrderAttributes {
            order_total: Some(command.amount),
            ..command.order.clone()
        };
        let order = OrderReference::draft(
            oro_id,
            s.seller.id().clone(),
            s.environment,
            before.id().clone(),
            before.buyer_id(),
            before
                .address_id()
                .filter(|_| command.inherit_shipping_address)
                .map(str::to_owned),
            attributes,
            s.now,
        )
        .opened(s.now);
        self.authorize_locked(&s, before, order, true, command, fp)
            .await
    }

    async fn existing_authorization(&self, id: &str) -> Result<Authorization, EngineError> {
        self.store
            .authorization(id)
            .await?
            .ok_or_else(|| Refusal::UnknownAuthorization(id.to_owned()).into())
    }

    /// Authorize on an order reference made with CreateOrderReferenceForId.
    pub async fn authorize(
        &self,
        s: Scope<'_>,
        order_id: &str,
        command: &AuthorizeCommand,
    ) -> Result<Authorization, EngineError> {
        let _guard = self.write.lock().await;
        self.settle_locked(s.now).await?;
        let order = mine(&s, self.store.order_reference(order_id).await?, || {
            Refusal::UnknownOrderReference(order_id.to_owned())
        })?;
        let fp = fingerprint(order_id, command);
        if let Some(id) = self
            .replay(&s, &command.reference_id, Kind::Authorization, &fp)
            .await?
        {
            return self.existing_authorization(&id).await;
        }
        let mut held = 0;
        for id in order.authorizations() {
            if let Some(a) = self.store.authorization(id.as_str()).await? {
                if a.holds() {
                    held += a.amount().minor();
                }
            }
        }
        order.plan_authorize(command.amount, held)?;
        let agreement = self
            .store
            .agreement(order.parent().as_str())
            .await?
            .ok_or_else(|| Refusal::UnknownBillingAgreement(order.parent().to_string()))?;
        self.authorize_locked(&s, agreement, order, false, command, fp)
            .await
    }

    pub async fn close_authorization(
        &self,
        s: Scope<'_>,
        id: &str,
    ) -> Result<Authorization, EngineError> {
        let _guard = self.write.lock().await;
        self.settle_locked(s.now).await?;
        let before = mine(&s, self.store.authorization(id).await?, || {
            Refusal::UnknownAuthorization(id.to_owned())
        })?;
        let after = before.plan_close(s.now)?;
        if after != before {
            let mut change = Change::default();
            change.authorization(after.clone(), true);
            self.commit(change, s.now).await?;
        }
        Ok(after)
    }

    // ---- captures and refunds ----

    pub async fn capture_authorization(
        &self,
        s: Scope<'_>,
        auth_id: &str,
        command: &CaptureCommand,
    ) -> Result<Capture, EngineError> {
        let _guard = self.write.lock().await;
        self.settle_locked(s.now).await?;
        let auth = mine(&s, self.store.authorization(auth_id).await?, || {
            Refusal::UnknownAuthorization(auth_id.to_owned())
        })?;
        let fp = fingerprint(auth_id, command);
        if let Some(id) = self
            .replay(&s, &command.reference_id, Kind::Capture, &fp)
            .await?
        {
            return self
                .store
                .capture(&id)
                .await?
                .ok_or_else(|| Refusal::UnknownCapture(id).into());
        }
        auth.plan_capture(command.amount)?;
        let oro = auth.order_reference().clone();
        let id = self
            .fresh_child(
                Kind::Capture,
                |ids| CaptureId::generate(&oro, ids),
                |c| c.as_str(),
            )
            .await?;
        let outcome = match command.simulation {
            Some(Simulation::AmazonRejected) => CaptureOutcome::Declined,
            Some(Simulation::AmazonClosed) => CaptureOutcome::AmazonClosed,
            Some(Simulation::Pending) => CaptureOutcome::Pending,
            _ => CaptureOutcome::Completed,
        };
        let capture = Capture::new(
            NewCapture {
                id: id.clone(),
                authorization: auth.id().clone(),
                seller: s.seller.id().clone(),
                environment: s.environment,
                reference_id: command.reference_id.clone(),
                amount: command.amount,
                note: command.note.clone(),
                soft_descriptor: command.soft_descriptor.clone(),
                outcome,
            },
            s.now,
        );
        let after = auth.captured_by(&capture, s.now);
        let mut change = Change::default();
        change.references.push(ReferenceRow {
            seller: s.seller.id().clone(),
            reference_id: command.reference_id.clone(),
            kind: Kind::Capture,
            object_id: id.as_str().to_owned(),
            fingerprint: fp,
        });
        let auth_changed = after.state() != auth.state();
        change.authorization(after, auth_changed);
        change.capture(capture.clone(), capture.state() != CaptureState::Pending);
        self.commit(change, s.now).await?;
        Ok(capture)
    }

    pub async fn refund_capture(
        &self,
        s: Scope<'_>,
        capture_id: &str,
        command: &RefundCommand,
    ) -> Result<Refund, EngineError> {
        let _guard = self.write.lock().await;
        self.settle_locked(s.now).await?;
        let capture = mine(&s, self.store.capture(capture_id).await?, || {
            Refusal::UnknownCapture(capture_id.to_owned())
        })?;
        let fp = fingerprint(capture_id, command);
        if let Some(id) = self
            .replay(&s, &command.reference_id, Kind::Refund, &fp)
            .await?
        {
            return self
                .store
                .refund(&id)
                .await?
                .ok_or_else(|| Refusal::UnknownRefund(id).into());
        }
        capture.plan_refund(command.amount)?;
        let auth = self
            .store
            .authorization(capture.authorization().as_str())
            .await?
            .ok_or_else(|| Refusal::UnknownAuthorization(capture.authorization().to_string()))?;
        let oro = auth.order_reference().clone();
        let id = self
            .fresh_child(
                Kind::Refund,
                |ids| RefundId::generate(&oro, ids),
                |r| r.as_str(),
            )
            .await?;
        let refund = Refund::new(
            NewRefund {
                id: id.clone(),
                capture: capture.id().clone(),
                seller: s.seller.id().clone(),
                environment: s.environment,
                reference_id: command.reference_id.clone(),
                amount: command.amount,
                note: command.note.clone(),
                soft_descriptor: command.soft_descriptor.clone(),
                declines: command.simulation == Some(Simulation::AmazonRejected),
            },
            s.now,
        );
        let mut change = Change::default();
        change.references.push(ReferenceRow {
            seller: s.seller.id().clone(),
            reference_id: command.reference_id.clone(),
            kind: Kind::Refund,
            object_id: id.as_str().to_owned(),
            fingerprint: fp,
        });
        change.capture(capture.with_refund(&refund, s.now), false);
        change.records.push(Record::Refund(refund.clone()));
        self.commit(change, s.now).await?;
        Ok(refund)
    }
}
