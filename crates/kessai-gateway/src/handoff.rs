//! How the buyer is handed to Amazon Pay: the page of an Authorize's `responseContents`.
//!
//! The page loads `checkout.js` (Amazon's for the region, or the emulator's double) and renders
//! the Amazon Pay button with a `createCheckoutSessionConfig` whose `payloadJSON` is the order's
//! Create Checkout Session request, serialised once and signed with the merchant's Amazon Pay key
//! (`AMZN-PAY-RSASSA-PSS-V2` over that exact string). Amazon creates the checkout session when the
//! buyer presses the button and returns the buyer to the order's review URL with
//! `amazonCheckoutSessionId`, where [`crate::buyer`] binds the session to the order after checking
//! that it is the one the payload described. Nothing is sent to Amazon before the buyer acts, so
//! Authorize records the order and calls no one.
//!
//! With the emulator, the page also carries a form that posts the same signed payload to the
//! emulator's no-script entry, so it works with script off; Amazon's hosts have no such entry.

use kessai_amazonpay::wire::{
    ChargePermissionType, CheckoutSession, CheckoutSessionState, PaymentIntent, RecurringMetadata,
};
use kessai_amazonpay::SignedPayload;
use kessai_core::{Money, Yen};
use serde::Serialize;

/// Where and how buyers of one Amazon Pay are handed over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandOff {
    /// `checkout.js`: Amazon's for the region, or an emulator's `/checkout.js`.
    pub script_url: String,
    /// The merchant id of Seller Central (`merchantId` of the button).
    pub merchant_id: String,
    /// The button's `sandbox` option.
    pub sandbox: bool,
    /// The emulator's no-script entry (`…/checkout/start`) that takes the same signed payload as
    /// a form post; `None` for Amazon's hosts.
    pub no_script_action: Option<String>,
}

impl HandOff {
    /// The hand-off to an emulator at `base` (a Kessai sandbox): its `checkout.js` double and its
    /// no-script entry.
    pub fn emulator(base: &str, merchant_id: &str) -> HandOff {
        let base = base.trim_end_matches('/');
        HandOff {
            script_url: format!("{base}/checkout.js"),
            merchant_id: merchant_id.to_owned(),
            sandbox: true,
            no_script_action: Some(format!("{base}/checkout/start")),
        }
    }

    /// The hand-off to Amazon's own pages: the region's `checkout.js`.
    pub fn amazon(script_url: &str, merchant_id: &str, sandbox: bool) -> HandOff {
        HandOff {
            script_url: script_url.to_owned(),
            merchant_id: merchant_id.to_owned(),
            sandbox,
            no_script_action: None,
        }
    }

    /// Where the gateway's own pages may send a buyer's form (CSP `form-action`): the emulator's
    /// origin, or any HTTPS origin for Amazon, whose `amazonPayRedirectUrl` names a host of
    /// Amazon's choosing per answer.
    pub fn form_target(&self) -> String {
        match &self.no_script_action {
            Some(entry) => entry.clone(),
            None => kessai_http::ANY_HTTPS.to_owned(),
        }
    }

    /// The button options for `payload`: what the page passes to `amazon.Pay.renderButton`.
    pub fn button<'a>(
        &'a self,
        payload: &'a SignedPayload,
        amount: Yen,
        product: ProductType,
    ) -> ButtonOptions<'a> {
        ButtonOptions {
            merchant_id: &self.merchant_id,
            ledger_currency: "JPY",
            checkout_language: "ja_JP",
            product_type: product.as_str(),
            placement: "Checkout",
            button_color: "Gold",
            sandbox: self.sandbox,
            estimated_order_amount: Estimated {
                amount: amount.get().to_string(),
                currency_code: "JPY",
            },
            create_checkout_session_config: SessionConfig {
                payload_json: &payload.payload_json,
                signature: &payload.signature,
                public_key_id: &payload.public_key_id,
                algorithm: payload.algorithm.name(),
            },
        }
    }

    /// The page of `responseContents`.
    pub fn page(
        &self,
        templates: &minijinja::Environment<'static>,
        payload: &SignedPayload,
        amount: Yen,
        product: ProductType,
    ) -> Result<String, minijinja::Error> {
        templates
            .get_template("handoff.html")?
            .render(minijinja::context! {
                script_url => self.script_url,
                no_script_action => self.no_script_action,
                amount => crate::util::yen_text(amount.get()),
                button => self.button(payload, amount, product),
            })
    }
}

