//! The one skeleton every order command runs through:
//!
//! 1. lock the order (in this process) and load it;
//! 2. [`operations::settle`]: resolve what is unresolved on it (a pending operation, an
//!    authorization the buyer never brought back);
//! 3. if the request is a retry of an operation whose outcome the merchant never got, answer that
//!    outcome (never a second capture or refund);
//! 4. ask the command's pure plan; a refusal is recorded in the order's history and answered;
//! 5. carry out the plan: read from Amazon Pay, change the order, or run an Amazon Pay operation
//!    under the operation log ([`operations::execute`]);
//! 6. answer from what was stored.

use crate::app::AppState;
use crate::commands::CommandName;
use crate::operations::{self, Actor, Outcome};
use crate::reply::{Answer, Reply};
use crate::util::history;
use crate::util::{internal, store_failure};
use kessai_core::{
    ConsentEvent, Event, Field, Intent, Kind, OperationKind, OperationStatus, OrderId, PushKind,
    ResultCode, Yen,
};
use kessai_store::{MerchantRecord, OperationRecord, OrderRecord, StoreError, Unit, Write};
use std::future::Future;
use std::pin::Pin;

/// Who sent the command, and the request as received (for the history).
pub struct Caller {
    pub merchant: MerchantRecord,
    pub command: CommandName,
    pub params_text: String,
    pub dummy: bool,
}

/// What an order command wants done.
pub enum Plan {
    /// Read from Amazon Pay and answer; the order does not change.
    Read,
    /// Change the order without calling Amazon Pay.
    Change(Event),
    /// Run an Amazon Pay operation.
    Call(Intent),
    /// Change the order's consent at Amazon Pay ([`OrderCommand::amend`], an idempotent
    /// update that moves no money), then store it.
    Amend(ConsentEvent),
}

pub type ReadFuture<'a> = Pin<Box<dyn Future<Output = Result<Reply, ResultCode>> + Send + 'a>>;
pub type AmendFuture<'a> = Pin<Box<dyn Future<Output = Result<(), ResultCode>> + Send + 'a>>;

/// A command that works on an existing order. Each command is a small module implementing this.
pub trait OrderCommand: Sync {
    fn order_id(&self) -> &OrderId;

    /// The operation a retry of this command would repeat: its kind and the amount asked for
    /// (`None`: the default amount).
    fn retry_of(&self) -> Option<(OperationKind, Option<Yen>)> {
        None
    }

    /// May the command run on the order now, and what does it do? (pure)
    fn plan(&self, record: &OrderRecord) -> Result<Plan, ResultCode>;

    /// The reply after success; `op` is the operation that carried it out, if any.
    fn reply(&self, state: &AppState, record: &OrderRecord, op: Option<&OperationRecord>) -> Reply;

    /// The reply to a refusal.
    fn refused(&self, _record: &OrderRecord) -> Reply {
        Reply::Nothing
    }

    /// For [`Plan::Amend`]: make the change at Amazon Pay.
    fn amend<'a>(&'a self, _state: &'a AppState, _record: &'a OrderRecord) -> AmendFuture<'a> {
        Box::pin(async {
            Err(ResultCode::new(
                Kind::Internal,
                "this command amends nothing",
            ))
        })
    }

    /// For [`Plan::Read`]: read from Amazon Pay.
    fn read<'a>(&'a self, _state: &'a AppState, _record: &'a OrderRecord) -> ReadFuture<'a> {
        Box::pin(async {
            Err(ResultCode::new(
                Kind::Internal,
                "this command reads nothing",
            ))
        })
    }
}

pub(crate) fn unknown_order(order_id: &OrderId) -> ResultCode {
    ResultCode::field(
        Kind::UnknownOrderId,
        Field::OrderId,
        format!("{order_id} is not an order of this merchant."),
    )
}

impl Caller {
    /// The actor of a merchant command: its outcome counts as reported once the answer is
    /// rendered (`Answer::reporting`), not when it is stored.
    pub fn actor(&self) -> Actor {
        Actor {
            command: self.command.as_str().to_owned(),
            request: self.params_text.clone(),
            reports: false,
        }
    }

    fn entry(&self, state: &AppState, result: &ResultCode) -> kessai_store::HistoryEntry {
        history(
            self.command.as_str(),
            &self.params_text,
            result,
            state.now_text(),
        )
    }

    /// Records a refused attempt in the order's history (the order itself is unchanged).
    pub async fn record_refusal(&self, state: &AppState, order_id: &OrderId, result: &ResultCode) {
        let unit = Unit::new(&self.merchant.ccid, order_id)
            .with(Write::History(self.entry(state, result)));
        if let Err(e) = state.store.apply(&unit).await {
            tracing::error!(%e, order = %order_id, "could not record a refused attempt");
        }
    }
}

