//! Fault injection for the gateway's two dependencies: an Amazon Pay client that acts and drops
//! the answer, times out before reaching Amazon, or answers 5xx; a store whose outcome commit
//! fails after Amazon acted. Each fault is armed for one call and fires once.

use super::{FaultEnv, TestEnv};
use async_trait::async_trait;
use kessai_amazonpay::wire::*;
use kessai_amazonpay::{AmazonPay, AmazonPayError};
use kessai_core::{MerchantCcid, OrderId};
use kessai_store::{
    HistoryEntry, KeyClaim, MerchantRecord, OperationRecord, OrderRecord, PushEnd, PushFilter,
    PushRecord, RefundRecord, Store, StoreError, Unit,
};
use serde_json::{Map, Value};
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The Amazon Pay calls a fault can be armed for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Call {
    CompleteCheckout,
    Capture,
    CancelCharge,
    CreateRefund,
    GetCharge,
    GetCheckoutSession,
    CreateCharge,
    CloseChargePermission,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Amazon acts, then the answer is lost (connection reset).
    DropAnswer,
    /// The request never reaches Amazon (connect timeout).
    TimeoutBefore,
    /// Amazon answers this 5xx status without acting.
    Status(u16),
}

pub struct FaultyAmazon {
    inner: Arc<dyn AmazonPay>,
    armed: Mutex<Vec<(Call, Fault)>>,
    /// Seeded random faults: (generator, faults per thousand calls of the money-moving kinds).
    chaos: Mutex<Option<(kessai_core::ids::SeededIds, u32)>>,
    /// How many faults fired.
    pub fired: AtomicUsize,
    /// Get Refund reports every refund `Declined` (as Amazon does when it refuses one it had
    /// accepted).
    pub refunds_declined: AtomicBool,
}

impl FaultyAmazon {
    pub fn new(inner: Arc<dyn AmazonPay>) -> FaultyAmazon {
        FaultyAmazon {
            inner,
            armed: Mutex::new(Vec::new()),
            chaos: Mutex::new(None),
            fired: AtomicUsize::new(0),
            refunds_declined: AtomicBool::new(false),
        }
    }

    /// From now on, `per_mille` of the calls that can be armed fail at random (drawn from
    /// `seed`): the answer lost after Amazon acted, a timeout before Amazon, or a 500/503.
    pub fn chaos(&self, seed: u64, per_mille: u32) {
        *self.chaos.lock().unwrap() = Some((kessai_core::ids::SeededIds::seeded(seed), per_mille));
    }

    /// The next `call` fails with `fault`.
    pub fn arm(&self, call: Call, fault: Fault) {
        self.armed.lock().unwrap().push((call, fault));
    }

    pub fn disarm(&self) {
        self.armed.lock().unwrap().clear();
    }

    fn take(&self, call: Call) -> Option<Fault> {
        let mut armed = self.armed.lock().unwrap();
        if let Some(i) = armed.iter().position(|(c, _)| *c == call) {
            self.fired.fetch_add(1, Ordering::SeqCst);
            return Some(armed.remove(i).1);
        }
        drop(armed);
        let mut chaos = self.chaos.lock().unwrap();
        let (rng, per_mille) = chaos.as_mut()?;
        use kessai_core::ids::IdSource;
        if rng.below(1000) >= *per_mille {
            return None;
        }
        self.fired.fetch_add(1, Ordering::SeqCst);
        Some(match rng.below(4) {
            0 => Fault::DropAnswer,
            1 => Fault::TimeoutBefore,
            2 => Fault::Status(500),
            _ => Fault::Status(503),
        })
    }

    async fn around<T>(
        &self,
        call: Call,
        real: impl Future<Output = Result<T, AmazonPayError>>,
    ) -> Result<T, AmazonPayError> {
        match self.take(call) {
            None => real.await,
            Some(Fault::DropAnswer) => {
                let _ = real.await;
                Err(AmazonPayError::Transport(
                    "connection reset after the request was sent (injected)".into(),
                ))
            }
            Some(Fault::TimeoutBefore) => Err(AmazonPayError::Transport(
                "operation timed out before reaching Amazon Pay (injected)".into(),
            )),
            Some(Fault::Status(status)) => Err(AmazonPayError::Api {
                status,
                reason_code: if status == 503 {
                    "ServiceUnavailable".into()
                } else {
                    "InternalServerError".into()
                },
                message: "injected".into(),
            }),
        }
    }
}