/// The review URL of the order with buyer reference `public_ref`: `checkoutReviewReturnUrl` of
/// its payload, where Amazon returns the buyer with `amazonCheckoutSessionId`.
pub fn review_url(base_url: &str, public_ref: &str) -> String {
    format!("{base_url}/amazonpay/review/{public_ref}")
}

/// What the order's payload said, to hold a checkout session against before it is bound.
#[derive(Debug, Clone)]
pub struct Expected<'a> {
    pub store_id: &'a str,
    pub review_url: &'a str,
    pub order_id: &'a str,
    pub amount: Money,
    pub intent: PaymentIntent,
    /// Recurring: the consent's amount and frequency.
    pub recurring: Option<RecurringMetadata>,
}

/// Checks that `cs`, as Amazon reports it, is the session the order's signed payload created:
/// this store, this order's review URL and reference, this amount, kind and intent, and still
/// open. A session made from another order's payload (another amount, store or order) is
/// refused; the message says which part differs.
pub fn check_session(cs: &CheckoutSession, want: &Expected<'_>) -> Result<(), String> {
    if cs.store_id.as_deref() != Some(want.store_id) {
        return Err(format!(
            "belongs to another store ({}), not this merchant's.",
            cs.store_id.as_deref().unwrap_or("none")
        ));
    }
    if cs
        .web_checkout_details
        .checkout_review_return_url
        .as_deref()
        != Some(want.review_url)
    {
        return Err("was made for another order's payment link.".into());
    }
    if cs.merchant_metadata.merchant_reference_id.as_deref() != Some(want.order_id) {
        return Err(format!(
            "was made for another order ({}).",
            cs.merchant_metadata
                .merchant_reference_id
                .as_deref()
                .unwrap_or("none")
        ));
    }
    let amount = cs
        .payment_details
        .charge_amount
        .as_ref()
        .and_then(|p| p.to_money().ok());
    if amount != Some(want.amount) {
        return Err(format!(
            "has another amount ({}) than the order ({}).",
            cs.payment_details.charge_amount.as_ref().map_or_else(
                || "none".to_owned(),
                |p| format!("{} {}", p.amount, p.currency_code)
            ),
            want.amount.to_decimal_string()
        ));
    }
    if cs.payment_details.payment_intent.as_ref() != Some(&want.intent) {
        return Err("asks Amazon Pay for another kind of payment than the order.".into());
    }
    let recurring = cs.charge_permission_type == Some(ChargePermissionType::Recurring);
    if recurring != want.recurring.is_some() {
        return Err("is of another kind (one-time or recurring) than the order.".into());
    }
    if let Some(consent) = &want.recurring {
        let same = cs.recurring_metadata.as_ref().is_some_and(|m| {
            m.frequency == consent.frequency
                && m.amount.as_ref().and_then(|p| p.to_money().ok())
                    == consent.amount.as_ref().and_then(|p| p.to_money().ok())
        });
        if !same {
            return Err("asks for another recurring amount or frequency than the order.".into());
        }
    }
    if cs.status_details.state != CheckoutSessionState::Open {
        return Err(format!(
            "is no longer open at Amazon Pay ({}).",
            cs.status_details.state.as_str()
        ));
    }
    Ok(())
}

/// The button's `productType`: with a shipping address, or payment only
/// (`suppressShippingAddressView`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProductType {
    PayAndShip,
    PayOnly,
}

impl ProductType {
    pub fn as_str(self) -> &'static str {
        match self {
            ProductType::PayAndShip => "PayAndShip",
            ProductType::PayOnly => "PayOnly",
        }
    }
}

