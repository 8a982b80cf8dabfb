//! The MWS payment operations over HTTP: AuthorizeOnBillingAgreement (synchronous and
//! asynchronous, CaptureNow), Capture, Refund, CloseAuthorization, reference ids, the monthly
//! limit, the clock, sandbox simulations and the order-reference calls.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod mws_common;
use mws_common::*;

struct Auth<'a> {
    reference: &'a str,
    amount: &'a str,
    currency: &'a str,
    timeout: Option<&'a str>,
    capture_now: Option<&'a str>,
    note: Option<&'a str>,
}

impl<'a> Auth<'a> {
    fn new(reference: &'a str, amount: &'a str) -> Auth<'a> {
        Auth {
            reference,
            amount,
            currency: "JPY",
            timeout: Some("0"),
            capture_now: Some("false"),
            note: None,
        }
    }
}

async fn authorize(e: &Emulator, s: &Seller, ba: &str, a: &Auth<'_>) -> Answer {
    let mut p = vec![
        ("AmazonBillingAgreementId", ba),
        ("AuthorizationReferenceId", a.reference),
        ("AuthorizationAmount.Amount", a.amount),
        ("AuthorizationAmount.CurrencyCode", a.currency),
    ];
    if let Some(t) = a.timeout {
        p.push(("TransactionTimeout", t));
    }
    if let Some(c) = a.capture_now {
        p.push(("CaptureNow", c));
    }
    if let Some(n) = a.note {
        p.push(("SellerAuthorizationNote", n));
    }
    e.call(s, "AuthorizeOnBillingAgreement", &p).await
}

async fn auth_details(e: &Emulator, s: &Seller, id: &str) -> Answer {
    let a = e
        .call(
            s,
            "GetAuthorizationDetails",
            &[("AmazonAuthorizationId", id)],
        )
        .await;
    a.assert_ok("GetAuthorizationDetails");
    a
}

async fn capture(
    e: &Emulator,
    s: &Seller,
    auth: &str,
    reference: &str,
    amount: &str,
    note: Option<&str>,
) -> Answer {
    let mut p = vec![
        ("AmazonAuthorizationId", auth),
        ("CaptureReferenceId", reference),
        ("CaptureAmount.Amount", amount),
        ("CaptureAmount.CurrencyCode", "JPY"),
    ];
    if let Some(n) = note {
        p.push(("SellerCaptureNote", n));
    }
    e.call(s, "Capture", &p).await
}

async fn refund(
    e: &Emulator,
    s: &Seller,
    capture: &str,
    reference: &str,
    amount: &str,
    note: Option<&str>,
) -> Answer {
    let mut p = vec![
        ("AmazonCaptureId", capture),
        ("RefundReferenceId", reference),
        ("RefundAmount.Amount", amount),
        ("RefundAmount.CurrencyCode", "JPY"),
    ];
    if let Some(n) = note {
        p.push(("SellerRefundNote", n));
    }
    e.call(s, "Refund", &p).await
}

async fn remaining(e: &Emulator, s: &Seller, ba: &str) -> String {
    e.agreement_state(s, ba)
        .await
        .req("BillingAgreementLimits/CurrentRemainingBalance/Amount")
}