#[async_trait]
impl AmazonPay for FaultyAmazon {
    async fn create_checkout_session(
        &self,
        request: &CreateCheckoutSessionRequest,
        key: &str,
    ) -> Result<CheckoutSession, AmazonPayError> {
        self.inner.create_checkout_session(request, key).await
    }

    async fn get_checkout_session(&self, id: &str) -> Result<CheckoutSession, AmazonPayError> {
        // Armed faults only: the buyer's pages read the session, and chaos stays off them.
        if self
            .armed
            .lock()
            .unwrap()
            .iter()
            .any(|(c, _)| *c == Call::GetCheckoutSession)
        {
            return self
                .around(
                    Call::GetCheckoutSession,
                    self.inner.get_checkout_session(id),
                )
                .await;
        }
        self.inner.get_checkout_session(id).await
    }

    async fn update_checkout_session(
        &self,
        id: &str,
        request: &UpdateCheckoutSessionRequest,
    ) -> Result<CheckoutSession, AmazonPayError> {
        self.inner.update_checkout_session(id, request).await
    }

    async fn complete_checkout_session(
        &self,
        id: &str,
        request: &CompleteCheckoutSessionRequest,
        key: &str,
    ) -> Result<CheckoutSession, AmazonPayError> {
        self.around(
            Call::CompleteCheckout,
            self.inner.complete_checkout_session(id, request, key),
        )
        .await
    }

    async fn get_charge_permission(&self, id: &str) -> Result<ChargePermission, AmazonPayError> {
        self.inner.get_charge_permission(id).await
    }

    async fn get_charge(&self, id: &str) -> Result<Charge, AmazonPayError> {
        self.around(Call::GetCharge, self.inner.get_charge(id))
            .await
    }

    async fn capture_charge(
        &self,
        id: &str,
        request: &CaptureChargeRequest,
        key: &str,
    ) -> Result<Charge, AmazonPayError> {
        self.around(Call::Capture, self.inner.capture_charge(id, request, key))
            .await
    }

    async fn cancel_charge(
        &self,
        id: &str,
        request: &CancelChargeRequest,
    ) -> Result<Charge, AmazonPayError> {
        self.around(Call::CancelCharge, self.inner.cancel_charge(id, request))
            .await
    }

    async fn create_refund(
        &self,
        request: &CreateRefundRequest,
        key: &str,
    ) -> Result<Refund, AmazonPayError> {
        self.around(Call::CreateRefund, self.inner.create_refund(request, key))
            .await
    }

    async fn get_refund(&self, id: &str) -> Result<Refund, AmazonPayError> {
        let mut refund = self.inner.get_refund(id).await?;
        if self.refunds_declined.load(Ordering::SeqCst) {
            refund.status_details.state = RefundState::Declined;
            refund.status_details.reason_code = Some(ReasonCode::AmazonRejected);
        }
        Ok(refund)
    }

    async fn create_charge(
        &self,
        request: &CreateChargeRequest,
        key: &str,
    ) -> Result<Charge, AmazonPayError> {
        self.around(Call::CreateCharge, self.inner.create_charge(request, key))
            .await
    }

    async fn update_charge_permission(
        &self,
        id: &str,
        request: &UpdateChargePermissionRequest,
    ) -> Result<ChargePermission, AmazonPayError> {
        self.inner.update_charge_permission(id, request).await
    }

    async fn close_charge_permission(
        &self,
        id: &str,
        request: &CloseChargePermissionRequest,
    ) -> Result<ChargePermission, AmazonPayError> {
        self.around(
            Call::CloseChargePermission,
            self.inner.close_charge_permission(id, request),
        )
        .await
    }

    async fn get_buyer(&self, buyer_token: &str) -> Result<BuyerDetails, AmazonPayError> {
        self.inner.get_buyer(buyer_token).await
    }

    fn sign_button_payload(
        &self,
        payload_json: String,
    ) -> Result<kessai_amazonpay::SignedPayload, AmazonPayError> {
        self.inner.sign_button_payload(payload_json)
    }

    fn store_id(&self) -> &str {
        self.inner.store_id()
    }
}

