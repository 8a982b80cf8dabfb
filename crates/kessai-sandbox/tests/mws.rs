//! The MWS (Auto Pay) face over HTTP: signatures, the XML of every answer, Amazon's errors for
//! bad input (with nothing changed), and each billing-agreement operation in its states.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod mws_common;
use mws_common::*;

/// The test client reproduces the reference's vector (Python SDK 2.7.1's signing routine).
#[test]
fn the_test_client_signs_the_reference_vector() {
    let params: Vec<(String, String)> = [
        ("AWSAccessKeyId", "AKIDEXAMPLE"),
        ("Action", "CloseBillingAgreement"),
        ("AmazonBillingAgreementId", "C03-1234567-1234567"),
        ("ClosureReason", "テスト 終了*~"),
        ("SellerId", "A1SELLER"),
        ("SignatureMethod", "HmacSHA256"),
        ("SignatureVersion", "2"),
        ("Timestamp", "2024-05-01T12:34:56Z"),
        ("Version", "2013-01-01"),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect();
    let sig = signature(
        "secret",
        "mws.amazonservices.jp",
        "/OffAmazonPayments_Sandbox/2013-01-01",
        &params,
    );
    assert_eq!(sig, "9KI3z49ixU6tL9jjCgr79kDfnniPPfXGvUQy/2YqsV0=");
    let mut with_sig = params.clone();
    with_sig.push(("Signature".into(), sig));
    let body = form(&with_sig);
    assert!(body.contains("ClosureReason=%E3%83%86%E3%82%B9%E3%83%88+%E7%B5%82%E4%BA%86%2A~"));
    assert!(body.ends_with("&Signature=9KI3z49ixU6tL9jjCgr79kDfnniPPfXGvUQy%2F2YqsV0%3D"));
}

#[tokio::test]
async fn every_answer_on_the_mws_paths_is_amazons_xml() {
    let e = start().await;
    let seller = e.seller().await;
    // Unknown sub-path, wrong method, oversized body: XML too.
    let a = e
        .post_raw("/OffAmazonPayments_Sandbox/2099-01-01", "Action=x".into())
        .await;
    a.assert_error(404, "InvalidAddress");
    let a = e.post_raw("/OffAmazonPayments", "".into()).await;
    a.assert_error(404, "InvalidAddress");
    let r = e
        .http
        .get(format!("{}{SANDBOX}", e.base))
        .send()
        .await
        .unwrap();
    let a = answer(r).await;
    a.assert_error(405, "MethodNotAllowed");
    let a = e
        .post_raw(SANDBOX, "a=".to_owned() + &"x".repeat(300 * 1024))
        .await;
    a.assert_error(413, "RequestEntityTooLarge");
    let a = e.post_raw(SANDBOX, "".into()).await;
    a.assert_error(400, "MissingParameter");

    // Unknown Action, signed correctly.
    let a = e.call(&seller, "FrobnicateBillingAgreement", &[]).await;
    a.assert_error(400, "InvalidAction");

    // Wrong signature (another secret), unknown key.
    let params = e.common(&seller, "GetServiceStatus").await;
    let a = e
        .post_signed("not-the-secret", SANDBOX, params.clone())
        .await;
    a.assert_error(403, "SignatureDoesNotMatch");
    assert_eq!(a.req("Error/Type"), "Sender");
    let mut other = params.clone();
    other[0].1 = "AKIANOTAKEY".into();
    e.post_signed(&seller.secret, SANDBOX, other)
        .await
        .assert_error(403, "InvalidAccessKeyId");

    // Timestamp missing, or 20 minutes old / ahead.
    let without: Vec<_> = params
        .iter()
        .filter(|(k, _)| k != "Timestamp")
        .cloned()
        .collect();
    e.post_signed(&seller.secret, SANDBOX, without)
        .await
        .assert_error(400, "MissingParameter");
    let now = e.now().await;
    for at in [now - 20 * 60, now + 20 * 60] {
        let mut old = params.clone();
        old.iter_mut().find(|(k, _)| k == "Timestamp").unwrap().1 = timestamp(at);
        e.post_signed(&seller.secret, SANDBOX, old)
            .await
            .assert_error(400, "RequestExpired");
    }
    // 14 minutes is fine.
    let mut fresh = params.clone();
    fresh.iter_mut().find(|(k, _)| k == "Timestamp").unwrap().1 = timestamp(now - 14 * 60);
    e.post_signed(&seller.secret, SANDBOX, fresh)
        .await
        .assert_ok("GetServiceStatus");

    // Another seller's SellerId with this key.
    let other_seller = e.seller().await;
    let mut foreign = params.clone();
    foreign.iter_mut().find(|(k, _)| k == "SellerId").unwrap().1 = other_seller.id.clone();
    e.post_signed(&seller.secret, SANDBOX, foreign)
        .await
        .assert_error(401, "UnauthorizedAccess");

    // The live path answers the same way.
    let a = e
        .post_signed(&seller.secret, "/OffAmazonPayments/2013-01-01", params)
        .await;
    a.assert_ok("GetServiceStatus");
}

#[tokio::test]
async fn signing_variants_that_amazon_tolerates_are_accepted() {
    let e = start().await;
    let seller = e.seller().await;
    let ba = e.agreement(&seller, false).await;
    let mut params = e.common(&seller, "GetBillingAgreementDetails").await;
    params.push(("AmazonBillingAgreementId".into(), ba.clone()));
    // Host signed without its port.
    let host = e.host.split(':').next().unwrap().to_owned();
    let sig = signature(&seller.secret, &host, SANDBOX, &params);
    let mut p = params.clone();
    p.push(("Signature".into(), sig));
    e.post_raw(SANDBOX, form(&p))
        .await
        .assert_ok("GetBillingAgreementDetails");
    // Lower-case percent-encoding in the string signed, and a `z` timestamp.
    let mut p = params.clone();
    p.push((
        "SellerBillingAgreementAttributes.StoreName".into(),
        "テスト店 *".into(),
    ));
    p.iter_mut().find(|(k, _)| k == "Timestamp").unwrap().1 = p
        .iter()
        .find(|(k, _)| k == "Timestamp")
        .unwrap()
        .1
        .replace('Z', "z");
    let mut sorted: Vec<_> = p.clone();
    sorted.sort();
    let canonical = sorted
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&");
    let lower: String = {
        let mut out = String::new();
        let mut n = 0;
        for c in canonical.chars() {
            if c == '%' {
                n = 2;
                out.push(c);
            } else if n > 0 {
                n -= 1;
                out.push(c.to_ascii_lowercase());
            } else {
                out.push(c);
            }
        }
        out
    };
    assert_ne!(lower, canonical);
    let data = format!("POST\n{}\n{SANDBOX}\n{lower}", e.host);
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, seller.secret.as_bytes());
    use base64::Engine as _;
    let sig =
        base64::engine::general_purpose::STANDARD.encode(ring::hmac::sign(&key, data.as_bytes()));
    p.push(("Signature".into(), sig));
    e.post_raw(SANDBOX, form(&p))
        .await
        .assert_ok("GetBillingAgreementDetails");
}