#[tokio::test]
async fn synchronous_authorize_with_capture_now_then_partial_refunds() {
    let e = start().await;
    let s = e.seller().await;
    let ba = e.agreement(&s, true).await;
    let a = authorize(
        &e,
        &s,
        &ba,
        &Auth {
            capture_now: Some("true"),
            ..Auth::new("sub-0001", "1200")
        },
    )
    .await;
    a.assert_ok("AuthorizeOnBillingAgreement");
    let auth = a.req("AmazonAuthorizationId");
    let oro = a.req("AuthorizeOnBillingAgreementResult/AmazonOrderReferenceId");
    assert!(oro.starts_with("S03-") && oro.len() == 19, "{oro}");
    assert!(
        auth.starts_with(&format!("{oro}-A0")) && auth.len() == oro.len() + 8,
        "{auth}"
    );
    assert_eq!(a.req("AuthorizationStatus/State"), "Closed");
    assert_eq!(
        a.req("AuthorizationStatus/ReasonCode"),
        "MaxCapturesProcessed"
    );
    assert_eq!(a.req("CapturedAmount/Amount"), "1200");
    assert_eq!(a.req("CaptureNow"), "true");
    let capture_id = a.req("IdList/member");
    assert!(capture_id.starts_with(&format!("{oro}-C0")));
    assert_eq!(remaining(&e, &s, &ba).await, "48800");

    // The implied order reference: child of the agreement, closed.
    let o = e
        .call(
            &s,
            "GetOrderReferenceDetails",
            &[("AmazonOrderReferenceId", &oro)],
        )
        .await;
    o.assert_ok("GetOrderReferenceDetails");
    assert_eq!(o.req("ParentDetails/Id"), ba);
    assert_eq!(o.req("ParentDetails/Type"), "BillingAgreement");
    assert_eq!(o.req("OrderReferenceStatus/State"), "Closed");

    let c = e
        .call(&s, "GetCaptureDetails", &[("AmazonCaptureId", &capture_id)])
        .await;
    c.assert_ok("GetCaptureDetails");
    assert_eq!(c.req("CaptureStatus/State"), "Completed");
    assert_eq!(c.req("CaptureAmount/Amount"), "1200");

    // Refunds: Pending at first, Completed 30 s later; never above the capture.
    let r = refund(&e, &s, &capture_id, "ref-1", "500", None).await;
    r.assert_ok("Refund");
    assert_eq!(r.req("RefundStatus/State"), "Pending");
    let r1 = r.req("AmazonRefundId");
    assert!(r1.starts_with(&format!("{oro}-R0")));
    refund(&e, &s, &capture_id, "ref-2", "701", None)
        .await
        .assert_error(400, "TransactionAmountExceeded");
    let r = refund(&e, &s, &capture_id, "ref-3", "700", None).await;
    r.assert_ok("Refund");
    let r2 = r.req("AmazonRefundId");
    refund(&e, &s, &capture_id, "ref-4", "1", None)
        .await
        .assert_error(400, "TransactionAmountExceeded");
    // Nothing changed by the refusals.
    let c = e
        .call(&s, "GetCaptureDetails", &[("AmazonCaptureId", &capture_id)])
        .await;
    assert_eq!(c.all("IdList/member"), vec![r1.clone(), r2.clone()]);
    e.advance(30).await;
    for r in [&r1, &r2] {
        let d = e
            .call(&s, "GetRefundDetails", &[("AmazonRefundId", r)])
            .await;
        d.assert_ok("GetRefundDetails");
        assert_eq!(d.req("RefundStatus/State"), "Completed");
    }
    let c = e
        .call(&s, "GetCaptureDetails", &[("AmazonCaptureId", &capture_id)])
        .await;
    assert_eq!(c.req("RefundedAmount/Amount"), "1200");
    assert_eq!(c.req("CaptureStatus/State"), "Closed");
    assert_eq!(c.req("CaptureStatus/ReasonCode"), "MaxAmountRefunded");
    refund(&e, &s, &capture_id, "ref-5", "1", None)
        .await
        .assert_error(405, "CaptureNotRefundable");
}

