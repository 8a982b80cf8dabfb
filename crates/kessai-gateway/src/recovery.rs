//! The recovery worker: at start and then periodically, under a lease held while it runs (so that
//! of several gateways on one database one runs it at a time; the lease is given up at the end of
//! a run, and runs out on its own if its holder died mid-run), it
//! - resolves every pending operation of the operation log ([`operations::resolve_pending`]);
//! - finishes orders that wait on Amazon: an authorization whose buyer never came back
//!   ([`operations::settle`], which asks Amazon and moves the order as Amazon sees it);
//! - looks at orders past Amazon's deadlines (an authorization older than 30 days, a checkout
//!   the buyer left for more than 24 hours), asks Amazon and moves them as Amazon says, with their
//!   push, in case the notification was lost;
//! - forgets Idempotency-Keys older than a week.

use crate::app::AppState;
use crate::operations;
use kessai_core::OrderState;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct RecoverySettings {
    /// How often the worker runs (it also runs at start).
    pub every: Duration,
    /// An order waiting on the buyer's return is looked at after this long without a change.
    pub waiting_after: Duration,
}

impl Default for RecoverySettings {
    fn default() -> Self {
        RecoverySettings {
            every: Duration::from_secs(30),
            waiting_after: Duration::from_secs(600),
        }
    }
}

const KEEP_IDEMPOTENCY_KEYS_SECS: i64 = 7 * 24 * 3600;

/// What one cycle did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Report {
    pub ran: bool,
    pub resolved: usize,
    pub unresolved: usize,
    pub waiting_settled: usize,
    /// Orders moved because Amazon expired or canceled them (found by the deadlines, in case
    /// the notification was lost).
    pub expired: usize,
}

pub fn spawn(state: AppState) {
    tokio::spawn(async move {
        loop {
            let report = cycle(&state).await;
            if report.resolved + report.unresolved + report.waiting_settled > 0 {
                tracing::info!(?report, "recovery");
            }
            tokio::time::sleep(state.recovery.every).await;
        }
    });
}

/// One run of the worker, if this gateway holds the lease.
pub async fn cycle(state: &AppState) -> Report {
    let now = state.clock.unix();
    // Long enough for one run; a holder that dies mid-run blocks the others this long at most.
    let ttl = 120;
    match state
        .store
        .try_lease("recovery", &state.instance, now, ttl)
        .await
    {
        Ok(true) => {}
        Ok(false) => return Report::default(),
        Err(e) => {
            tracing::error!(%e, "recovery: cannot take the lease");
            return Report::default();
        }
    }
    let mut report = Report {
        ran: true,
        ..Report::default()
    };
    match operations::resolve_pending(state).await {
        Ok((resolved, unresolved)) => {
            report.resolved = resolved;
            report.unresolved = unresolved;
        }
        Err(e) => tracing::error!(%e, "recovery: cannot read pending operations"),
    }
    let waiting_secs = i64::try_from(state.recovery.waiting_after.as_secs()).unwrap_or(600);
    let before = kessai_store::time_text(state.now() - time::Duration::seconds(waiting_secs));
    match state
        .store
        .orders_in_state(OrderState::Authorizing, &before, 100)
        .await
    {
        Ok(orders) => {
            for o in orders {
                let _guard = state.locks.lock(&o.merchant, &o.order_id).await;
                let Ok(Some(record)) = state.store.order(&o.merchant, &o.order_id).await else {
                    continue;
                };
                if record.order.state != OrderState::Authorizing {
                    continue;
                }
                match operations::settle(state, record).await {
                    Ok(after) if after.order.state != OrderState::Authorizing => {
                        report.waiting_settled += 1
                    }
                    Ok(_) => {}
                    Err(result) => {
                        tracing::warn!(order = %o.order_id, code = %result.code(), "recovery: still unknown")
                    }
                }
            }
        }
        Err(e) => tracing::error!(%e, "recovery: cannot read waiting orders"),
    }
    report.expired = expire(state).await;
    if let Err(e) = state
        .store
        .prune_keys(now - KEEP_IDEMPOTENCY_KEYS_SECS)
        .await
    {
        tracing::error!(%e, "recovery: cannot prune idempotency keys");
    }
    if let Err(e) = state.store.release_lease("recovery", &state.instance).await {
        tracing::error!(%e, "recovery: cannot give the lease up");
    }
    report
}

