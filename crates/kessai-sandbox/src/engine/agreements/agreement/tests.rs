#![allow(clippy::unwrap_used)]
use super::*;
use BillingAgreementState as S;

const T0: Timestamp = 1_714_521_600; // 2024-05-01T00:00:00Z

fn draft() -> BillingAgreement {
    BillingAgreement::draft(
        BillingAgreementId::lookup("C03-1234567-1234567").unwrap(),
        SellerId::lookup("A1SELLER").unwrap(),
        Environment::Sandbox,
        Currency::Jpy,
        "buyer",
        Some("home".into()),
        Some(PaymentMethod::new("visa-1111", false)),
        T0 + 10,
    )
}

fn in_state(state: BillingAgreementState) -> BillingAgreement {
    let d = draft().with_consent(true, T0 + 20);
    match state {
        S::Draft => d,
        S::Open => d.plan_confirm(T0 + 30).unwrap(),
        S::Suspended => d.plan_confirm(T0 + 30).unwrap().suspended(None, T0 + 40),
        S::Closed => d.plan_close(Some("bye"), T0 + 30).unwrap(),
        S::Canceled => d.fall_due(T0 + 10 + DRAFT_LIFETIME).unwrap(),
    }
}

const ALL: [BillingAgreementState; 5] = [S::Draft, S::Open, S::Suspended, S::Canceled, S::Closed];

#[test]
fn confirm_in_every_state() {
    let no_consent = draft();
    assert_eq!(
        no_consent.plan_confirm(T0),
        Err(Refusal::BillingAgreementConstraints(vec![
            Constraint::BuyerConsentNotSet
        ]))
    );
    for s in ALL {
        let got = in_state(s).plan_confirm(T0 + 50).map(|b| b.state());
        let expected = match s {
            S::Draft | S::Open | S::Suspended => Ok(S::Open),
            S::Canceled | S::Closed => Err(Refusal::BillingAgreementStatus(s)),
        };
        assert_eq!(got, expected, "{s:?}");
    }
}

#[test]
fn set_validate_close_charge_in_every_state() {
    let attrs = AgreementAttributes {
        seller_note: Some("n".into()),
        ..Default::default()
    };
    for s in ALL {
        let ba = in_state(s);
        assert_eq!(
            ba.plan_set(&attrs, T0 + 50)
                .map(|b| b.attributes().seller_note.clone()),
            if s == S::Draft {
                Ok(Some("n".into()))
            } else {
                Err(Refusal::BillingAgreementNotModifiable(s))
            }
        );
        let validated = ba.plan_validate(T0 + 50).map(|(b, v)| (b.state(), v));
        match s {
            S::Open | S::Suspended => assert_eq!(validated, Ok((S::Open, Validation::Success))),
            _ => assert_eq!(validated, Err(Refusal::BillingAgreementStatus(s))),
        }
        let closed = ba.plan_close(Some("r"), T0 + 50);
        match s {
            S::Draft | S::Open | S::Suspended => {
                let c = closed.unwrap();
                assert_eq!(
                    (c.state(), c.reason()),
                    (S::Closed, Some(BillingAgreementReason::SellerClosed))
                );
                assert_eq!(c.reason_description(), Some("r"));
            }
            _ => assert_eq!(closed, Err(Refusal::BillingAgreementStatus(s))),
        }
        let charged = ba.plan_charge(Money::new(100, Currency::Jpy), T0 + 50);
        if s == S::Open {
            assert_eq!(charged, Ok(()));
        } else {
            assert_eq!(charged, Err(Refusal::BillingAgreementStatus(s)));
        }
    }
}

#[test]
fn a_declining_payment_method_fails_validation_and_suspends() {
    let open = in_state(S::Open).with_payment_method(PaymentMethod::new("x", true), T0 + 60);
    let (after, v) = open.plan_validate(T0 + 70).unwrap();
    assert_eq!(v, Validation::Failure);
    assert_eq!(after.state(), S::Suspended);
    assert_eq!(
        after.reason(),
        Some(BillingAgreementReason::InvalidPaymentMethod)
    );
    let fixed = after.with_payment_method(PaymentMethod::new("y", false), T0 + 80);
    assert_eq!(fixed.state(), S::Suspended);
    assert_eq!(fixed.plan_confirm(T0 + 90).unwrap().state(), S::Open);
}

#[test]
fn the_monthly_limit_is_consumed_released_and_renewed_on_the_first() {
    let open = in_state(S::Open);
    let jpy = |n| Money::new(n, Currency::Jpy);
    assert_eq!(open.remaining(T0 + 100), jpy(50_000));
    let used = open.consumed(jpy(30_000), T0 + 100);
    assert_eq!(used.remaining(T0 + 200), jpy(20_000));
    assert!(matches!(
        used.plan_charge(jpy(20_001), T0 + 200),
        Err(Refusal::PeriodicAmountExceeded { .. })
    ));
    assert_eq!(used.plan_charge(jpy(20_000), T0 + 200), Ok(()));
    assert_eq!(
        used.released(jpy(10_000), T0 + 100).remaining(T0 + 200),
        jpy(30_000)
    );
    let june = 1_717_200_000; // 2024-06-01T00:00:00Z
    assert_eq!(used.remaining(june - 1), jpy(20_000));
    assert_eq!(used.remaining(june), jpy(50_000));
    assert!(matches!(
        open.plan_charge(Money::new(100, Currency::Usd), T0),
        Err(Refusal::CurrencyMismatch { .. })
    ));
}

#[test]
fn an_unconfirmed_draft_goes_stale_after_three_hours() {
    let d = draft();
    assert_eq!(d.fall_due(T0 + 10 + DRAFT_LIFETIME - 1), None);
    let stale = d.fall_due(T0 + 10 + DRAFT_LIFETIME).unwrap();
    assert_eq!(
        (stale.state(), stale.reason()),
        (S::Canceled, Some(BillingAgreementReason::Stale))
    );
    assert_eq!(stale.due_at(), None);
    let reopening = in_state(S::Open).suspended(Some(T0 + 500), T0 + 100);
    assert_eq!(reopening.fall_due(T0 + 500).unwrap().state(), S::Open);
}