/// A store whose next outcome commit (a unit that finishes an operation) fails once armed.
pub struct FaultyStore {
    inner: Arc<dyn Store>,
    fail_outcome: AtomicBool,
    fail_merchants: AtomicBool,
}

impl FaultyStore {
    pub fn new(inner: Arc<dyn Store>) -> FaultyStore {
        FaultyStore {
            inner,
            fail_outcome: AtomicBool::new(false),
            fail_merchants: AtomicBool::new(false),
        }
    }

    /// Merchant lookups fail until this is called again with `false`.
    pub fn fail_merchant_lookups(&self, on: bool) {
        self.fail_merchants.store(on, Ordering::SeqCst);
    }

    pub fn fail_next_outcome(&self) {
        self.fail_outcome.store(true, Ordering::SeqCst);
    }
}

#[async_trait]
impl Store for FaultyStore {
    async fn merchant(&self, ccid: &MerchantCcid) -> Result<Option<MerchantRecord>, StoreError> {
        if self.fail_merchants.load(Ordering::SeqCst) {
            return Err(StoreError::Database("database is locked (injected)".into()));
        }
        self.inner.merchant(ccid).await
    }

    async fn insert_merchant(&self, merchant: &MerchantRecord) -> Result<(), StoreError> {
        self.inner.insert_merchant(merchant).await
    }

    async fn merchants(&self) -> Result<Vec<MerchantRecord>, StoreError> {
        self.inner.merchants().await
    }

    async fn order(
        &self,
        ccid: &MerchantCcid,
        order_id: &OrderId,
    ) -> Result<Option<OrderRecord>, StoreError> {
        self.inner.order(ccid, order_id).await
    }

    async fn order_by_ref(&self, public_ref: &str) -> Result<Option<OrderRecord>, StoreError> {
        self.inner.order_by_ref(public_ref).await
    }

    async fn apply(&self, unit: &Unit) -> Result<(), StoreError> {
        if unit.finishes_operation() && self.fail_outcome.swap(false, Ordering::SeqCst) {
            return Err(StoreError::Database("disk I/O error (injected)".into()));
        }
        self.inner.apply(unit).await
    }

    async fn operations(
        &self,
        ccid: &MerchantCcid,
        order_id: &OrderId,
    ) -> Result<Vec<OperationRecord>, StoreError> {
        self.inner.operations(ccid, order_id).await
    }

    async fn pending_operations(&self, limit: i64) -> Result<Vec<OperationRecord>, StoreError> {
        self.inner.pending_operations(limit).await
    }

    async fn history(
        &self,
        ccid: &MerchantCcid,
        order_id: &OrderId,
    ) -> Result<Vec<HistoryEntry>, StoreError> {
        self.inner.history(ccid, order_id).await
    }

    async fn refunds(
        &self,
        ccid: &MerchantCcid,
        order_id: &OrderId,
    ) -> Result<Vec<RefundRecord>, StoreError> {
        self.inner.refunds(ccid, order_id).await
    }

    async fn claim_pushes(
        &self,
        now: i64,
        lease_secs: i64,
        limit: i64,
    ) -> Result<Vec<PushRecord>, StoreError> {
        self.inner.claim_pushes(now, lease_secs, limit).await
    }

    async fn finish_pushes(&self, ids: &[i64], end: &PushEnd) -> Result<(), StoreError> {
        self.inner.finish_pushes(ids, end).await
    }

    async fn pushes(&self, filter: &PushFilter) -> Result<Vec<PushRecord>, StoreError> {
        self.inner.pushes(filter).await
    }

    async fn resend_push(&self, id: i64, now: i64) -> Result<bool, StoreError> {
        self.inner.resend_push(id, now).await
    }

    async fn claim_key(
        &self,
        ccid: &MerchantCcid,
        key: &str,
        fingerprint: &str,
        now: i64,
        abandoned_after: i64,
    ) -> Result<KeyClaim, StoreError> {
        self.inner
            .claim_key(ccid, key, fingerprint, now, abandoned_after)
            .await
    }

    async fn finish_key(
        &self,
        ccid: &MerchantCcid,
        key: &str,
        answer: &str,
    ) -> Result<(), StoreError> {
        self.inner.finish_key(ccid, key, answer).await
    }

    async fn release_key(&self, ccid: &MerchantCcid, key: &str) -> Result<(), StoreError> {
        self.inner.release_key(ccid, key).await
    }