/// The options of `amazon.Pay.renderButton`, as the page hands them to the script.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ButtonOptions<'a> {
    merchant_id: &'a str,
    ledger_currency: &'static str,
    checkout_language: &'static str,
    product_type: &'static str,
    placement: &'static str,
    button_color: &'static str,
    sandbox: bool,
    estimated_order_amount: Estimated,
    create_checkout_session_config: SessionConfig<'a>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Estimated {
    amount: String,
    currency_code: &'static str,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct SessionConfig<'a> {
    #[serde(rename = "payloadJSON")]
    payload_json: &'a str,
    signature: &'a str,
    public_key_id: &'a str,
    algorithm: &'static str,
}

#[cfg(test)]
mod tests {
    use super::*;
    use kessai_amazonpay::PrivateKey;

    fn page_for(hand_off: &HandOff, payload: &str) -> (String, SignedPayload) {
        let key = PrivateKey::generate().unwrap();
        let signed = SignedPayload::sign(&key, "SANDBOX-K1", payload.to_owned()).unwrap();
        let html = hand_off
            .page(
                &crate::buyer::templates(),
                &signed,
                Yen::new(1200),
                ProductType::PayOnly,
            )
            .unwrap();
        (html, signed)
    }

    /// The script's options as the page's JSON block carries them.
    fn options_of(html: &str) -> serde_json::Value {
        let doc = scraper::Html::parse_document(html);
        let sel = scraper::Selector::parse("script#kessai-amazonpay-button").unwrap();
        let text: String = doc.select(&sel).next().unwrap().text().collect();
        serde_json::from_str(&text).unwrap()
    }

    fn script_src(html: &str) -> String {
        let doc = scraper::Html::parse_document(html);
        let sel = scraper::Selector::parse("script[src]").unwrap();
        let src = doc.select(&sel).next().unwrap().value().attr("src");
        src.unwrap().to_owned()
    }

    #[test]
    fn the_page_hands_the_script_the_exact_string_signed() {
        // Characters that HTML and script blocks treat specially survive unchanged.
        let payload = r#"{"merchantMetadata":{"noteToBuyer":"</script><b>&'\"x"}}"#;
        let hand_off = HandOff::amazon(
            "https://static-fe.payments-amazon.com/checkout.js",
            "A1MERCHANT",
            false,
        );
        let (html, signed) = page_for(&hand_off, payload);
        assert!(!html.contains("</script><b>"), "{html}");
        let options = options_of(&html);
        let config = &options["createCheckoutSessionConfig"];
        assert_eq!(config["payloadJSON"], payload);
        assert_eq!(config["signature"], signed.signature.as_str());
        assert_eq!(config["publicKeyId"], "SANDBOX-K1");
        assert_eq!(config["algorithm"], "AMZN-PAY-RSASSA-PSS-V2");
        assert_eq!(options["merchantId"], "A1MERCHANT");
        assert_eq!(options["productType"], "PayOnly");
        assert_eq!(options["sandbox"], false);
        assert_eq!(options["estimatedOrderAmount"]["amount"], "1200");
        assert_eq!(
            script_src(&html),
            "https://static-fe.payments-amazon.com/checkout.js"
        );
        // Amazon has no no-script entry: no form.
        assert!(!html.contains("<form"));
    }

    fn session(json: serde_json::Value) -> CheckoutSession {
        let mut base = serde_json::json!({
            "checkoutSessionId": "cs-1",
            "webCheckoutDetails": {"checkoutReviewReturnUrl": "https://gw.example/amazonpay/review/R1"},
            "paymentDetails": {"paymentIntent": "Authorize", "chargeAmount": {"amount": "1000", "currencyCode": "JPY"}},
            "chargePermissionType": "OneTime",
            "merchantMetadata": {"merchantReferenceId": "order-1"},
            "statusDetails": {"state": "Open"},
            "storeId": "store-1"
        });
        let patch = json.as_object().unwrap();
        for (k, v) in patch {
            base[k] = v.clone();
        }
        serde_json::from_value(base).unwrap()
    }

