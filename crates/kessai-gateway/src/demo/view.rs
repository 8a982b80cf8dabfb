//! What the demo shop shows about an order, read from the gateway's Search answer: the status in
//! words, amounts as `¥3,240`, and the actions the order's state allows.

use serde::Serialize;
use serde_json::{Map, Value};

/// `3240` → `¥3,240`.
pub fn yen(amount: u64) -> String {
    let digits = amount.to_string();
    let mut out = String::from("¥");
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// One thing the merchant can do with an order now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    /// Capture (売上).
    Capture,
    /// Cancel the authorization (キャンセル).
    Cancel,
    /// Refund, partly or all (返金).
    Refund,
    /// UpdateAuthorize on an authorized one-time order (与信変更).
    ChangeAmount,
    /// ReAuthorize against the subscription's consent (再与信).
    ChargeNow,
    /// UpdateConsent (承諾情報更新).
    ChangePlan,
    /// Terminate the consent (解約).
    EndSubscription,
}

impl Action {
    /// The path segment of the action's form, and the MDK command it calls.
    pub fn parse(segment: &str) -> Option<Action> {
        [
            Action::Capture,
            Action::Cancel,
            Action::Refund,
            Action::ChangeAmount,
            Action::ChargeNow,
            Action::ChangePlan,
            Action::EndSubscription,
        ]
        .into_iter()
        .find(|a| a.segment() == segment)
    }

    pub fn segment(self) -> &'static str {
        match self {
            Action::Capture => "capture",
            Action::Cancel => "cancel",
            Action::Refund => "refund",
            Action::ChangeAmount => "change-amount",
            Action::ChargeNow => "charge-now",
            Action::ChangePlan => "change-plan",
            Action::EndSubscription => "end-subscription",
        }
    }

    pub fn command(self) -> &'static str {
        match self {
            Action::Capture => "Capture",
            Action::Cancel => "Cancel",
            Action::Refund => "Refund",
            Action::ChangeAmount => "UpdateAuthorize",
            Action::ChargeNow => "ReAuthorize",
            Action::ChangePlan => "UpdateConsent",
            Action::EndSubscription => "Terminate",
        }
    }

    /// What the merchant tried, for an error message.
    pub fn attempt(self) -> &'static str {
        match self {
            Action::Capture => "The capture failed",
            Action::Cancel => "The cancellation failed",
            Action::Refund => "The refund failed",
            Action::ChangeAmount => "Changing the amount failed",
            Action::ChargeNow => "The charge failed",
            Action::ChangePlan => "Changing the plan failed",
            Action::EndSubscription => "Ending the subscription failed",
        }
    }
}

/// One entry of the order's history.
#[derive(Debug, Clone, Serialize)]
pub struct Step {
    pub command: String,
    pub ok: bool,
    pub mstatus: String,
    pub code: String,
    pub amount: Option<String>,
    #[serde(skip)]
    pub value: Option<u64>,
    pub at: String,
}

/// An order as the demo shop shows it.
#[derive(Debug, Clone, Serialize)]
pub struct OrderView {
    pub id: String,
    /// `orderStatus` as the gateway names it.
    pub state: String,
    pub status: String,
    /// Whether the state is a good one (for the page's colour).
    pub ok: bool,
    pub amount: u64,
    pub captured: u64,
    pub refunded: u64,
    /// A subscription's consent order (not a charge against one).
    pub subscription: bool,
    pub consent: Option<String>,
    /// A subscription's amount per period: the last plan change's (UpdateConsent), else the
    /// amount agreed at the start.
    pub plan_amount: u64,
    /// A charge against a subscription: the subscription's order.
    pub original: Option<String>,
    /// The buyer confirms on the shop's own page.
    pub merchant_screen: bool,
    pub actions: Vec<Action>,
    pub steps: Vec<Step>,
}

fn text<'a>(m: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    m.get(key).and_then(Value::as_str).filter(|s| !s.is_empty())
}

fn number(m: &Map<String, Value>, key: &str) -> u64 {
    text(m, key).and_then(|s| s.parse().ok()).unwrap_or(0)
}