#[tokio::test]
async fn asynchronous_authorize_is_pending_then_open_then_captured() {
    let e = start().await;
    let s = e.seller().await;
    let ba = e.agreement(&s, true).await;
    // TransactionTimeout and CaptureNow left out: Amazon's defaults (1440, false).
    let a = authorize(
        &e,
        &s,
        &ba,
        &Auth {
            timeout: None,
            capture_now: None,
            ..Auth::new("async-1", "3000")
        },
    )
    .await;
    a.assert_ok("AuthorizeOnBillingAgreement");
    assert_eq!(a.req("AuthorizationStatus/State"), "Pending");
    assert_eq!(a.req("CaptureNow"), "false");
    let auth = a.req("AmazonAuthorizationId");
    capture(&e, &s, &auth, "cap-early", "3000", None)
        .await
        .assert_error(405, "InvalidAuthorizationStatus");
    e.advance(20).await;
    assert_eq!(
        auth_details(&e, &s, &auth)
            .await
            .req("AuthorizationStatus/State"),
        "Pending"
    );
    e.advance(10).await;
    let d = auth_details(&e, &s, &auth).await;
    assert_eq!(d.req("AuthorizationStatus/State"), "Open");

    // Capture above the authorization: refused, nothing changed.
    capture(&e, &s, &auth, "cap-1", "3001", None)
        .await
        .assert_error(400, "TransactionAmountExceeded");
    let d = auth_details(&e, &s, &auth).await;
    assert_eq!(d.req("AuthorizationStatus/State"), "Open");
    assert_eq!(d.req("CapturedAmount/Amount"), "0");
    // A partial capture closes the authorization.
    let c = capture(&e, &s, &auth, "cap-1", "2500", None).await;
    c.assert_ok("Capture");
    assert_eq!(c.req("CaptureStatus/State"), "Completed");
    let d = auth_details(&e, &s, &auth).await;
    assert_eq!(d.req("AuthorizationStatus/State"), "Closed");
    assert_eq!(
        d.req("AuthorizationStatus/ReasonCode"),
        "MaxCapturesProcessed"
    );
    assert_eq!(d.req("CapturedAmount/Amount"), "2500");
    capture(&e, &s, &auth, "cap-2", "100", None)
        .await
        .assert_error(405, "InvalidAuthorizationStatus");

    // CloseAuthorization on another open one; capture afterwards is refused.
    let a = authorize(&e, &s, &ba, &Auth::new("sync-2", "100")).await;
    assert_eq!(a.req("AuthorizationStatus/State"), "Open");
    let auth2 = a.req("AmazonAuthorizationId");
    e.call(
        &s,
        "CloseAuthorization",
        &[("AmazonAuthorizationId", &auth2), ("ClosureReason", "不要")],
    )
    .await
    .assert_ok("CloseAuthorization");
    let d = auth_details(&e, &s, &auth2).await;
    assert_eq!(d.req("AuthorizationStatus/State"), "Closed");
    assert_eq!(d.req("AuthorizationStatus/ReasonCode"), "SellerClosed");
    capture(&e, &s, &auth2, "cap-3", "100", None)
        .await
        .assert_error(405, "InvalidAuthorizationStatus");
}