    fn expected(recurring: Option<RecurringMetadata>) -> Expected<'static> {
        Expected {
            store_id: "store-1",
            review_url: "https://gw.example/amazonpay/review/R1",
            order_id: "order-1",
            amount: Money::jpy(Yen::new(1000)),
            intent: PaymentIntent::Authorize,
            recurring,
        }
    }

    #[test]
    fn only_the_session_the_payload_described_is_accepted() {
        use serde_json::json;
        assert_eq!(check_session(&session(json!({})), &expected(None)), Ok(()));
        for (patch, says) in [
            (json!({"storeId": "store-2"}), "another store"),
            (json!({"storeId": null}), "another store"),
            (
                json!({"webCheckoutDetails": {"checkoutReviewReturnUrl": "https://gw.example/amazonpay/review/R2"}}),
                "another order's payment link",
            ),
            (
                json!({"merchantMetadata": {"merchantReferenceId": "order-2"}}),
                "another order (order-2)",
            ),
            (
                json!({"paymentDetails": {"paymentIntent": "Authorize", "chargeAmount": {"amount": "1", "currencyCode": "JPY"}}}),
                "another amount",
            ),
            (
                json!({"paymentDetails": {"paymentIntent": "Authorize", "chargeAmount": {"amount": "1000", "currencyCode": "USD"}}}),
                "another amount",
            ),
            (
                json!({"paymentDetails": {"paymentIntent": "Authorize"}}),
                "another amount",
            ),
            (
                json!({"paymentDetails": {"paymentIntent": "AuthorizeWithCapture", "chargeAmount": {"amount": "1000", "currencyCode": "JPY"}}}),
                "another kind of payment",
            ),
            (
                json!({"chargePermissionType": "Recurring"}),
                "one-time or recurring",
            ),
            (
                json!({"statusDetails": {"state": "Canceled"}}),
                "no longer open",
            ),
        ] {
            let got = check_session(&session(patch.clone()), &expected(None));
            assert!(
                got.as_ref().is_err_and(|why| why.contains(says)),
                "{patch}: {got:?}"
            );
        }
    }

    #[test]
    fn a_recurring_session_must_ask_for_the_consent_of_the_order() {
        use serde_json::json;
        let consent = RecurringMetadata {
            frequency: Some(kessai_amazonpay::wire::Frequency {
                unit: "Month".into(),
                value: "1".into(),
            }),
            amount: Some(kessai_amazonpay::wire::Price {
                amount: "1000".into(),
                currency_code: "JPY".into(),
            }),
        };
        let recurring = |frequency: &str, amount: &str| {
            session(json!({
                "chargePermissionType": "Recurring",
                "recurringMetadata": {"frequency": {"unit": frequency, "value": "1"}, "amount": {"amount": amount, "currencyCode": "JPY"}}
            }))
        };
        let want = expected(Some(consent));
        assert_eq!(check_session(&recurring("Month", "1000"), &want), Ok(()));
        for s in [
            recurring("Week", "1000"),
            recurring("Month", "999"),
            session(json!({})),
        ] {
            assert!(check_session(&s, &want).is_err());
        }
    }

    #[test]
    fn with_the_emulator_a_form_posts_the_same_payload() {
        let payload = r#"{"storeId":"s","note":"a&b <c>"}"#;
        let hand_off = HandOff::emulator("http://127.0.0.1:9/", "M1");
        let (html, signed) = page_for(&hand_off, payload);
        let doc = scraper::Html::parse_document(&html);
        let form = doc
            .select(&scraper::Selector::parse("form").unwrap())
            .next()
            .unwrap();
        assert_eq!(
            form.value().attr("action"),
            Some("http://127.0.0.1:9/checkout/start")
        );
        let field = |name: &str| {
            let sel = scraper::Selector::parse(&format!("input[name={name}]")).unwrap();
            form.select(&sel)
                .next()
                .and_then(|i| i.value().attr("value"))
                .unwrap()
                .to_owned()
        };
        assert_eq!(field("payloadJSON"), payload);
        assert_eq!(field("signature"), signed.signature);
        assert_eq!(field("merchantId"), "M1");
        assert_eq!(script_src(&html), "http://127.0.0.1:9/checkout.js");
    }
}