impl OrderView {
    /// One `orderInfo` of a Search answer.
    pub fn from_search(info: &Map<String, Value>) -> Option<OrderView> {
        let id = text(info, "orderId")?.to_owned();
        let state = text(info, "orderStatus").unwrap_or("").to_owned();
        let empty = Map::new();
        let proper = info
            .get("properOrderInfo")
            .and_then(Value::as_object)
            .unwrap_or(&empty);
        let original = text(proper, "originalOrderId").map(str::to_owned);
        let consent = text(proper, "consentStatus").map(str::to_owned);
        let subscription = text(proper, "accountingType") == Some("1") && original.is_none();
        let steps: Vec<Step> = info
            .get("transactionInfos")
            .and_then(|t| t.get("transactionInfo"))
            .and_then(Value::as_array)
            .map(|list| {
                list.iter()
                    .filter_map(Value::as_object)
                    .map(|t| Step {
                        command: text(t, "command").unwrap_or("").to_owned(),
                        ok: text(t, "mstatus") != Some("failure"),
                        mstatus: text(t, "mstatus").unwrap_or("").to_owned(),
                        code: text(t, "vResultCode").unwrap_or("").to_owned(),
                        amount: text(t, "amount").and_then(|a| a.parse().ok()).map(yen),
                        value: text(t, "amount").and_then(|a| a.parse().ok()),
                        at: text(t, "txnDatetime").map(datetime).unwrap_or_default(),
                    })
                    .collect()
            })
            .unwrap_or_default();
        let amount = number(proper, "amount");
        let plan_amount = steps
            .iter()
            .rev()
            .find(|s| s.command == "UpdateConsent" && s.mstatus == "success")
            .and_then(|s| s.value)
            .unwrap_or(amount);
        let mut view = OrderView {
            id,
            state,
            status: String::new(),
            ok: false,
            amount,
            plan_amount,
            captured: number(proper, "capturedAmount"),
            refunded: number(proper, "refundedAmount"),
            subscription,
            consent,
            original,
            merchant_screen: text(proper, "payConfirmScreenType") == Some("1"),
            actions: Vec::new(),
            steps,
        };
        (view.status, view.ok) = view.words();
        view.actions = view.allowed();
        Some(view)
    }

    /// The payment's state in words, and whether it is a good one.
    fn payment_words(&self) -> (String, bool) {
        let (a, c, r) = (yen(self.amount), yen(self.captured), yen(self.refunded));
        match self.state.as_str() {
            "Started" => ("waiting for the buyer at Amazon Pay".into(), true),
            "PreAuth" if self.merchant_screen => {
                ("waiting for the buyer to confirm on this shop".into(), true)
            }
            "PreAuth" => ("waiting for the buyer to confirm".into(), true),
            "Authorizing" => ("being authorized".into(), true),
            "AuthorizationPending" => ("Amazon Pay is reviewing the payment".into(), true),
            "Authorized" => (format!("authorized {a}"), true),
            "Consented" => ("no charge yet".into(), true),
            "Captured" => (format!("captured {c}"), true),
            "PartiallyRefunded" | "Refunded" => (format!("refunded {r} of {c}"), true),
            "Canceled" => ("canceled".into(), false),
            "Declined" => ("declined by Amazon Pay".into(), false),
            "Expired" => ("expired".into(), false),
            "BuyerCanceled" => ("canceled by the buyer".into(), false),
            other => (format!("in state {other}"), false),
        }
    }

    fn words(&self) -> (String, bool) {
        let (payment, ok) = self.payment_words();
        if !self.subscription {
            return (payment, ok);
        }
        match self.consent.as_deref() {
            Some("Active") if self.state == "Consented" => {
                ("subscription active (no charge yet)".into(), true)
            }
            Some("Active") => (format!("subscription active, first charge {payment}"), ok),
            Some("Terminated") if self.state == "Consented" => ("subscription ended".into(), false),
            Some("Terminated") => (
                format!("subscription ended (first charge {payment})"),
                false,
            ),
            Some("Expired") => ("subscription expired".into(), false),
            _ => (format!("subscription not active yet: {payment}"), ok),
        }
    }

    fn allowed(&self) -> Vec<Action> {
        let mut actions = Vec::new();
        match self.state.as_str() {
            "Authorized" => {
                actions.push(Action::Capture);
                actions.push(Action::Cancel);
                if !self.subscription && self.original.is_none() {
                    actions.push(Action::ChangeAmount);
                }
            }
            "Captured" | "PartiallyRefunded" if self.refunded < self.captured => {
                actions.push(Action::Refund)
            }
            _ => {}
        }
        if self.subscription && self.consent.as_deref() == Some("Active") {
            actions.extend([
                Action::ChargeNow,
                Action::ChangePlan,
                Action::EndSubscription,
            ]);
        }
        actions
    }