/// A request whose fields did not parse: recorded on the order it names, if that exists.
pub async fn rejected(
    state: &AppState,
    caller: &Caller,
    order_id: &OrderId,
    result: ResultCode,
) -> Answer {
    match state.store.order(&caller.merchant.ccid, order_id).await {
        Ok(Some(_)) => {
            caller.record_refusal(state, order_id, &result).await;
            Answer::about(order_id, result, Reply::Nothing)
        }
        Ok(None) => Answer::about(order_id, unknown_order(order_id), Reply::Nothing),
        Err(e) => Answer::about(order_id, store_failure(e), Reply::Nothing),
    }
}

/// Runs one order command through the skeleton.
pub async fn order_command<C: OrderCommand>(state: &AppState, caller: &Caller, cmd: &C) -> Answer {
    let mut answer = {
        let _guard = state
            .locks
            .lock(&caller.merchant.ccid, cmd.order_id())
            .await;
        let answer = run_locked(state, caller, cmd).await;
        mark_reported(state, &answer).await;
        answer
    };
    // A refusal changed nothing, so its attempt is appended after the lock is released: the
    // next command on the order need not wait for this commit, and a burst of refusals shares
    // commits. It is still written before the answer leaves.
    if answer.refusal_unrecorded {
        caller
            .record_refusal(state, cmd.order_id(), &answer.result)
            .await;
        answer.refusal_unrecorded = false;
    }
    answer
}

/// The answer is about to leave: from now on a retry is an ordinary new command. Called while
/// the order is still locked, so a concurrent duplicate is not taken for a retry; a crash before
/// this point leaves the outcome unreported, and the merchant's retry gets it.
pub async fn mark_reported(state: &AppState, answer: &Answer) {
    if let Some(r) = &answer.reports {
        let unit =
            Unit::new(&r.merchant, &r.order_id).with(Write::MarkReported { key: r.key.clone() });
        if let Err(e) = state.store.apply(&unit).await {
            tracing::warn!(%e, order = %r.order_id, "cannot mark an operation as reported");
        }
    }
}

