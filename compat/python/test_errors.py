"""Every documented error the SDK can reach: Amazon's ErrorResponse XML with the HTTP status,
Type and Code of the reference, and nothing changed by the refused call."""

import unittest

from support import (
    MONTHLY_LIMIT,
    MwsTestCase,
    client_for,
    give_consent,
    last_content_type,
    new_agreement,
    new_seller,
    reference_id,
)


class Errors(MwsTestCase):
    @classmethod
    def setUpClass(cls):
        cls.seller = new_seller()
        cls.client = client_for(cls.seller)

    def open_with_capture(self, amount):
        """An Open agreement with one Open authorization of `amount` captured in full."""
        agreement_id = self.open_agreement(self.client, self.seller)
        auth = self.authorized(self.client, agreement_id, amount, sync=True)
        capture = self.ok(
            self.client.capture(
                amazon_authorization_id=auth["AmazonAuthorizationId"],
                capture_reference_id=reference_id("cap"),
                capture_amount=str(amount),
            ),
            "Capture",
        )["CaptureDetails"]
        return agreement_id, auth, capture

    def test_wrong_secret_is_signature_does_not_match(self):
        agreement_id = new_agreement(self.seller)
        wrong = client_for(self.seller, secret=self.seller["secretKey"] + "x")
        response = wrong.set_billing_agreement_details(
            amazon_billing_agreement_id=agreement_id, seller_note="should not be stored"
        )
        self.fails(response, 403, "SignatureDoesNotMatch")
        self.assertEqual(last_content_type().split(";")[0].strip(), "text/xml")
        self.assertNotIn("SellerNote", self.agreement(self.client, agreement_id))

        open_id = self.open_agreement(self.client, self.seller)
        self.fails(
            self.authorize(wrong, open_id, 1000, sync=True), 403, "SignatureDoesNotMatch"
        )
        self.assertEqual(self.remaining(self.client, open_id), MONTHLY_LIMIT)

    def test_another_sellers_secret_is_signature_does_not_match(self):
        other = new_seller()
        agreement_id = new_agreement(self.seller)
        mixed = client_for(self.seller, secret=other["secretKey"])
        self.fails(
            mixed.get_billing_agreement_details(amazon_billing_agreement_id=agreement_id),
            403,
            "SignatureDoesNotMatch",
        )

    def test_unknown_agreement_id(self):
        for call in (
            lambda c, i: c.get_billing_agreement_details(amazon_billing_agreement_id=i),
            lambda c, i: c.confirm_billing_agreement(amazon_billing_agreement_id=i),
            lambda c, i: c.validate_billing_agreement(amazon_billing_agreement_id=i),
            lambda c, i: c.close_billing_agreement(amazon_billing_agreement_id=i),
            lambda c, i: self.authorize(c, i, 1000),
        ):
            self.fails(call(self.client, "C03-0000000-0000000"), 404, "InvalidBillingAgreementId")

    def test_another_sellers_agreement_is_unknown(self):
        other = new_seller()
        theirs = self.open_agreement(client_for(other), other)
        self.fails(
            self.client.get_billing_agreement_details(amazon_billing_agreement_id=theirs),
            404,
            "InvalidBillingAgreementId",
        )
        self.fails(self.authorize(self.client, theirs, 1000), 404, "InvalidBillingAgreementId")
        self.fails(
            self.client.close_billing_agreement(amazon_billing_agreement_id=theirs),
            404,
            "InvalidBillingAgreementId",
        )
        self.assert_status(
            self.agreement(client_for(other), theirs)["BillingAgreementStatus"], "Open"
        )

    def test_unknown_authorization_capture_and_refund_ids(self):
        oro = "S03-0000000-0000000"
        self.fails(
            self.client.get_authorization_details(amazon_authorization_id=oro + "-A000001"),
            404,
            "InvalidTransactionId",
        )
        self.fails(
            self.client.capture(
                amazon_authorization_id=oro + "-A000001",
                capture_reference_id=reference_id("cap"),
                capture_amount="100",
            ),
            404,
            "InvalidTransactionId",
        )
        self.fails(
            self.client.get_capture_details(amazon_capture_id=oro + "-C000001"),
            404,
            "InvalidTransactionId",
        )
        self.fails(
            self.client.refund(
                amazon_capture_id=oro + "-C000001",
                refund_reference_id=reference_id("ref"),
                refund_amount="100",
            ),
            404,
            "InvalidTransactionId",
        )
        self.fails(
            self.client.get_refund_details(amazon_refund_id=oro + "-R000001"),
            404,
            "InvalidTransactionId",
        )

    def test_confirm_before_consent(self):
        agreement_id = new_agreement(self.seller)
        error = self.fails(
            self.client.confirm_billing_agreement(amazon_billing_agreement_id=agreement_id),
            400,
            "BillingAgreementConstraintsExist",
        )
        self.assertIn("BuyerConsentNotSet", error["Message"])
        self.assert_status(
            self.agreement(self.client, agreement_id)["BillingAgreementStatus"], "Draft"
        )
        # Consent refused is no better than no consent.
        give_consent(agreement_id, False)
        self.fails(
            self.client.confirm_billing_agreement(amazon_billing_agreement_id=agreement_id),
            400,
            "BillingAgreementConstraintsExist",
        )
        draft = self.agreement(self.client, agreement_id)
        self.assert_status(draft["BillingAgreementStatus"], "Draft")
        self.assertEqual(draft["Constraints"]["Constraint"]["ConstraintID"], "BuyerConsentNotSet")

    def test_set_on_a_confirmed_agreement(self):
        agreement_id = self.open_agreement(self.client, self.seller)
        self.fails(
            self.client.set_billing_agreement_details(
                amazon_billing_agreement_id=agreement_id, seller_note="changed"
            ),
            405,
            "BillingAgreementNotModifiable",
        )
        self.assertEqual(
            self.agreement(self.client, agreement_id)["SellerNote"], "Monthly coffee beans"
        )

    def test_authorize_on_a_draft_agreement(self):
        agreement_id = new_agreement(self.seller)
        give_consent(agreement_id)
        for sync in (True, False):
            self.fails(
                self.authorize(self.client, agreement_id, 1000, sync=sync),
                405,
                "InvalidBillingAgreementStatus",
            )
        self.assertEqual(self.remaining(self.client, agreement_id), MONTHLY_LIMIT)

    def test_capture_above_the_authorization(self):
        agreement_id = self.open_agreement(self.client, self.seller)
        auth = self.authorized(self.client, agreement_id, 1000, sync=True)
        self.fails(
            self.client.capture(
                amazon_authorization_id=auth["AmazonAuthorizationId"],
                capture_reference_id=reference_id("cap"),
                capture_amount="1001",
            ),
            400,
            "TransactionAmountExceeded",
        )
        still = self.authorization(self.client, auth["AmazonAuthorizationId"])
        self.assert_status(still["AuthorizationStatus"], "Open")
        self.assert_jpy(still["CapturedAmount"], 0)
        self.assertEqual(self.members(still.get("IdList")), [])

    def test_refund_above_the_capture(self):
        _, _, capture = self.open_with_capture(1000)
        capture_id = capture["AmazonCaptureId"]
        self.fails(
            self.client.refund(
                amazon_capture_id=capture_id,
                refund_reference_id=reference_id("ref"),
                refund_amount="1001",
            ),
            400,
            "TransactionAmountExceeded",
        )
        self.ok(
            self.client.refund(
                amazon_capture_id=capture_id,
                refund_reference_id=reference_id("ref"),
                refund_amount="600",
            ),
            "Refund",
        )
        # 600 pending + 401 would pass the captured 1000.
        self.fails(
            self.client.refund(
                amazon_capture_id=capture_id,
                refund_reference_id=reference_id("ref"),
                refund_amount="401",
            ),
            400,
            "TransactionAmountExceeded",
        )
        after = self.capture_details(self.client, capture_id)
        self.assertEqual(len(self.members(after.get("IdList"))), 1)

    def test_reused_reference_id(self):
        agreement_id = self.open_agreement(self.client, self.seller)
        ref = reference_id("auth")
        first = self.authorized(self.client, agreement_id, 1000, sync=True, reference=ref)
        # The same reference id with the same parameters answers the original authorization.
        again = self.authorized(self.client, agreement_id, 1000, sync=True, reference=ref)
        self.assertEqual(again["AmazonAuthorizationId"], first["AmazonAuthorizationId"])
        self.assertEqual(self.remaining(self.client, agreement_id), MONTHLY_LIMIT - 1000)
        # With other parameters it is refused.
        self.fails(
            self.authorize(self.client, agreement_id, 2000, sync=True, reference=ref),
            400,
            "DuplicateRequest",
        )
        self.assertEqual(self.remaining(self.client, agreement_id), MONTHLY_LIMIT - 1000)
        # An authorization's reference id cannot name a capture.
        self.fails(
            self.client.capture(
                amazon_authorization_id=first["AmazonAuthorizationId"],
                capture_reference_id=ref,
                capture_amount="1000",
            ),
            400,
            "DuplicateReferenceId",
        )
        self.assert_jpy(
            self.authorization(self.client, first["AmazonAuthorizationId"])["CapturedAmount"], 0
        )

    def test_usd_on_a_jp_seller(self):
        agreement_id = self.open_agreement(self.client, self.seller)
        usd = client_for(self.seller, currency="USD")
        self.fails(self.authorize(usd, agreement_id, 10, sync=True), 400, "CurrencyMismatch")
        self.assertEqual(self.remaining(self.client, agreement_id), MONTHLY_LIMIT)

    def test_three_decimals(self):
        agreement_id = self.open_agreement(self.client, self.seller)
        self.fails(
            self.authorize(self.client, agreement_id, "1000.123", sync=True),
            400,
            "InvalidParameterValue",
        )
        self.assertEqual(self.remaining(self.client, agreement_id), MONTHLY_LIMIT)
        auth = self.authorized(self.client, agreement_id, 1000, sync=True)
        self.fails(
            self.client.capture(
                amazon_authorization_id=auth["AmazonAuthorizationId"],
                capture_reference_id=reference_id("cap"),
                capture_amount="999.999",
            ),
            400,
            "InvalidParameterValue",
        )


if __name__ == "__main__":
    unittest.main()