    async fn prune_keys(&self, before: i64) -> Result<u64, StoreError> {
        self.inner.prune_keys(before).await
    }

    async fn orders_in_state(
        &self,
        state: kessai_core::OrderState,
        before: &str,
        limit: i64,
    ) -> Result<Vec<OrderRecord>, StoreError> {
        self.inner.orders_in_state(state, before, limit).await
    }

    async fn try_lease(
        &self,
        name: &str,
        holder: &str,
        now: i64,
        ttl: i64,
    ) -> Result<bool, StoreError> {
        self.inner.try_lease(name, holder, now, ttl).await
    }

    async fn release_lease(&self, name: &str, holder: &str) -> Result<(), StoreError> {
        self.inner.release_lease(name, holder).await
    }

    async fn order_by_charge_permission(
        &self,
        charge_permission_id: &str,
    ) -> Result<Option<OrderRecord>, StoreError> {
        self.inner
            .order_by_charge_permission(charge_permission_id)
            .await
    }

    async fn order_by_charge(&self, charge_id: &str) -> Result<Option<OrderRecord>, StoreError> {
        self.inner.order_by_charge(charge_id).await
    }

    async fn order_by_refund(&self, refund_id: &str) -> Result<Option<OrderRecord>, StoreError> {
        self.inner.order_by_refund(refund_id).await
    }

    async fn ipn_seen(&self, message_id: &str) -> Result<bool, StoreError> {
        self.inner.ipn_seen(message_id).await
    }

    async fn mark_ipn_seen(&self, message_id: &str, at: i64) -> Result<(), StoreError> {
        self.inner.mark_ipn_seen(message_id, at).await
    }

    async fn search(
        &self,
        query: &kessai_store::SearchQuery,
    ) -> Result<kessai_store::SearchResult, StoreError> {
        self.inner.search(query).await
    }

    async fn setting(&self, name: &str) -> Result<Option<String>, StoreError> {
        self.inner.setting(name).await
    }

    async fn set_setting(&self, name: &str, value: &str) -> Result<(), StoreError> {
        self.inner.set_setting(name, value).await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.inner.ping().await
    }

    async fn claim_setting(&self, name: &str, value: &str) -> Result<String, StoreError> {
        self.inner.claim_setting(name, value).await
    }
}

// ---- shared by the fault tests ----

#[derive(Debug, Clone, Copy)]
pub enum Injected {
    Amazon(Fault),
    /// The store's outcome commit fails after Amazon acted.
    StoreCommit,
}

pub const FAULTS: [Injected; 5] = [
    Injected::Amazon(Fault::DropAnswer),
    Injected::Amazon(Fault::TimeoutBefore),
    Injected::Amazon(Fault::Status(500)),
    Injected::Amazon(Fault::Status(503)),
    Injected::StoreCommit,
];

pub fn name(f: Injected) -> String {
    match f {
        Injected::Amazon(Fault::DropAnswer) => "Amazon acts, answer lost".into(),
        Injected::Amazon(Fault::TimeoutBefore) => "timeout before Amazon".into(),
        Injected::Amazon(Fault::Status(s)) => format!("Amazon answers {s}"),
        Injected::StoreCommit => "outcome commit fails".into(),
    }
}

pub fn arm(fe: &FaultEnv, call: Call, f: Injected) {
    match f {
        Injected::Amazon(fault) => fe.amazon.arm(call, fault),
        Injected::StoreCommit => fe.faulty_store.fail_next_outcome(),
    }
}

pub fn code(r: &Map<String, Value>) -> String {
    format!(
        "{} {}",
        r["mstatus"].as_str().unwrap(),
        r["vResultCode"].as_str().unwrap()
    )
}

pub fn expect_unknown(r: &Map<String, Value>) {
    assert_eq!(r["mstatus"], "pending", "{r:?}");
    assert_eq!(r["vResultCode"], "E500000000000000", "{r:?}");
    assert!(
        r["merrMsg"]
            .as_str()
            .unwrap()
            .contains("same command again"),
        "the message says a retry is safe: {r:?}"
    );
}

/// After a restart, the pending operation is resolved by the gateway on its own.
pub async fn wait_resolved(env: &TestEnv, order_id: &str) {
    for _ in 0..100 {
        if env.order(order_id).await.unwrap().in_flight.is_none() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{order_id}: the pending operation was not resolved after the restart");
}