#[tokio::test]
async fn bad_amounts_and_reused_reference_ids_change_nothing() {
    let e = start().await;
    let s = e.seller().await;
    let ba = e.agreement(&s, true).await;
    authorize(&e, &s, &ba, &Auth::new("r-1", "100.123"))
        .await
        .assert_error(400, "InvalidParameterValue");
    authorize(&e, &s, &ba, &Auth::new("r-1", "100.5"))
        .await
        .assert_error(400, "InvalidParameterValue");
    authorize(&e, &s, &ba, &Auth::new("r-1", "0"))
        .await
        .assert_error(400, "InvalidParameterValue");
    authorize(
        &e,
        &s,
        &ba,
        &Auth {
            currency: "USD",
            ..Auth::new("r-1", "10.00")
        },
    )
    .await
    .assert_error(400, "CurrencyMismatch");
    authorize(
        &e,
        &s,
        &ba,
        &Auth {
            timeout: Some("1441"),
            ..Auth::new("r-1", "100")
        },
    )
    .await
    .assert_error(400, "InvalidParameterValue");
    authorize(&e, &s, &ba, &Auth::new("has space", "100"))
        .await
        .assert_error(400, "InvalidParameterValue");
    assert_eq!(remaining(&e, &s, &ba).await, "50000");

    // The same reference id with the same parameters answers the same authorization.
    let first = authorize(&e, &s, &ba, &Auth::new("r-1", "100")).await;
    first.assert_ok("AuthorizeOnBillingAgreement");
    let again = authorize(&e, &s, &ba, &Auth::new("r-1", "100")).await;
    again.assert_ok("AuthorizeOnBillingAgreement");
    assert_eq!(
        first.req("AmazonAuthorizationId"),
        again.req("AmazonAuthorizationId")
    );
    assert_eq!(remaining(&e, &s, &ba).await, "49900");
    // …with other parameters: DuplicateRequest, nothing changed.
    authorize(&e, &s, &ba, &Auth::new("r-1", "200"))
        .await
        .assert_error(400, "DuplicateRequest");
    assert_eq!(remaining(&e, &s, &ba).await, "49900");
    // An authorization's reference id used for a capture: DuplicateReferenceId.
    let auth = first.req("AmazonAuthorizationId");
    capture(&e, &s, &auth, "r-1", "100", None)
        .await
        .assert_error(400, "DuplicateReferenceId");
    assert_eq!(
        auth_details(&e, &s, &auth)
            .await
            .req("AuthorizationStatus/State"),
        "Open"
    );
    // Capture in USD on a JPY authorization.
    e.call(
        &s,
        "Capture",
        &[
            ("AmazonAuthorizationId", &auth),
            ("CaptureReferenceId", "c-usd"),
            ("CaptureAmount.Amount", "1.00"),
            ("CaptureAmount.CurrencyCode", "USD"),
        ],
    )
    .await
    .assert_error(400, "CurrencyMismatch");
    // Another seller cannot reach it.
    let other = e.seller().await;
    e.call(
        &other,
        "GetAuthorizationDetails",
        &[("AmazonAuthorizationId", &auth)],
    )
    .await
    .assert_error(404, "InvalidTransactionId");
}

#[tokio::test]
async fn the_monthly_limit_is_50000_yen_and_declines_do_not_use_it() {
    let e = start().await;
    let s = e.seller().await;
    let ba = e.agreement(&s, true).await;
    authorize(&e, &s, &ba, &Auth::new("m-1", "30000"))
        .await
        .assert_ok("AuthorizeOnBillingAgreement");
    let declined = authorize(
        &e,
        &s,
        &ba,
        &Auth {
            note: Some(
                r#"{"SandboxSimulation": {"State":"Declined", "ReasonCode":"AmazonRejected"}}"#,
            ),
            ..Auth::new("m-2", "20000")
        },
    )
    .await;
    assert_eq!(declined.req("AuthorizationStatus/State"), "Declined");
    assert_eq!(
        declined.req("AuthorizationStatus/ReasonCode"),
        "AmazonRejected"
    );
    assert_eq!(remaining(&e, &s, &ba).await, "20000");
    assert_eq!(
        e.agreement_state(&s, &ba)
            .await
            .req("BillingAgreementStatus/State"),
        "Open"
    );
    authorize(&e, &s, &ba, &Auth::new("m-3", "20001"))
        .await
        .assert_error(400, "PeriodicAmountExceeded");
    assert_eq!(remaining(&e, &s, &ba).await, "20000");
    authorize(&e, &s, &ba, &Auth::new("m-4", "20000"))
        .await
        .assert_ok("AuthorizeOnBillingAgreement");
    authorize(&e, &s, &ba, &Auth::new("m-5", "1"))
        .await
        .assert_error(400, "PeriodicAmountExceeded");
    // The next calendar month (UTC) starts afresh.
    let now = e.now().await;
    let start_next = e
        .agreement_state(&s, &ba)
        .await
        .req("BillingAgreementLimits/TimePeriodEndDate");
    let next =
        time::OffsetDateTime::parse(&start_next, &time::format_description::well_known::Rfc3339)
            .unwrap()
            .unix_timestamp();
    assert!(next > now);
    e.advance(next - now).await;
    assert_eq!(remaining(&e, &s, &ba).await, "50000");
    authorize(&e, &s, &ba, &Auth::new("m-6", "50000"))
        .await
        .assert_ok("AuthorizeOnBillingAgreement");
}

