"""Declines: a payment method that fails (hard decline, the agreement Suspended), the sandbox
simulations of a soft decline and of AmazonRejected."""

import json
import unittest

from support import (
    MONTHLY_LIMIT,
    MwsTestCase,
    advance_clock,
    client_for,
    new_seller,
    pick_payment_method,
)


def simulation(**fields):
    return json.dumps({"SandboxSimulation": fields})


class HardDecline(MwsTestCase):
    def test_invalid_payment_method_suspends_until_confirmed_again(self):
        seller = new_seller()
        client = client_for(seller)
        agreement_id = self.open_agreement(client, seller)
        pick_payment_method(agreement_id, declines=True)

        declined = self.authorized(client, agreement_id, 4000, sync=True, capture_now=True)
        self.assert_status(declined["AuthorizationStatus"], "Declined", "InvalidPaymentMethod")
        self.assert_jpy(declined["AuthorizationAmount"], 4000)
        self.assert_jpy(declined["CapturedAmount"], 0)
        self.assertEqual(self.members(declined.get("IdList")), [])
        self.assert_status(
            self.authorization(client, declined["AmazonAuthorizationId"])["AuthorizationStatus"],
            "Declined",
            "InvalidPaymentMethod",
        )
        suspended = self.agreement(client, agreement_id)
        self.assert_status(suspended["BillingAgreementStatus"], "Suspended", "InvalidPaymentMethod")
        # A declined authorization uses none of the month's amount.
        self.assertEqual(self.remaining(client, agreement_id), MONTHLY_LIMIT)
        # No new authorization on a Suspended agreement.
        self.fails(
            self.authorize(client, agreement_id, 1000, sync=True),
            405,
            "InvalidBillingAgreementStatus",
        )

        validation = self.ok(
            client.validate_billing_agreement(amazon_billing_agreement_id=agreement_id),
            "ValidateBillingAgreement",
        )
        self.assertEqual(validation["ValidationResult"], "Failure")
        self.assertEqual(validation["FailureReasonCode"], "InvalidPaymentMethod")
        self.assert_status(
            validation["BillingAgreementStatus"], "Suspended", "InvalidPaymentMethod"
        )

        # The buyer picks a good payment method: still Suspended until the seller confirms again.
        pick_payment_method(agreement_id, declines=False)
        self.assert_status(
            self.agreement(client, agreement_id)["BillingAgreementStatus"],
            "Suspended",
            "InvalidPaymentMethod",
        )
        self.ok(
            client.confirm_billing_agreement(amazon_billing_agreement_id=agreement_id),
            "ConfirmBillingAgreement",
        )
        self.assert_status(self.agreement(client, agreement_id)["BillingAgreementStatus"], "Open")
        validation = self.ok(
            client.validate_billing_agreement(amazon_billing_agreement_id=agreement_id),
            "ValidateBillingAgreement",
        )
        self.assertEqual(validation["ValidationResult"], "Success")
        paid = self.authorized(client, agreement_id, 4000, sync=True, capture_now=True)
        self.assert_status(paid["AuthorizationStatus"], "Closed", "MaxCapturesProcessed")
        self.assertEqual(self.remaining(client, agreement_id), MONTHLY_LIMIT - 4000)

    def test_validate_finds_the_failing_payment_method(self):
        seller = new_seller()
        client = client_for(seller)
        agreement_id = self.open_agreement(client, seller)
        pick_payment_method(agreement_id, declines=True)
        validation = self.ok(
            client.validate_billing_agreement(amazon_billing_agreement_id=agreement_id),
            "ValidateBillingAgreement",
        )
        self.assertEqual(validation["ValidationResult"], "Failure")
        self.assertEqual(validation["FailureReasonCode"], "InvalidPaymentMethod")
        self.assert_status(
            validation["BillingAgreementStatus"], "Suspended", "InvalidPaymentMethod"
        )
        self.assert_status(
            self.agreement(client, agreement_id)["BillingAgreementStatus"],
            "Suspended",
            "InvalidPaymentMethod",
        )

    def test_asynchronous_authorization_is_declined_later(self):
        seller = new_seller()
        client = client_for(seller)
        agreement_id = self.open_agreement(client, seller)
        pick_payment_method(agreement_id, declines=True)
        pending = self.authorized(client, agreement_id, 3000, sync=False)
        self.assert_status(pending["AuthorizationStatus"], "Pending")
        advance_clock(31)
        declined = self.authorization(client, pending["AmazonAuthorizationId"])
        self.assert_status(declined["AuthorizationStatus"], "Declined", "InvalidPaymentMethod")
        self.assert_status(
            self.agreement(client, agreement_id)["BillingAgreementStatus"],
            "Suspended",
            "InvalidPaymentMethod",
        )
        self.assertEqual(self.remaining(client, agreement_id), MONTHLY_LIMIT)


class Simulations(MwsTestCase):
    def test_soft_decline(self):
        seller = new_seller()
        client = client_for(seller)
        agreement_id = self.open_agreement(client, seller)
        note = simulation(
            State="Declined",
            ReasonCode="InvalidPaymentMethod",
            PaymentMethodUpdateTimeInMins=5,
            SoftDecline="true",
        )
        declined = self.authorized(client, agreement_id, 2000, sync=True, note=note)
        self.assert_status(declined["AuthorizationStatus"], "Declined", "InvalidPaymentMethod")
        self.assertEqual(declined["SoftDecline"], "true")
        self.assertEqual(declined["SellerAuthorizationNote"], note)
        self.assert_status(
            self.agreement(client, agreement_id)["BillingAgreementStatus"],
            "Suspended",
            "InvalidPaymentMethod",
        )
        self.assertEqual(self.remaining(client, agreement_id), MONTHLY_LIMIT)

    def test_soft_decline_false_on_an_asynchronous_authorization_reverts(self):
        seller = new_seller()
        client = client_for(seller)
        agreement_id = self.open_agreement(client, seller)
        note = simulation(
            State="Declined",
            ReasonCode="InvalidPaymentMethod",
            PaymentMethodUpdateTimeInMins=5,
            SoftDecline="false",
        )
        pending = self.authorized(client, agreement_id, 2000, sync=False, note=note)
        self.assert_status(pending["AuthorizationStatus"], "Pending")
        advance_clock(31)
        declined = self.authorization(client, pending["AmazonAuthorizationId"])
        self.assert_status(declined["AuthorizationStatus"], "Declined", "InvalidPaymentMethod")
        self.assertEqual(declined["SoftDecline"], "false")
        self.assert_status(
            self.agreement(client, agreement_id)["BillingAgreementStatus"],
            "Suspended",
            "InvalidPaymentMethod",
        )
        # The simulated buyer updates the payment method within the minutes given.
        advance_clock(5 * 60 + 30)
        self.assert_status(self.agreement(client, agreement_id)["BillingAgreementStatus"], "Open")

    def test_amazon_rejected_leaves_the_agreement_open(self):
        seller = new_seller()
        client = client_for(seller)
        agreement_id = self.open_agreement(client, seller)
        declined = self.authorized(
            client,
            agreement_id,
            2000,
            sync=True,
            note=simulation(State="Declined", ReasonCode="AmazonRejected"),
        )
        self.assert_status(declined["AuthorizationStatus"], "Declined", "AmazonRejected")
        self.assert_status(self.agreement(client, agreement_id)["BillingAgreementStatus"], "Open")
        self.assertEqual(self.remaining(client, agreement_id), MONTHLY_LIMIT)


if __name__ == "__main__":
    unittest.main()