    /// What is left to refund.
    pub fn refundable(&self) -> u64 {
        self.captured.saturating_sub(self.refunded)
    }
}

/// `20260301123456` → `2026-03-01 12:34:56`.
fn datetime(t: &str) -> String {
    if t.len() == 14 && t.bytes().all(|b| b.is_ascii_digit()) {
        format!(
            "{}-{}-{} {}:{}:{}",
            &t[0..4],
            &t[4..6],
            &t[6..8],
            &t[8..10],
            &t[10..12],
            &t[12..14]
        )
    } else {
        t.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn view(state: &str, proper: Value) -> OrderView {
        let info =
            json!({"orderId": "demo-tea-1", "orderStatus": state, "properOrderInfo": proper});
        OrderView::from_search(info.as_object().unwrap()).unwrap()
    }

    #[test]
    fn yen_has_a_thousands_separator() {
        assert_eq!(yen(0), "¥0");
        assert_eq!(yen(500), "¥500");
        assert_eq!(yen(3240), "¥3,240");
        assert_eq!(yen(10_000_000), "¥10,000,000");
    }

    #[test]
    fn statuses_in_words_and_actions_by_state() {
        let one_time = |s| {
            view(
                s,
                json!({"accountingType": "0", "amount": "3240", "capturedAmount": "3240", "refundedAmount": "500"}),
            )
        };
        let v = one_time("Authorized");
        assert_eq!(v.status, "authorized ¥3,240");
        assert_eq!(
            v.actions,
            [Action::Capture, Action::Cancel, Action::ChangeAmount]
        );
        let v = one_time("PartiallyRefunded");
        assert_eq!(v.status, "refunded ¥500 of ¥3,240");
        assert_eq!(v.actions, [Action::Refund]);
        let v = view(
            "Refunded",
            json!({"amount": "3240", "capturedAmount": "3240", "refundedAmount": "3240"}),
        );
        assert!(v.actions.is_empty(), "nothing left to refund");
        for s in [
            "Canceled",
            "Declined",
            "BuyerCanceled",
            "Started",
            "PreAuth",
        ] {
            let v = one_time(s);
            assert!(v.actions.is_empty(), "{s}: {:?}", v.actions);
            assert!(!v.status.contains(s), "{s} in words: {}", v.status);
        }
        let sub = view(
            "Consented",
            json!({"accountingType": "1", "consentStatus": "Active", "amount": "980"}),
        );
        assert_eq!(sub.status, "subscription active (no charge yet)");
        assert_eq!(
            sub.actions,
            [
                Action::ChargeNow,
                Action::ChangePlan,
                Action::EndSubscription
            ]
        );
        let info = json!({"orderId": "demo-tea-2", "orderStatus": "Consented",
            "properOrderInfo": {"accountingType": "1", "consentStatus": "Active", "amount": "980"},
            "transactionInfos": {"transactionInfo": [
                {"command": "UpdateConsent", "mstatus": "success", "amount": "1200"},
                {"command": "UpdateConsent", "mstatus": "failure", "amount": "999999"}]}});
        let changed = OrderView::from_search(info.as_object().unwrap()).unwrap();
        assert_eq!((changed.amount, changed.plan_amount), (980, 1200));
        let sub = view(
            "Authorized",
            json!({"accountingType": "1", "consentStatus": "Active", "amount": "980"}),
        );
        assert_eq!(
            sub.status,
            "subscription active, first charge authorized ¥980"
        );
        assert!(!sub.actions.contains(&Action::ChangeAmount));
        let ended = view(
            "Captured",
            json!({"accountingType": "1", "consentStatus": "Terminated", "amount": "980", "capturedAmount": "980"}),
        );
        assert!(ended.status.starts_with("subscription ended"));
        assert!(!ended.actions.contains(&Action::ChargeNow));
        let charge = view(
            "Authorized",
            json!({"accountingType": "1", "originalOrderId": "demo-sub", "amount": "980"}),
        );
        assert_eq!(charge.actions, [Action::Capture, Action::Cancel]);
        for a in [Action::Capture, Action::ChangePlan, Action::EndSubscription] {
            assert_eq!(Action::parse(a.segment()), Some(a));
        }
    }
}