#[tokio::test]
async fn the_clock_cancels_stale_drafts_and_expires_authorizations() {
    let e = start().await;
    let s = e.seller().await;
    let draft = e.agreement(&s, false).await;
    let ba = e.agreement(&s, true).await;
    let a = authorize(&e, &s, &ba, &Auth::new("x-1", "500")).await;
    let auth = a.req("AmazonAuthorizationId");
    e.advance(3 * 3600 - 10).await;
    assert_eq!(
        e.agreement_state(&s, &draft)
            .await
            .req("BillingAgreementStatus/State"),
        "Draft"
    );
    e.advance(10).await;
    let d = e.agreement_state(&s, &draft).await;
    assert_eq!(d.req("BillingAgreementStatus/State"), "Canceled");
    assert_eq!(d.req("BillingAgreementStatus/ReasonCode"), "Stale");
    e.consent(&draft, true).await;
    e.call(
        &s,
        "ConfirmBillingAgreement",
        &[("AmazonBillingAgreementId", &draft)],
    )
    .await
    .assert_error(405, "InvalidBillingAgreementStatus");
    // The confirmed agreement is not touched; the authorization expires after 30 days.
    assert_eq!(
        e.agreement_state(&s, &ba)
            .await
            .req("BillingAgreementStatus/State"),
        "Open"
    );
    e.advance(30 * 86400).await;
    let d = auth_details(&e, &s, &auth).await;
    assert_eq!(d.req("AuthorizationStatus/State"), "Closed");
    assert_eq!(d.req("AuthorizationStatus/ReasonCode"), "ExpiredUnused");
    capture(&e, &s, &auth, "late", "500", None)
        .await
        .assert_error(405, "InvalidAuthorizationStatus");
}

