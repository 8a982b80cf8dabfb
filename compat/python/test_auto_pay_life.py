"""The whole life of an Auto Pay billing agreement, driven by the official SDK."""

import unittest
from datetime import datetime, timezone
from decimal import Decimal

from support import (
    AUTH_ID,
    BA_ID,
    CAPTURE_ID,
    MONTHLY_LIMIT,
    REFUND_ID,
    about,
    TIMESTAMP,
    IpnInbox,
    MwsTestCase,
    advance_clock,
    client_for,
    emulator_clock,
    give_consent,
    new_agreement,
    new_seller,
    reference_id,
)

ADDRESS_BEFORE_CONFIRM = {"City", "StateOrRegion", "PostalCode", "CountryCode"}


class AutoPayLife(MwsTestCase):
    def test_draft_set_consent_confirm_validate(self):
        seller = new_seller()
        client = client_for(seller)
        agreement_id = new_agreement(seller)
        self.assertRegex(agreement_id, BA_ID)

        draft = self.agreement(client, agreement_id)
        self.assert_status(draft["BillingAgreementStatus"], "Draft")
        self.assertEqual(draft["ReleaseEnvironment"], "Sandbox")
        self.assertEqual(draft["Constraints"]["Constraint"]["ConstraintID"], "BuyerConsentNotSet")
        self.assertRegex(draft["CreationTimestamp"], TIMESTAMP)
        # Without an address consent token, a Draft agreement shows only part of the address.
        address = draft["Destination"]["PhysicalDestination"]
        self.assertEqual(address["CountryCode"], "JP")
        self.assertLessEqual(set(address), ADDRESS_BEFORE_CONFIRM, address)
        limits = draft["BillingAgreementLimits"]
        self.assert_jpy(limits["AmountLimitPerTimePeriod"], MONTHLY_LIMIT)
        self.assert_jpy(limits["CurrentRemainingBalance"], MONTHLY_LIMIT)
        now = datetime.fromtimestamp(emulator_clock()["unix"], tz=timezone.utc)
        self.assertEqual(limits["TimePeriodStartDate"][:10], now.strftime("%Y-%m-01"))
        self.assertRegex(limits["TimePeriodStartDate"], r"T00:00:00(\.0+)?Z$")
        self.assertRegex(limits["TimePeriodEndDate"], r"-01T00:00:00(\.0+)?Z$")

        subscription = reference_id("sub")
        result = self.ok(
            client.set_billing_agreement_details(
                amazon_billing_agreement_id=agreement_id,
                seller_note="毎月のコーヒー豆 (2 kg)",
                seller_billing_agreement_id=subscription,
                store_name="Kessai Coffee",
                custom_information="plan=monthly",
            ),
            "SetBillingAgreementDetails",
        )
        details = result["BillingAgreementDetails"]
        self.assertEqual(details["AmazonBillingAgreementId"], agreement_id)
        self.assert_status(details["BillingAgreementStatus"], "Draft")
        self.assertEqual(details["SellerNote"], "毎月のコーヒー豆 (2 kg)")
        attributes = details["SellerBillingAgreementAttributes"]
        self.assertEqual(attributes["SellerBillingAgreementId"], subscription)
        self.assertEqual(attributes["StoreName"], "Kessai Coffee")
        self.assertEqual(attributes["CustomInformation"], "plan=monthly")

        give_consent(agreement_id)
        consented = self.agreement(client, agreement_id)
        self.assert_status(consented["BillingAgreementStatus"], "Draft")
        self.assertIsNone(consented.get("Constraints"), consented)
        self.assertEqual(consented["BillingAgreementConsent"], "true")

        self.assertIsNone(
            self.ok(
                client.confirm_billing_agreement(amazon_billing_agreement_id=agreement_id),
                "ConfirmBillingAgreement",
            )
        )
        confirmed = self.agreement(client, agreement_id)
        self.assert_status(confirmed["BillingAgreementStatus"], "Open")
        self.assertEqual(confirmed["SellerNote"], "毎月のコーヒー豆 (2 kg)")
        self.assertIn("AddressLine1", confirmed["Destination"]["PhysicalDestination"])
        self.assertTrue(confirmed["Buyer"]["Name"], confirmed)
        self.assertTrue(confirmed["Buyer"]["Email"], confirmed)

        validation = self.ok(
            client.validate_billing_agreement(amazon_billing_agreement_id=agreement_id),
            "ValidateBillingAgreement",
        )
        self.assertEqual(validation["ValidationResult"], "Success")
        self.assertNotIn("FailureReasonCode", validation)
        self.assert_status(validation["BillingAgreementStatus"], "Open")

    def test_charges_captures_refunds_and_close(self):
        inbox = IpnInbox()
        seller = new_seller(inbox.url)
        client = client_for(seller)
        agreement_id = self.open_agreement(client, seller)

        # First charge: synchronous, captured at once.
        first = self.authorized(client, agreement_id, 1000, sync=True, capture_now=True)
        self.assert_status(first["AuthorizationStatus"], "Closed", "MaxCapturesProcessed")
        self.assert_jpy(first["AuthorizationAmount"], 1000)
        self.assert_jpy(first["CapturedAmount"], 1000)
        self.assertEqual(first["CaptureNow"], "true")
        self.assertRegex(first["CreationTimestamp"], TIMESTAMP)
        self.assertRegex(first["ExpirationTimestamp"], TIMESTAMP)
        [first_capture] = self.members(first["IdList"])
        self.assertEqual(CAPTURE_ID.match(first_capture).group(1), first["_oro"])
        capture = self.capture_details(client, first_capture)
        self.assert_status(capture["CaptureStatus"], "Completed")
        self.assert_jpy(capture["CaptureAmount"], 1000)
        self.assert_jpy(capture["RefundedAmount"], 0)
        self.assertEqual(self.remaining(client, agreement_id), MONTHLY_LIMIT - 1000)

        # Second charge: asynchronous, Pending until the emulator's clock moves 30 s on.
        second = self.authorized(client, agreement_id, 2000, sync=False)
        self.assertNotEqual(second["_oro"], first["_oro"])
        self.assert_status(second["AuthorizationStatus"], "Pending")
        self.assertEqual(second["CaptureNow"], "false")
        self.assert_jpy(second["CapturedAmount"], 0)
        auth_id = second["AmazonAuthorizationId"]
        self.assert_status(self.authorization(client, auth_id)["AuthorizationStatus"], "Pending")
        advance_clock(31)
        opened = self.authorization(client, auth_id)
        self.assert_status(opened["AuthorizationStatus"], "Open")
        self.assert_jpy(opened["AuthorizationAmount"], 2000)
        handler, _, _ = inbox.wait_for(about("Authorization", auth_id, "Open"))
        self.assertTrue(handler.authenticate())
        self.assertEqual(handler.message()["NotificationType"], "PaymentAuthorize")
        self.assertEqual(self.remaining(client, agreement_id), MONTHLY_LIMIT - 3000)

        capture_ref = reference_id("cap")
        result = self.ok(
            client.capture(
                amazon_authorization_id=auth_id,
                capture_reference_id=capture_ref,
                capture_amount="2000",
                seller_capture_note="2 月分",
            ),
            "Capture",
        )
        captured = result["CaptureDetails"]
        capture_id = captured["AmazonCaptureId"]
        self.assertEqual(CAPTURE_ID.match(capture_id).group(1), second["_oro"])
        self.assertEqual(captured["CaptureReferenceId"], capture_ref)
        self.assert_status(captured["CaptureStatus"], "Completed")
        self.assert_jpy(captured["CaptureAmount"], 2000)
        closed_auth = self.authorization(client, auth_id)
        self.assert_status(closed_auth["AuthorizationStatus"], "Closed", "MaxCapturesProcessed")
        self.assert_jpy(closed_auth["CapturedAmount"], 2000)
        self.assertEqual(self.members(closed_auth["IdList"]), [capture_id])

        # Two partial refunds: Pending in the answer, Completed 30 s later.
        refund_ids = []
        for amount in (500, 700):
            ref = reference_id("ref")
            refund = self.ok(
                client.refund(
                    amazon_capture_id=capture_id,
                    refund_reference_id=ref,
                    refund_amount=str(amount),
                    seller_refund_note="一部返金",
                ),
                "Refund",
            )["RefundDetails"]
            self.assertEqual(REFUND_ID.match(refund["AmazonRefundId"]).group(1), second["_oro"])
            self.assertEqual(refund["RefundReferenceId"], ref)
            self.assertEqual(refund["RefundType"], "SellerInitiated")
            self.assert_status(refund["RefundStatus"], "Pending")
            self.assert_jpy(refund["RefundAmount"], amount)
            refund_ids.append(refund["AmazonRefundId"])
        self.assertEqual(len(set(refund_ids)), 2)
        self.assert_status(
            self.refund_details(client, refund_ids[0])["RefundStatus"], "Pending"
        )
        advance_clock(31)
        for refund_id, amount in zip(refund_ids, (500, 700)):
            done = self.refund_details(client, refund_id)
            self.assert_status(done["RefundStatus"], "Completed")
            self.assert_jpy(done["RefundAmount"], amount)
        refunded = self.capture_details(client, capture_id)
        self.assert_status(refunded["CaptureStatus"], "Completed")
        self.assert_jpy(refunded["CaptureAmount"], 2000)
        self.assert_jpy(refunded["RefundedAmount"], 1200)
        self.assertEqual(sorted(self.members(refunded["IdList"])), sorted(refund_ids))

        # The seller closes the agreement: no more authorizations.
        self.assertIsNone(
            self.ok(
                client.close_billing_agreement(
                    amazon_billing_agreement_id=agreement_id, closure_reason="解約のため"
                ),
                "CloseBillingAgreement",
            )
        )
        closed = self.agreement(client, agreement_id)
        self.assert_status(closed["BillingAgreementStatus"], "Closed", "SellerClosed")
        self.assertEqual(closed["BillingAgreementStatus"]["ReasonDescription"], "解約のため")
        self.fails(
            self.authorize(client, agreement_id, 100, sync=True),
            405,
            "InvalidBillingAgreementStatus",
        )
        self.fails(
            self.authorize(client, agreement_id, 100, sync=False),
            405,
            "InvalidBillingAgreementStatus",
        )
        self.assertEqual(self.remaining(client, agreement_id), MONTHLY_LIMIT - 3000)

    def test_close_authorization_releases_nothing_captured(self):
        seller = new_seller()
        client = client_for(seller)
        agreement_id = self.open_agreement(client, seller)
        auth = self.authorized(client, agreement_id, 1500, sync=True)
        self.assert_status(auth["AuthorizationStatus"], "Open")
        self.assertEqual(auth["CaptureNow"], "false")
        self.assertIsNone(
            self.ok(
                client.close_authorization(
                    amazon_authorization_id=auth["AmazonAuthorizationId"],
                    closure_reason="品切れ",
                ),
                "CloseAuthorization",
            )
        )
        closed = self.authorization(client, auth["AmazonAuthorizationId"])
        self.assert_status(closed["AuthorizationStatus"], "Closed", "SellerClosed")
        self.assert_jpy(closed["CapturedAmount"], 0)
        self.fails(
            client.capture(
                amazon_authorization_id=auth["AmazonAuthorizationId"],
                capture_reference_id=reference_id("cap"),
                capture_amount="1500",
            ),
            405,
            "InvalidAuthorizationStatus",
        )


