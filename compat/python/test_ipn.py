"""IPNs from the emulator, read and authenticated by the SDK's own IpnHandler."""

import base64
import json
import unittest

from amazon_pay.ipn_handler import IpnHandler

from support import (
    CERT_PATH,
    EmulatorIpnHandler,
    IpnInbox,
    MwsTestCase,
    about,
    advance_clock,
    client_for,
    new_seller,
    reference_id,
    set_ipn_url,
)

IPN_NAMESPACE_ROOTS = {
    "PaymentAuthorize": "AuthorizationNotification",
    "PaymentCapture": "CaptureNotification",
    "PaymentRefund": "RefundNotification",
    "BillingAgreementNotification": "BillingAgreementNotification",
}


class Notifications(MwsTestCase):
    def setUp(self):
        self.inbox = IpnInbox()
        self.seller = new_seller(self.inbox.url)
        self.client = client_for(self.seller)

    def check_envelope(self, handler, body, headers, notification_type):
        self.assertTrue(handler.authenticate())
        self.assertIsNone(handler.error)
        envelope = json.loads(body)
        self.assertEqual(envelope["Type"], "Notification")
        self.assertEqual(envelope["SignatureVersion"], "1")
        self.assertTrue(envelope["MessageId"])
        self.assertTrue(envelope["UnsubscribeURL"])
        self.assertEqual(headers["X-Amz-Sns-Message-Type"], "Notification")
        self.assertEqual(headers["X-Amz-Sns-Topic-Arn"], envelope["TopicArn"])
        self.assertTrue(envelope["SigningCertURL"].endswith(CERT_PATH), envelope)
        message = handler.message()
        self.assertEqual(message["NotificationType"], notification_type)
        self.assertEqual(message["SellerId"], self.seller["sellerId"])
        self.assertEqual(message["ReleaseEnvironment"], "Sandbox")
        self.assertEqual(message["Version"], "2013-01-01")
        self.assertTrue(message["NotificationReferenceId"])
        self.assertTrue(message["MarketplaceID"])
        self.assertTrue(
            message["NotificationData"].startswith('<?xml version="1.0" encoding="UTF-8"?>\n')
        )
        self.assertIn(
            'xmlns="https://mws.amazonservices.com/ipn/OffAmazonPayments/2013-01-01"',
            message["NotificationData"],
        )
        self.assertEqual(list(handler.notification()), [IPN_NAMESPACE_ROOTS[notification_type]])

    def test_authorize_capture_and_refund_notifications(self):
        agreement_id = self.open_agreement(self.client, self.seller)
        auth_ref = reference_id("auth")
        pending = self.authorized(self.client, agreement_id, 2000, sync=False, reference=auth_ref)
        auth_id = pending["AmazonAuthorizationId"]
        advance_clock(31)
        handler, body, headers = self.inbox.wait_for(about("Authorization", auth_id, "Open"))
        self.check_envelope(handler, body, headers, "PaymentAuthorize")
        details = handler.notification()["AuthorizationNotification"]["AuthorizationDetails"]
        self.assertEqual(details["AuthorizationReferenceId"], auth_ref)
        # (Amazon's IPN samples carry <ReasonCode>None</ReasonCode> on some states: only the
        # state is compared here.)
        self.assertEqual(details["AuthorizationStatus"]["State"], "Open")
        self.assert_jpy(details["AuthorizationAmount"], 2000)

        capture = self.ok(
            self.client.capture(
                amazon_authorization_id=auth_id,
                capture_reference_id=reference_id("cap"),
                capture_amount="2000",
            ),
            "Capture",
        )["CaptureDetails"]
        capture_id = capture["AmazonCaptureId"]
        handler, body, headers = self.inbox.wait_for(about("Capture", capture_id, "Completed"))
        self.check_envelope(handler, body, headers, "PaymentCapture")
        details = handler.notification()["CaptureNotification"]["CaptureDetails"]
        self.assert_jpy(details["CaptureAmount"], 2000)

        refund = self.ok(
            self.client.refund(
                amazon_capture_id=capture_id,
                refund_reference_id=reference_id("ref"),
                refund_amount="800",
            ),
            "Refund",
        )["RefundDetails"]
        refund_id = refund["AmazonRefundId"]
        advance_clock(31)
        handler, body, headers = self.inbox.wait_for(about("Refund", refund_id, "Completed"))
        self.check_envelope(handler, body, headers, "PaymentRefund")
        details = handler.notification()["RefundNotification"]["RefundDetails"]
        self.assert_jpy(details["RefundAmount"], 800)
        self.assertEqual(details["RefundType"], "SellerInitiated")

    def test_billing_agreement_notification_on_close(self):
        agreement_id = self.open_agreement(self.client, self.seller)
        self.ok(
            self.client.close_billing_agreement(
                amazon_billing_agreement_id=agreement_id, closure_reason="done"
            ),
            "CloseBillingAgreement",
        )

        def closed(handler):
            node = handler.notification().get("BillingAgreementNotification") or {}
            agreement = node.get("BillingAgreement") or {}
            return (
                agreement.get("AmazonBillingAgreementId") == agreement_id
                and agreement["BillingAgreementStatus"]["State"] == "Closed"
            )

        closed.what = "a BillingAgreementNotification Closed for " + agreement_id
        handler, body, headers = self.inbox.wait_for(closed)
        self.check_envelope(handler, body, headers, "BillingAgreementNotification")
        status = handler.notification()["BillingAgreementNotification"]["BillingAgreement"][
            "BillingAgreementStatus"
        ]
        self.assertEqual(status["ReasonCode"], "SellerClosed")

    def test_changed_notifications_fail_authentication(self):
        agreement_id = self.open_agreement(self.client, self.seller)
        auth = self.authorized(self.client, agreement_id, 1200, sync=False)
        advance_clock(31)
        _, body, headers = self.inbox.wait_for(
            about("Authorization", auth["AmazonAuthorizationId"], "Open")
        )
        self.assertTrue(EmulatorIpnHandler(body, headers).authenticate())

        # Another amount in the signed message.
        envelope = json.loads(body)
        self.assertIn("1200", envelope["Message"])
        envelope["Message"] = envelope["Message"].replace("1200", "1300")
        changed = EmulatorIpnHandler(json.dumps(envelope).encode("utf-8"), headers)
        with self.assertRaisesRegex(ValueError, "Invalid signature"):
            changed.authenticate()

        # Another signature.
        envelope = json.loads(body)
        signature = bytearray(base64.b64decode(envelope["Signature"]))
        signature[len(signature) // 2] ^= 0x01
        envelope["Signature"] = base64.b64encode(bytes(signature)).decode("ascii")
        with self.assertRaisesRegex(ValueError, "Invalid signature"):
            EmulatorIpnHandler(json.dumps(envelope).encode("utf-8"), headers).authenticate()

        # The topic header must name the topic of the body.
        other_topic = dict(headers, **{"X-Amz-Sns-Topic-Arn": "arn:aws:sns:other"})
        with self.assertRaisesRegex(ValueError, "Invalid TopicArn"):
            EmulatorIpnHandler(body, other_topic).authenticate()

        # The SDK looks the header up by its exact name (reference §8).
        lower = {name.lower(): value for name, value in headers.items()}
        with self.assertRaisesRegex(ValueError, "Invalid TopicArn"):
            EmulatorIpnHandler(body, lower).authenticate()

        # Unpatched, the SDK accepts certificates only from Amazon SNS hosts over https, which is
        # why EmulatorIpnHandler replaces the URL check and the download.
        with self.assertRaisesRegex(ValueError, "Invalid certificate"):
            IpnHandler(body, headers).authenticate()

    def test_ipn_url_can_be_changed(self):
        second = IpnInbox()
        set_ipn_url(self.seller, second.url)
        agreement_id = self.open_agreement(self.client, self.seller)
        auth = self.authorized(self.client, agreement_id, 700, sync=False)
        advance_clock(31)
        handler, body, headers = second.wait_for(
            about("Authorization", auth["AmazonAuthorizationId"], "Open")
        )
        self.assertTrue(self.inbox.arrived.empty() and not self.inbox.seen)
        self.check_envelope(handler, body, headers, "PaymentAuthorize")


if __name__ == "__main__":
    unittest.main()