#[tokio::test]
async fn sandbox_simulations_and_a_declining_payment_method() {
    let e = start().await;
    let s = e.seller().await;
    let ba = e.agreement(&s, true).await;
    // A declining payment method: Declined/InvalidPaymentMethod and the agreement Suspended.
    e.declines(&ba, true).await;
    let a = authorize(&e, &s, &ba, &Auth::new("d-1", "100")).await;
    assert_eq!(a.req("AuthorizationStatus/State"), "Declined");
    assert_eq!(
        a.req("AuthorizationStatus/ReasonCode"),
        "InvalidPaymentMethod"
    );
    let st = e.agreement_state(&s, &ba).await;
    assert_eq!(st.req("BillingAgreementStatus/State"), "Suspended");
    assert_eq!(
        st.req("BillingAgreementLimits/CurrentRemainingBalance/Amount"),
        "50000"
    );
    authorize(&e, &s, &ba, &Auth::new("d-2", "100"))
        .await
        .assert_error(405, "InvalidBillingAgreementStatus");
    e.declines(&ba, false).await;
    e.call(
        &s,
        "ConfirmBillingAgreement",
        &[("AmazonBillingAgreementId", &ba)],
    )
    .await
    .assert_ok("ConfirmBillingAgreement");

    // Soft decline, synchronous: suspended and not reopened by the clock.
    let soft = r#"{"SandboxSimulation": {"State":"Declined", "ReasonCode":"InvalidPaymentMethod", "SoftDecline":"true", "PaymentMethodUpdateTimeInMins":1}}"#;
    let a = authorize(
        &e,
        &s,
        &ba,
        &Auth {
            note: Some(soft),
            ..Auth::new("d-3", "100")
        },
    )
    .await;
    assert_eq!(
        a.req("AuthorizationStatus/ReasonCode"),
        "InvalidPaymentMethod"
    );
    assert_eq!(a.req("SoftDecline"), "true");
    e.advance(120).await;
    assert_eq!(
        e.agreement_state(&s, &ba)
            .await
            .req("BillingAgreementStatus/State"),
        "Suspended"
    );
    e.call(
        &s,
        "ConfirmBillingAgreement",
        &[("AmazonBillingAgreementId", &ba)],
    )
    .await
    .assert_ok("ConfirmBillingAgreement");

    // Asynchronous: Declined after 30 s, Suspended, Open again after the minutes given.
    let a = authorize(
        &e,
        &s,
        &ba,
        &Auth {
            timeout: Some("1440"),
            note: Some(soft),
            ..Auth::new("d-4", "100")
        },
    )
    .await;
    assert_eq!(a.req("AuthorizationStatus/State"), "Pending");
    e.advance(30).await;
    assert_eq!(
        e.agreement_state(&s, &ba)
            .await
            .req("BillingAgreementStatus/State"),
        "Suspended"
    );
    e.advance(60).await;
    assert_eq!(
        e.agreement_state(&s, &ba)
            .await
            .req("BillingAgreementStatus/State"),
        "Open"
    );

    // TransactionTimedOut keeps the agreement Open.
    let a = authorize(
        &e,
        &s,
        &ba,
        &Auth {
            note: Some(
                r#"{"SandboxSimulation":{"State":"Declined","ReasonCode":"TransactionTimedOut"}}"#,
            ),
            ..Auth::new("d-5", "100")
        },
    )
    .await;
    assert_eq!(
        a.req("AuthorizationStatus/ReasonCode"),
        "TransactionTimedOut"
    );
    assert_eq!(
        e.agreement_state(&s, &ba)
            .await
            .req("BillingAgreementStatus/State"),
        "Open"
    );

    // ExpiredUnused after N minutes; AmazonClosed at once.
    let a = authorize(
        &e,
        &s,
        &ba,
        &Auth { note: Some(r#"{"SandboxSimulation":{"State":"Closed","ReasonCode":"ExpiredUnused","ExpirationTimeInMins":1}}"#), ..Auth::new("d-6", "100") },
    )
    .await;
    assert_eq!(a.req("AuthorizationStatus/State"), "Open");
    let expiring = a.req("AmazonAuthorizationId");
    e.advance(60).await;
    assert_eq!(
        auth_details(&e, &s, &expiring)
            .await
            .req("AuthorizationStatus/ReasonCode"),
        "ExpiredUnused"
    );
    let a = authorize(
        &e,
        &s,
        &ba,
        &Auth {
            note: Some(r#"{"SandboxSimulation":{"State":"Closed","ReasonCode":"AmazonClosed"}}"#),
            ..Auth::new("d-7", "100")
        },
    )
    .await;
    assert_eq!(a.req("AuthorizationStatus/ReasonCode"), "AmazonClosed");

    // An unknown simulation is refused and makes nothing.
    authorize(
        &e,
        &s,
        &ba,
        &Auth {
            note: Some(r#"{"SandboxSimulation":{"State":"Declined","ReasonCode":"Nope"}}"#),
            ..Auth::new("d-8", "100")
        },
    )
    .await
    .assert_error(400, "InvalidSandboxSimulationSpecified");

    // Captures: Pending then Completed; Declined; refunds declined.
    let a = authorize(&e, &s, &ba, &Auth::new("d-9", "1000")).await;
    let auth = a.req("AmazonAuthorizationId");
    let c = capture(
        &e,
        &s,
        &auth,
        "c-9",
        "1000",
        Some(r#"{"SandboxSimulation": {"State":"Pending"}}"#),
    )
    .await;
    assert_eq!(c.req("CaptureStatus/State"), "Pending");
    let cap = c.req("AmazonCaptureId");
    refund(&e, &s, &cap, "f-0", "1", None)
        .await
        .assert_error(405, "CaptureNotRefundable");
    e.advance(30).await;
    let c = e
        .call(&s, "GetCaptureDetails", &[("AmazonCaptureId", &cap)])
        .await;
    assert_eq!(c.req("CaptureStatus/State"), "Completed");
    let r = refund(
        &e,
        &s,
        &cap,
        "f-1",
        "400",
        Some(r#"{"SandboxSimulation":{"State":"Declined","ReasonCode":"AmazonRejected"}}"#),
    )
    .await;
    let rid = r.req("AmazonRefundId");
    e.advance(30).await;
    let r = e
        .call(&s, "GetRefundDetails", &[("AmazonRefundId", &rid)])
        .await;
    assert_eq!(r.req("RefundStatus/State"), "Declined");
    assert_eq!(r.req("RefundStatus/ReasonCode"), "AmazonRejected");
    // The declined refund's amount can be refunded again.
    refund(&e, &s, &cap, "f-2", "1000", None)
        .await
        .assert_ok("Refund");

    let a = authorize(&e, &s, &ba, &Auth::new("d-10", "1000")).await;
    let auth = a.req("AmazonAuthorizationId");
    let c = capture(
        &e,
        &s,
        &auth,
        "c-10",
        "1000",
        Some(r#"{"SandboxSimulation":{"State":"Declined","ReasonCode":"AmazonRejected"}}"#),
    )
    .await;
    assert_eq!(c.req("CaptureStatus/State"), "Declined");
    assert_eq!(
        auth_details(&e, &s, &auth)
            .await
            .req("AuthorizationStatus/State"),
        "Open"
    );
}

#[tokio::test]
async fn order_reference_calls_on_a_billing_agreement() {
    let e = start().await;
    let s = e.seller().await;
    let ba = e.agreement(&s, true).await;
    let o = e
        .call(
            &s,
            "CreateOrderReferenceForId",
            &[
                ("Id", &ba),
                ("IdType", "BillingAgreement"),
                ("OrderReferenceAttributes.OrderTotal.Amount", "2000"),
                ("OrderReferenceAttributes.OrderTotal.CurrencyCode", "JPY"),
                (
                    "OrderReferenceAttributes.SellerOrderAttributes.SellerOrderId",
                    "order-7",
                ),
                ("InheritShippingAddress", "true"),
            ],
        )
        .await;
    o.assert_ok("CreateOrderReferenceForId");
    assert_eq!(o.req("OrderReferenceStatus/State"), "Draft");
    assert_eq!(o.req("ParentDetails/Id"), ba);
    assert_eq!(o.req("PhysicalDestination/PostalCode"), "150-0002");
    let oro = o.req("AmazonOrderReferenceId");
    let id = [("AmazonOrderReferenceId", oro.as_str())];
    // Authorize before confirm: refused.
    let auth_params = |r: &'static str, amount: &'static str| {
        vec![
            ("AmazonOrderReferenceId", oro.clone()),
            ("AuthorizationReferenceId", r.to_owned()),
            ("AuthorizationAmount.Amount", amount.to_owned()),
            ("AuthorizationAmount.CurrencyCode", "JPY".to_owned()),
            ("TransactionTimeout", "0".to_owned()),
        ]
    };
    let call_auth = |p: Vec<(&'static str, String)>| {
        let e = &e;
        let s = &s;
        async move {
            let p: Vec<(&str, &str)> = p.iter().map(|(k, v)| (*k, v.as_str())).collect();
            e.call(s, "Authorize", &p).await
        }
    };
    call_auth(auth_params("o-1", "1000"))
        .await
        .assert_error(405, "InvalidOrderReferenceStatus");
    let set = e
        .call(
            &s,
            "SetOrderReferenceDetails",
            &[
                ("AmazonOrderReferenceId", &oro),
                ("OrderReferenceAttributes.SellerNote", "メモ"),
            ],
        )
        .await;
    set.assert_ok("SetOrderReferenceDetails");
    assert_eq!(set.req("OrderReferenceDetails/SellerNote"), "メモ");
    e.call(&s, "ConfirmOrderReference", &id)
        .await
        .assert_ok("ConfirmOrderReference");
    e.call(
        &s,
        "SetOrderReferenceDetails",
        &[
            ("AmazonOrderReferenceId", &oro),
            ("OrderReferenceAttributes.SellerNote", "x"),
        ],
    )
    .await
    .assert_error(405, "OrderReferenceNotModifiable");
    call_auth(auth_params("o-2", "2001"))
        .await
        .assert_error(400, "TransactionAmountExceeded");
    let a = call_auth(auth_params("o-3", "1500")).await;
    a.assert_ok("Authorize");
    assert_eq!(a.req("AuthorizationStatus/State"), "Open");
    call_auth(auth_params("o-4", "501"))
        .await
        .assert_error(400, "TransactionAmountExceeded");
    let auth = a.req("AmazonAuthorizationId");
    assert_eq!(remaining(&e, &s, &ba).await, "48500");
    capture(&e, &s, &auth, "o-c", "1500", None)
        .await
        .assert_ok("Capture");
    e.call(
        &s,
        "CancelOrderReference",
        &[("AmazonOrderReferenceId", &oro), ("CancelationReason", "x")],
    )
    .await
    .assert_error(400, "InvalidCancelAttempt");
    e.call(
        &s,
        "CloseOrderReference",
        &[("AmazonOrderReferenceId", &oro), ("ClosureReason", "done")],
    )
    .await
    .assert_ok("CloseOrderReference");
    let g = e.call(&s, "GetOrderReferenceDetails", &id).await;
    assert_eq!(g.req("OrderReferenceStatus/State"), "Closed");
    assert_eq!(g.req("OrderReferenceStatus/ReasonCode"), "SellerClosed");
    assert_eq!(g.req("IdList/member"), auth);

    // A second one, confirmed at once, then canceled.
    let o = e
        .call(
            &s,
            "CreateOrderReferenceForId",
            &[
                ("Id", &ba),
                ("OrderReferenceAttributes.OrderTotal.Amount", "100"),
                ("OrderReferenceAttributes.OrderTotal.CurrencyCode", "JPY"),
                ("ConfirmNow", "true"),
            ],
        )
        .await;
    assert_eq!(o.req("OrderReferenceStatus/State"), "Open");
    assert!(o.get("PhysicalDestination/PostalCode").is_none());
    let oro2 = o.req("AmazonOrderReferenceId");
    e.call(
        &s,
        "CancelOrderReference",
        &[("AmazonOrderReferenceId", &oro2)],
    )
    .await
    .assert_ok("CancelOrderReference");
    let g = e
        .call(
            &s,
            "GetOrderReferenceDetails",
            &[("AmazonOrderReferenceId", &oro2)],
        )
        .await;
    assert_eq!(g.req("OrderReferenceStatus/State"), "Canceled");
    assert_eq!(g.req("OrderReferenceStatus/ReasonCode"), "SellerCanceled");

    // PaymentMethodNotAllowed simulated on the note: Confirm refused.
    let o = e
        .call(
            &s,
            "CreateOrderReferenceForId",
            &[
                ("Id", &ba),
                ("OrderReferenceAttributes.OrderTotal.Amount", "100"),
                ("OrderReferenceAttributes.OrderTotal.CurrencyCode", "JPY"),
            ],
        )
        .await;
    let oro3 = o.req("AmazonOrderReferenceId");
    e.call(
        &s,
        "SetOrderReferenceDetails",
        &[
            ("AmazonOrderReferenceId", &oro3),
            (
                "OrderReferenceAttributes.SellerNote",
                r#"{"SandboxSimulation":{"Constraint":"PaymentMethodNotAllowed"}}"#,
            ),
        ],
    )
    .await
    .assert_ok("SetOrderReferenceDetails");
    e.call(
        &s,
        "ConfirmOrderReference",
        &[("AmazonOrderReferenceId", &oro3)],
    )
    .await
    .assert_error(400, "ConstraintsExist");
    // On a Draft agreement: refused.
    let draft = e.agreement(&s, false).await;
    e.call(&s, "CreateOrderReferenceForId", &[("Id", &draft)])
        .await
        .assert_error(405, "InvalidBillingAgreementStatus");
}