class ChargeConvenience(MwsTestCase):
    """AmazonPayClient.charge() on a C… id: Get, then Set + Confirm on a Draft, then a
    synchronous AuthorizeOnBillingAgreement with CaptureNow."""

    def test_charge_sets_confirms_and_captures_a_draft_agreement(self):
        seller = new_seller()
        client = client_for(seller)
        agreement_id = new_agreement(seller)
        give_consent(agreement_id)
        order_id = reference_id("order")
        response = client.charge(
            amazon_reference_id=agreement_id,
            charge_amount="3000",
            authorize_reference_id=reference_id("charge"),
            charge_note="初回のお届け",
            charge_order_id=order_id,
            store_name="Kessai Coffee",
        )
        result = self.ok(response, "AuthorizeOnBillingAgreement")
        details = result["AuthorizationDetails"]
        self.assertRegex(details["AmazonAuthorizationId"], AUTH_ID)
        self.assert_status(details["AuthorizationStatus"], "Closed", "MaxCapturesProcessed")
        self.assert_jpy(details["CapturedAmount"], 3000)
        [capture_id] = self.members(details["IdList"])
        self.assert_status(self.capture_details(client, capture_id)["CaptureStatus"], "Completed")

        agreement = self.agreement(client, agreement_id)
        self.assert_status(agreement["BillingAgreementStatus"], "Open")
        self.assertEqual(
            agreement["SellerBillingAgreementAttributes"]["SellerBillingAgreementId"], order_id
        )
        self.assertEqual(self.remaining(client, agreement_id), MONTHLY_LIMIT - 3000)

        # On an Open agreement charge() goes straight to the authorization.
        again = self.ok(
            client.charge(
                amazon_reference_id=agreement_id,
                charge_amount="2500",
                authorize_reference_id=reference_id("charge"),
                charge_note="2 回目",
            ),
            "AuthorizeOnBillingAgreement",
        )["AuthorizationDetails"]
        self.assert_status(again["AuthorizationStatus"], "Closed", "MaxCapturesProcessed")
        self.assertEqual(self.remaining(client, agreement_id), Decimal(MONTHLY_LIMIT - 5500))

    def test_charge_without_consent_stops_at_confirm(self):
        seller = new_seller()
        client = client_for(seller)
        agreement_id = new_agreement(seller)
        response = client.charge(
            amazon_reference_id=agreement_id,
            charge_amount="3000",
            authorize_reference_id=reference_id("charge"),
            charge_note="初回",
        )
        error = self.fails(response, 400, "BillingAgreementConstraintsExist")
        self.assertIn("BuyerConsentNotSet", error["Message"])
        self.assert_status(self.agreement(client, agreement_id)["BillingAgreementStatus"], "Draft")


if __name__ == "__main__":
    unittest.main()
