//! The MDK commands: one list ([`CommandName`]), parsed at the edge into a typed [`Command`], one
//! module per command. Order commands plug into the one skeleton of [`crate::pipeline`].

pub mod authorize;
pub mod cancel;
pub mod capture;
pub mod get_address;
pub mod reauthorize;
pub mod refund;
pub mod terminate;
pub mod update_authorize;
pub mod update_consent;

use crate::params::Params;
use crate::pipeline::{self, Caller};
use crate::reply::Answer;
use kessai_core::{Field, OrderId, ResultCode};

/// Largest amount of one-time orders.
pub const MAX_AMOUNT: u64 = 10_000_000;

/// Every Amazon Pay command of the MDK, supported or not yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CommandName {
    Authorize,
    Capture,
    Cancel,
    Refund,
    GetAddress,
    UpdateAuthorize,
    ReAuthorize,
    Terminate,
    UpdateConsent,
}

impl CommandName {
    pub const ALL: [CommandName; 9] = [
        CommandName::Authorize,
        CommandName::Capture,
        CommandName::Cancel,
        CommandName::Refund,
        CommandName::GetAddress,
        CommandName::UpdateAuthorize,
        CommandName::ReAuthorize,
        CommandName::Terminate,
        CommandName::UpdateConsent,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CommandName::Authorize => "Authorize",
            CommandName::Capture => "Capture",
            CommandName::Cancel => "Cancel",
            CommandName::Refund => "Refund",
            CommandName::GetAddress => "GetAddress",
            CommandName::UpdateAuthorize => "UpdateAuthorize",
            CommandName::ReAuthorize => "ReAuthorize",
            CommandName::Terminate => "Terminate",
            CommandName::UpdateConsent => "UpdateConsent",
        }
    }

    pub fn parse(text: &str) -> Option<CommandName> {
        CommandName::ALL.into_iter().find(|c| c.as_str() == text)
    }

    /// The commands, for error messages.
    pub fn supported_list() -> String {
        CommandName::ALL
            .into_iter()
            .map(CommandName::as_str)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// A request, parsed.
#[derive(Debug, Clone)]
pub enum Command {
    Authorize(authorize::Authorize),
    Capture(capture::Capture),
    Cancel(cancel::Cancel),
    Refund(refund::Refund),
    GetAddress(get_address::GetAddress),
    UpdateAuthorize(update_authorize::UpdateAuthorize),
    ReAuthorize(reauthorize::ReAuthorize),
    Terminate(terminate::Terminate),
    UpdateConsent(update_consent::UpdateConsent),
}

/// Why a request could not be parsed, and the order it names (when its `orderId` is valid), so
/// that the refusal can be recorded in that order's history.
#[derive(Debug, Clone)]
pub struct Rejected {
    pub result: ResultCode,
    pub order_id: Option<OrderId>,
}

impl Command {
    pub fn parse(name: CommandName, p: &Params<'_>) -> Result<Command, Rejected> {
        let reject = |result: ResultCode| Rejected {
            result,
            order_id: None,
        };
        if name == CommandName::Authorize {
            return authorize::Authorize::parse(p)
                .map(Command::Authorize)
                .map_err(reject);
        }
        if name == CommandName::ReAuthorize {
            return reauthorize::ReAuthorize::parse(p)
                .map(Command::ReAuthorize)
                .map_err(reject);
        }
        // Order commands: the order id first, so a later field's mistake is recorded on the order.
        let order_id = p.order_id(Field::OrderId).map_err(reject)?;
        let rest = match name {
            CommandName::Capture => {
                capture::Capture::parse(order_id.clone(), p).map(Command::Capture)
            }
            CommandName::Cancel => cancel::Cancel::parse(order_id.clone(), p).map(Command::Cancel),
            CommandName::Refund => refund::Refund::parse(order_id.clone(), p).map(Command::Refund),
            CommandName::UpdateAuthorize => {
                update_authorize::UpdateAuthorize::parse(order_id.clone(), p)
                    .map(Command::UpdateAuthorize)
            }
            CommandName::Terminate => {
                terminate::Terminate::parse(order_id.clone(), p).map(Command::Terminate)
            }
            CommandName::UpdateConsent => update_consent::UpdateConsent::parse(order_id.clone(), p)
                .map(Command::UpdateConsent),
            _ => get_address::GetAddress::parse(order_id.clone(), p).map(Command::GetAddress),
        };
        rest.map_err(|result| Rejected {
            result,
            order_id: Some(order_id),
        })
    }

    pub async fn run(self, state: &crate::app::AppState, caller: &Caller) -> Answer {
        match self {
            Command::Authorize(c) => authorize::run(state, caller, c).await,
            Command::Capture(c) => pipeline::order_command(state, caller, &c).await,
            Command::Cancel(c) => pipeline::order_command(state, caller, &c).await,
            Command::Refund(c) => pipeline::order_command(state, caller, &c).await,
            Command::GetAddress(c) => pipeline::order_command(state, caller, &c).await,
            Command::UpdateAuthorize(c) => pipeline::order_command(state, caller, &c).await,
            Command::Terminate(c) => pipeline::order_command(state, caller, &c).await,
            Command::UpdateConsent(c) => pipeline::order_command(state, caller, &c).await,
            Command::ReAuthorize(c) => reauthorize::run(state, caller, c).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_command_name_round_trips() {
        for c in CommandName::ALL {
            assert_eq!(CommandName::parse(c.as_str()), Some(c));
        }
        assert_eq!(CommandName::parse("capture"), None);
        assert_eq!(
            CommandName::supported_list(),
            "Authorize, Capture, Cancel, Refund, GetAddress, UpdateAuthorize, ReAuthorize, Terminate, UpdateConsent"
        );
    }
}