#[tokio::test]
async fn a_billing_agreement_lives_draft_open_suspended_closed() {
    let e = start().await;
    let seller = e.seller().await;
    let ba = e.agreement(&seller, false).await;
    assert!(ba.starts_with("C03-") && ba.len() == 19, "{ba}");
    let id = [("AmazonBillingAgreementId", ba.as_str())];

    // Draft: constraint, only part of the address, no buyer.
    let a = e.agreement_state(&seller, &ba).await;
    assert_eq!(a.req("BillingAgreementStatus/State"), "Draft");
    assert_eq!(
        a.req("Constraints/Constraint/ConstraintID"),
        "BuyerConsentNotSet"
    );
    assert_eq!(a.req("PhysicalDestination/PostalCode"), "150-0002");
    assert_eq!(a.req("PhysicalDestination/StateOrRegion"), "東京都");
    assert!(a.get("PhysicalDestination/AddressLine1").is_none());
    assert!(a.get("BillingAgreementDetails/Buyer/Name").is_none());
    assert_eq!(a.req("ReleaseEnvironment"), "Sandbox");
    assert_eq!(
        a.req("BillingAgreementLimits/AmountLimitPerTimePeriod/Amount"),
        "50000"
    );
    assert_eq!(
        a.req("BillingAgreementLimits/CurrentRemainingBalance/CurrencyCode"),
        "JPY"
    );

    // Confirm before consent: refused, still Draft.
    let c = e.call(&seller, "ConfirmBillingAgreement", &id).await;
    c.assert_error(400, "BillingAgreementConstraintsExist");
    assert!(c.req("Error/Message").contains("BuyerConsentNotSet"));
    assert_eq!(
        e.agreement_state(&seller, &ba)
            .await
            .req("BillingAgreementStatus/State"),
        "Draft"
    );
    // Authorize on a Draft agreement: refused.
    let auth = e
        .call(
            &seller,
            "AuthorizeOnBillingAgreement",
            &[
                ("AmazonBillingAgreementId", &ba),
                ("AuthorizationReferenceId", "draft-1"),
                ("AuthorizationAmount.Amount", "100"),
                ("AuthorizationAmount.CurrencyCode", "JPY"),
                ("TransactionTimeout", "0"),
            ],
        )
        .await;
    auth.assert_error(405, "InvalidBillingAgreementStatus");

    // Set while Draft.
    let set = e
        .call(
            &seller,
            "SetBillingAgreementDetails",
            &[
                ("AmazonBillingAgreementId", &ba),
                ("BillingAgreementAttributes.SellerNote", "毎月のコーヒー"),
                ("BillingAgreementAttributes.SellerBillingAgreementAttributes.SellerBillingAgreementId", "sub-42"),
                ("BillingAgreementAttributes.SellerBillingAgreementAttributes.StoreName", "テスト店"),
            ],
        )
        .await;
    set.assert_ok("SetBillingAgreementDetails");
    assert_eq!(
        set.req("BillingAgreementDetails/SellerNote"),
        "毎月のコーヒー"
    );
    assert_eq!(
        set.req("SellerBillingAgreementAttributes/SellerBillingAgreementId"),
        "sub-42"
    );

    // Consent, then Confirm → Open with the buyer and the full address.
    e.consent(&ba, true).await;
    assert!(e
        .agreement_state(&seller, &ba)
        .await
        .get("Constraints/Constraint/ConstraintID")
        .is_none());
    e.call(&seller, "ConfirmBillingAgreement", &id)
        .await
        .assert_ok("ConfirmBillingAgreement");
    let a = e.agreement_state(&seller, &ba).await;
    assert_eq!(a.req("BillingAgreementStatus/State"), "Open");
    assert_eq!(a.req("BillingAgreementDetails/Buyer/Name"), "山田 太郎");
    assert_eq!(a.req("PhysicalDestination/AddressLine1"), "渋谷2-21-1");
    assert_eq!(a.req("BillingAgreementConsent"), "true");
    // Confirm again: still Open.
    e.call(&seller, "ConfirmBillingAgreement", &id)
        .await
        .assert_ok("ConfirmBillingAgreement");

    // Set on an Open agreement: refused, nothing changed.
    e.call(
        &seller,
        "SetBillingAgreementDetails",
        &[
            ("AmazonBillingAgreementId", &ba),
            ("BillingAgreementAttributes.SellerNote", "x"),
        ],
    )
    .await
    .assert_error(405, "BillingAgreementNotModifiable");
    assert_eq!(
        e.agreement_state(&seller, &ba)
            .await
            .req("BillingAgreementDetails/SellerNote"),
        "毎月のコーヒー"
    );

    // Validate: Success; with a declining payment method: Failure and Suspended.
    let v = e.call(&seller, "ValidateBillingAgreement", &id).await;
    v.assert_ok("ValidateBillingAgreement");
    assert_eq!(v.req("ValidationResult"), "Success");
    assert!(v.get("FailureReasonCode").is_none());
    e.declines(&ba, true).await;
    let v = e.call(&seller, "ValidateBillingAgreement", &id).await;
    assert_eq!(v.req("ValidationResult"), "Failure");
    assert_eq!(v.req("FailureReasonCode"), "InvalidPaymentMethod");
    assert_eq!(v.req("BillingAgreementStatus/State"), "Suspended");
    assert_eq!(
        v.req("BillingAgreementStatus/ReasonCode"),
        "InvalidPaymentMethod"
    );
    // A good method again; Confirm reopens it.
    e.declines(&ba, false).await;
    assert_eq!(
        e.agreement_state(&seller, &ba)
            .await
            .req("BillingAgreementStatus/State"),
        "Suspended"
    );
    e.call(&seller, "ConfirmBillingAgreement", &id)
        .await
        .assert_ok("ConfirmBillingAgreement");
    assert_eq!(
        e.agreement_state(&seller, &ba)
            .await
            .req("BillingAgreementStatus/State"),
        "Open"
    );

    // Close: Closed/SellerClosed with the reason; then Authorize and Confirm are refused.
    e.call(
        &seller,
        "CloseBillingAgreement",
        &[
            ("AmazonBillingAgreementId", &ba),
            ("ClosureReason", "解約 *~"),
        ],
    )
    .await
    .assert_ok("CloseBillingAgreement");
    let a = e.agreement_state(&seller, &ba).await;
    assert_eq!(a.req("BillingAgreementStatus/State"), "Closed");
    assert_eq!(a.req("BillingAgreementStatus/ReasonCode"), "SellerClosed");
    assert_eq!(a.req("BillingAgreementStatus/ReasonDescription"), "解約 *~");
    let auth = e
        .call(
            &seller,
            "AuthorizeOnBillingAgreement",
            &[
                ("AmazonBillingAgreementId", &ba),
                ("AuthorizationReferenceId", "closed-1"),
                ("AuthorizationAmount.Amount", "100"),
                ("AuthorizationAmount.CurrencyCode", "JPY"),
            ],
        )
        .await;
    auth.assert_error(405, "InvalidBillingAgreementStatus");
    e.call(&seller, "ConfirmBillingAgreement", &id)
        .await
        .assert_error(405, "InvalidBillingAgreementStatus");
    e.call(&seller, "CloseBillingAgreement", &id)
        .await
        .assert_error(405, "InvalidBillingAgreementStatus");
    e.call(&seller, "ValidateBillingAgreement", &id)
        .await
        .assert_error(405, "InvalidBillingAgreementStatus");
}