async fn run_locked<C: OrderCommand>(state: &AppState, caller: &Caller, cmd: &C) -> Answer {
    let order_id = cmd.order_id();
    let ccid = &caller.merchant.ccid;
    let record = match state.store.order(ccid, order_id).await {
        Ok(Some(r)) => r,
        Ok(None) => return Answer::about(order_id, unknown_order(order_id), Reply::Nothing),
        Err(e) => return Answer::about(order_id, store_failure(e), Reply::Nothing),
    };
    // Recorded by `order_command` once the order is unlocked.
    let refuse = |record: &OrderRecord, result: ResultCode| {
        let reply = cmd.refused(record);
        async move { Answer::about(order_id, result, reply).refusal_to_record() }
    };
    let record = match operations::settle(state, record).await {
        Ok(r) => r,
        Err(result) => {
            let reply = Reply::Nothing;
            caller.record_refusal(state, order_id, &result).await;
            return Answer::about(order_id, result, reply);
        }
    };
    // The order's operations, read once: for a retry's answer and the next operation's number.
    let ops = if cmd.retry_of().is_some() {
        match state.store.operations(ccid, order_id).await {
            Ok(ops) => ops,
            Err(e) => return Answer::about(order_id, store_failure(e), Reply::Nothing),
        }
    } else {
        Vec::new()
    };
    if let Some(answer) = answer_retry(state, caller, cmd, &record, &ops).await {
        return answer;
    }
    let plan = match cmd.plan(&record) {
        Ok(p) => p,
        Err(result) => return refuse(&record, result).await,
    };
    match plan {
        Plan::Read => match cmd.read(state, &record).await {
            Ok(reply) => {
                let result = ResultCode::success();
                let unit =
                    Unit::new(ccid, order_id).with(Write::History(caller.entry(state, &result)));
                if let Err(e) = state.store.apply(&unit).await {
                    return Answer::about(order_id, store_failure(e), Reply::Nothing);
                }
                Answer::about(order_id, result, reply)
            }
            Err(result) => refuse(&record, result).await,
        },
        Plan::Change(event) => {
            let mut after = record.clone();
            after.order = match record.order.apply(event) {
                Ok(o) => o,
                Err(refusal) => return refuse(&record, refusal.into()).await,
            };
            after.version += 1;
            after.updated_at = state.now_text();
            let result = ResultCode::success();
            let mut entry = caller.entry(state, &result);
            if let Event::AmountChanged { amount } = event {
                entry.amount = Some(amount);
            }
            let mut unit = Unit::new(ccid, order_id)
                .with(Write::UpdateOrder(after.clone()))
                .with(Write::History(entry));
            if event == Event::Canceled {
                let amount = after.order.amount;
                if let Some(push) = crate::pushes::record(
                    state,
                    &after,
                    PushKind::Cancel,
                    &result,
                    amount,
                    None,
                    None,
                ) {
                    unit = unit.with(push);
                }
            }
            match state.store.apply(&unit).await {
                Ok(()) => Answer::about(order_id, result, cmd.reply(state, &after, None)),
                Err(StoreError::Conflict) => Answer::about(order_id, concurrent(), Reply::Nothing),
                Err(e) => Answer::about(order_id, store_failure(e), Reply::Nothing),
            }
        }
        Plan::Amend(event) => {
            if let Err(result) = cmd.amend(state, &record).await {
                return refuse(&record, result).await;
            }
            let mut after = record.clone();
            after.consent = match record.consent.map(|c| c.apply(event)) {
                Some(Ok(c)) => Some(c),
                Some(Err(refusal)) => return refuse(&record, refusal.into()).await,
                None => return refuse(&record, kessai_core::Refusal::NotRecurring.into()).await,
            };
            after.version += 1;
            after.updated_at = state.now_text();
            let result = ResultCode::success();
            let mut entry = caller.entry(state, &result);
            entry.amount = after.consent.map(|c| c.amount);
            let unit = Unit::new(ccid, order_id)
                .with(Write::UpdateOrder(after.clone()))
                .with(Write::History(entry));
            match state.store.apply(&unit).await {
                Ok(()) => Answer::about(order_id, result, cmd.reply(state, &after, None)),
                Err(StoreError::Conflict) => Answer::about(order_id, concurrent(), Reply::Nothing),
                Err(e) => Answer::about(order_id, store_failure(e), Reply::Nothing),
            }
        }
        Plan::Call(intent) => {
            let seq = operations::next_seq(&ops);
            match operations::execute_as(state, record.clone(), intent, &caller.actor(), seq).await
            {
                Outcome::Done { record, op, result } if result.is_success() => {
                    Answer::about(order_id, result, cmd.reply(state, &record, Some(&op)))
                        .reporting(&op)
                }
                Outcome::Done {
                    record, result, op, ..
                } => Answer::about(order_id, result, cmd.refused(&record)).reporting(&op),
                Outcome::Refused {
                    record,
                    result,
                    op: Some(op),
                } => Answer::about(order_id, result, cmd.refused(&record)).reporting(&op),
                Outcome::Refused { record, result, .. }
                | Outcome::NotYet { record, result, .. } => {
                    Answer::about(order_id, result, cmd.refused(&record))
                }
                Outcome::Unknown { result } => Answer::about(order_id, result, Reply::Nothing),
            }
        }
    }
}

fn concurrent() -> ResultCode {
    ResultCode::field(
        Kind::ConcurrentCommand,
        Field::OrderId,
        "was changed by another command at the same time; read it and retry.",
    )
}

/// If `cmd` repeats an operation whose outcome its sender never got (the answer was
/// outcome-unknown), answers that outcome and records that it was reported.
async fn answer_retry<C: OrderCommand>(
    state: &AppState,
    caller: &Caller,
    cmd: &C,
    record: &OrderRecord,
    ops: &[OperationRecord],
) -> Option<Answer> {
    let (kind, requested) = cmd.retry_of()?;
    let order_id = cmd.order_id();
    let op = ops.iter().rev().find(|o| {
        !o.reported
            && o.status != OperationStatus::Pending
            && o.intent.kind == kind
            && requested.is_none_or(|a| a == o.intent.amount)
    })?;
    let result = ResultCode::parse(
        op.result_code.as_deref().unwrap_or_default(),
        op.result_message.clone().unwrap_or_default(),
    )
    .unwrap_or_else(|| internal(format!("operation {} has no result code", op.key)));
    let unit = Unit::new(&record.merchant, order_id)
        .with(Write::MarkReported {
            key: op.key.clone(),
        })
        .with(Write::History(caller.entry(state, &result)));
    if let Err(e) = state.store.apply(&unit).await {
        return Some(Answer::about(order_id, store_failure(e), Reply::Nothing));
    }
    let reply = if result.is_success() && op.status == OperationStatus::Done {
        cmd.reply(state, record, Some(op))
    } else {
        cmd.refused(record)
    };
    Some(Answer::about(order_id, result, reply))
}