/// Amazon's deadlines: an authorization lives 30 days, an open checkout session 24 hours.
const AUTHORIZATION_LIFETIME_SECS: i64 = 30 * 24 * 3600;
const CHECKOUT_LIFETIME_SECS: i64 = 24 * 3600;

/// Orders past a deadline, confirmed with Amazon and moved; returns how many moved.
async fn expire(state: &AppState) -> usize {
    let mut moved = 0;
    let authorized_before =
        kessai_store::time_text(state.now() - time::Duration::seconds(AUTHORIZATION_LIFETIME_SECS));
    let checkout_before =
        kessai_store::time_text(state.now() - time::Duration::seconds(CHECKOUT_LIFETIME_SECS));
    let mut due = Vec::new();
    // Pending authorizations are asked about at every run.
    let now_text = kessai_store::time_text(state.now());
    for (s, before) in [
        (OrderState::AuthorizationPending, &now_text),
        (OrderState::Authorized, &authorized_before),
        (OrderState::Started, &checkout_before),
        (OrderState::PreAuth, &checkout_before),
    ] {
        match state.store.orders_in_state(s, before, 100).await {
            Ok(found) => due.extend(found),
            Err(e) => tracing::error!(%e, "recovery: cannot read orders past their deadline"),
        }
    }
    for o in due {
        let _guard = state.locks.lock(&o.merchant, &o.order_id).await;
        let Ok(Some(record)) = state.store.order(&o.merchant, &o.order_id).await else {
            continue;
        };
        if record.order.state != o.order.state || record.version != o.version {
            continue;
        }
        let change = match record.order.state {
            OrderState::Authorized | OrderState::AuthorizationPending => {
                match record.charge_id.clone() {
                    Some(charge) => crate::ipn::charge_change(state, &record, &charge).await,
                    None => Ok(None),
                }
            }
            _ => checkout_change(state, &record).await,
        };
        match change {
            Ok(Some(change)) => {
                let request = "{\"step\":\"deadline\"}";
                match crate::ipn::apply(state, &record, change, "AmazonDeadline", request, None)
                    .await
                {
                    Ok(_) => moved += 1,
                    Err(e) => {
                        tracing::warn!(order = %record.order_id, %e, "recovery: cannot store an expiry")
                    }
                }
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(order = %record.order_id, %e, "recovery: cannot ask Amazon"),
        }
    }
    moved
}

/// A checkout the buyer left: closed at Amazon by now (expired, or canceled by the buyer).
async fn checkout_change(
    state: &AppState,
    record: &kessai_store::OrderRecord,
) -> Result<Option<crate::ipn::Change>, String> {
    use kessai_amazonpay::wire::{CheckoutSessionState, ReasonCode};
    use kessai_core::{Event, Kind, PushKind, ResultCode};
    let Some(cs_id) = &record.checkout_session_id else {
        // The buyer never came back from Amazon Pay with a session (the button was not pressed,
        // or the sign-in not finished) within a checkout session's lifetime: no session was
        // bound, nothing was authorized, and a session that comes back later is refused.
        return Ok(Some(crate::ipn::change(
            Some(Event::Expired),
            PushKind::Authorize,
            ResultCode::new(
                Kind::AmazonCheckoutExpired,
                "The buyer did not come back from Amazon Pay within 24 hours.",
            ),
            record.order.amount,
            vec![],
        )));
    };
    let cs = state
        .amazon_for(record.dummy)
        .get_checkout_session(cs_id)
        .await
        .map_err(|e| e.to_string())?;
    if cs.status_details.state != CheckoutSessionState::Canceled {
        return Ok(None);
    }
    let amount = record.order.amount;
    Ok(Some(match cs.status_details.reason_code {
        Some(ReasonCode::BuyerCanceled) => crate::ipn::change(
            Some(Event::BuyerCanceled),
            PushKind::Authorize,
            ResultCode::new(
                Kind::AmazonBuyerCanceled,
                "The buyer canceled at Amazon Pay.",
            ),
            amount,
            vec![],
        ),
        _ => crate::ipn::change(
            Some(Event::Expired),
            PushKind::Authorize,
            ResultCode::new(
                Kind::AmazonCheckoutExpired,
                "The Amazon Pay checkout session expired before the buyer finished.",
            ),
            amount,
            vec![],
        ),
    }))
}