#[tokio::test]
async fn unknown_and_foreign_ids_name_nothing() {
    let e = start().await;
    let seller = e.seller().await;
    let other = e.seller().await;
    let theirs = e.agreement(&other, true).await;
    for id in ["C03-0000000-0000000", theirs.as_str(), "../etc"] {
        for action in [
            "GetBillingAgreementDetails",
            "ConfirmBillingAgreement",
            "ValidateBillingAgreement",
            "CloseBillingAgreement",
        ] {
            e.call(&seller, action, &[("AmazonBillingAgreementId", id)])
                .await
                .assert_error(404, "InvalidBillingAgreementId");
        }
    }
    // The other seller's agreement is untouched.
    assert_eq!(
        e.agreement_state(&other, &theirs)
            .await
            .req("BillingAgreementStatus/State"),
        "Open"
    );
    for (action, param) in [
        ("GetAuthorizationDetails", "AmazonAuthorizationId"),
        ("GetCaptureDetails", "AmazonCaptureId"),
        ("GetRefundDetails", "AmazonRefundId"),
        ("CloseAuthorization", "AmazonAuthorizationId"),
    ] {
        e.call(&seller, action, &[(param, "S03-0000000-0000000-A000000")])
            .await
            .assert_error(404, "InvalidTransactionId");
    }
    e.call(
        &seller,
        "GetOrderReferenceDetails",
        &[("AmazonOrderReferenceId", "S03-0000000-0000000")],
    )
    .await
    .assert_error(404, "InvalidOrderReferenceId");
    e.call(&seller, "GetBillingAgreementDetails", &[])
        .await
        .assert_error(400, "MissingParameter");
}
