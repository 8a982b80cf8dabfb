//! The recovery worker: at start and then periodically, under a lease held while it runs (so that
//! of several gateways on one database one runs it at a time; the lease is given up at the end of
//! a run, and runs out on its own if its holder died mid-run), it
//! - resolves every pending operation of the operation log ([`operations::resolve_pending`]);
//! - finishes orders that wait on Amazon: an authorization whose buyer never came back
//!   ([`operations::settle`], which asks Amazon and moves the order as Amazon sees it);
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
