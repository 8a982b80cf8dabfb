"""What every test of this suite shares: the official Amazon Pay SDK aimed at the emulator, the
emulator's test helpers, an IPN listener, and readers for what the SDK parses.

The SDK itself is not changed. Three things are added around it, each described in README.md:
- ``EmulatorPayClient`` overrides ``AmazonPayClient._set_endpoint`` (the one place the SDK builds
  its URL) so that requests go to the emulator instead of Amazon's MWS host;
- ``requests.post`` as the SDK's request module sees it is wrapped to record the HTTP status of
  each answer (the SDK keeps it private), without touching the request or the answer;
- ``EmulatorIpnHandler`` overrides ``IpnHandler._validate_cert_url`` and ``IpnHandler._get_cert``
  so that the emulator's signing certificate is read from the emulator instead of Amazon SNS.
"""

import json
import os
import queue
import re
import threading
import time
import unittest
import uuid
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlparse

import requests
import amazon_pay.payment_request as sdk_request
from amazon_pay.client import AmazonPayClient
from amazon_pay.ipn_handler import IpnHandler

BASE_URL = os.environ.get("KESSAI_EMULATOR_URL", "").rstrip("/")
if not BASE_URL:
    raise RuntimeError(
        "KESSAI_EMULATOR_URL is not set: start the emulator and point this variable at it "
        "(see compat/python/README.md)"
    )

CERT_PATH = "/sns/mws-signing-cert.pem"

# Amazon's id shapes for the sandbox, Japan (region digits 03).
BA_ID = re.compile(r"^C03-\d{7}-\d{7}$")
ORO_ID = re.compile(r"^S03-\d{7}-\d{7}$")
AUTH_ID = re.compile(r"^(S03-\d{7}-\d{7})-A\d{6}$")
CAPTURE_ID = re.compile(r"^(S03-\d{7}-\d{7})-C\d{6}$")
REFUND_ID = re.compile(r"^(S03-\d{7}-\d{7})-R\d{6}$")
TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$")

MONTHLY_LIMIT = 50000

# --------------------------------------------------------------------------------------------
# HTTP status of each SDK answer. PaymentRequest stores it in a private field and the client
# returns only the parsed body, so the status is read off the answer as it passes by.
# --------------------------------------------------------------------------------------------

_real_post = requests.post
_last_status = threading.local()


def _recording_post(*args, **kwargs):
    answer = _real_post(*args, **kwargs)
    _last_status.value = answer.status_code
    _last_status.content_type = answer.headers.get("Content-Type")
    return answer


sdk_request.requests.post = _recording_post


def last_status():
    """The HTTP status of the last answer the SDK received on this thread."""
    return getattr(_last_status, "value", None)


def last_content_type():
    return getattr(_last_status, "content_type", None)


class EmulatorPayClient(AmazonPayClient):
    """AmazonPayClient whose endpoint is the emulator's (reference §10, option A)."""

    def __init__(self, *args, emulator_base_url, **kwargs):
        self._emulator_base_url = emulator_base_url.rstrip("/")
        super().__init__(*args, **kwargs)

    def _set_endpoint(self):
        section = "OffAmazonPayments_Sandbox" if self._sandbox else "OffAmazonPayments"
        self._mws_endpoint = "{}/{}/{}".format(
            self._emulator_base_url, section, self._api_version
        )


# --------------------------------------------------------------------------------------------
# Test helpers of the emulator (unsigned JSON on loopback).
# --------------------------------------------------------------------------------------------


def helper(path, body=None, method="POST"):
    url = BASE_URL + path
    if method == "GET":
        answer = requests.get(url, timeout=30)
    else:
        answer = requests.post(url, json=body if body is not None else {}, timeout=30)
    if answer.status_code != 200:
        raise AssertionError(
            "test helper {} {} answered {}: {}".format(method, path, answer.status_code, answer.text)
        )
    return answer.json()


def new_seller(ipn_url=None):
    """A JP seller: {sellerId, accessKey, secretKey, lwaClientId}."""
    return helper("/test_helpers/sellers", {"ipnUrl": ipn_url} if ipn_url else {})


def set_ipn_url(seller, ipn_url):
    helper("/test_helpers/sellers/{}/ipnUrl".format(seller["sellerId"]), {"ipnUrl": ipn_url})


def new_agreement(seller):
    """A Draft billing agreement with address and payment method chosen, without consent."""
    return helper("/test_helpers/billingAgreements", {"sellerId": seller["sellerId"]})[
        "AmazonBillingAgreementId"
    ]


def give_consent(agreement_id, consent=True):
    helper("/test_helpers/billingAgreements/{}/consent".format(agreement_id), {"consent": consent})


def pick_payment_method(agreement_id, declines):
    helper(
        "/test_helpers/billingAgreements/{}/paymentMethod".format(agreement_id),
        {"declines": declines},
    )


def advance_clock(seconds):
    return helper("/test_helpers/clock/advance", {"seconds": int(seconds)})


def emulator_clock():
    return helper("/test_helpers/clock", method="GET")


def client_for(seller, secret=None, currency="JPY", sandbox=True):
    return EmulatorPayClient(
        mws_access_key=seller["accessKey"],
        mws_secret_key=secret if secret is not None else seller["secretKey"],
        merchant_id=seller["sellerId"],
        region="jp",
        currency_code=currency,
        sandbox=sandbox,
        handle_throttle=False,
        emulator_base_url=BASE_URL,
    )


def reference_id(prefix):
    """A fresh reference id (alphanumerics and '-', at most 32 characters)."""
    return "{}-{}".format(prefix, uuid.uuid4().hex[:20])


# --------------------------------------------------------------------------------------------
# Reading what the SDK parsed.
# --------------------------------------------------------------------------------------------


class MwsTestCase(unittest.TestCase):
    maxDiff = None

    def ok(self, response, action):
        """Asserts a 200 answer to `action` and returns its {action}Result dict (or None)."""
        parsed = response.to_dict()
        self.assertTrue(response.success, "{} failed: {}".format(action, parsed))
        self.assertEqual(last_status(), 200, parsed)
        self.assertIn(action + "Response", parsed, parsed)
        body = parsed[action + "Response"]
        self.assertIn(action + "Result", body, parsed)
        request_id = body["ResponseMetadata"]["RequestId"]
        self.assertTrue(request_id, parsed)
        self.assertEqual(response.request_id, request_id)
        return body[action + "Result"]

    def fails(self, response, status, code, error_type="Sender"):
        """Asserts an error answer with this HTTP status, Type and Code; returns the Error dict."""
        parsed = response.to_dict()
        self.assertFalse(response.success, "expected {} {}, got {}".format(status, code, parsed))
        self.assertIn("ErrorResponse", parsed, parsed)
        error = parsed["ErrorResponse"]["Error"]
        self.assertEqual(error.get("Code"), code, parsed)
        self.assertEqual(error.get("Type"), error_type, parsed)
        self.assertTrue(error.get("Message"), parsed)
        self.assertEqual(last_status(), status, parsed)
        self.assertTrue(response.request_id, parsed)
        return error

    def agreement(self, client, agreement_id):
        result = self.ok(
            client.get_billing_agreement_details(amazon_billing_agreement_id=agreement_id),
            "GetBillingAgreementDetails",
        )
        details = result["BillingAgreementDetails"]
        self.assertEqual(details["AmazonBillingAgreementId"], agreement_id)
        return details

    def authorization(self, client, authorization_id):
        details = self.ok(
            client.get_authorization_details(amazon_authorization_id=authorization_id),
            "GetAuthorizationDetails",
        )["AuthorizationDetails"]
        self.assertEqual(details["AmazonAuthorizationId"], authorization_id)
        return details

    def capture_details(self, client, capture_id):
        details = self.ok(
            client.get_capture_details(amazon_capture_id=capture_id), "GetCaptureDetails"
        )["CaptureDetails"]
        self.assertEqual(details["AmazonCaptureId"], capture_id)
        return details

    def refund_details(self, client, refund_id):
        details = self.ok(
            client.get_refund_details(amazon_refund_id=refund_id), "GetRefundDetails"
        )["RefundDetails"]
        self.assertEqual(details["AmazonRefundId"], refund_id)
        return details

    def assert_status(self, status, state, reason=None):
        """Asserts a *Status element: State, ReasonCode (absent when `reason` is None)."""
        self.assertEqual(status["State"], state, status)
        if reason is None:
            self.assertIsNone(status.get("ReasonCode"), status)
        else:
            self.assertEqual(status.get("ReasonCode"), reason, status)
        stamp = status.get("LastUpdateTimestamp") or status.get("LastUpdatedTimestamp")
        if state != "Draft":
            self.assertRegex(stamp or "", TIMESTAMP, status)

    def assert_jpy(self, price, amount):
        """Asserts a <CurrencyCode>JPY</CurrencyCode><Amount>…</Amount> pair in whole yen."""
        self.assertEqual(price["CurrencyCode"], "JPY", price)
        self.assertEqual(Decimal(price["Amount"]), Decimal(amount), price)
        self.assertEqual(Decimal(price["Amount"]) % 1, 0, price)

    def members(self, id_list):
        """The ids of an IdList (to_dict gives a string for one member, a list for more)."""
        if id_list is None:
            return []
        member = id_list.get("member")
        if member is None:
            return []
        return member if isinstance(member, list) else [member]

    def open_agreement(self, client, seller):
        """Draft → SetBillingAgreementDetails → consent → Confirm: an Open agreement's id."""
        agreement_id = new_agreement(seller)
        self.assertRegex(agreement_id, BA_ID)
        self.ok(
            client.set_billing_agreement_details(
                amazon_billing_agreement_id=agreement_id,
                seller_note="Monthly coffee beans",
                seller_billing_agreement_id=reference_id("sub"),
            ),
            "SetBillingAgreementDetails",
        )
        give_consent(agreement_id)
        self.ok(
            client.confirm_billing_agreement(amazon_billing_agreement_id=agreement_id),
            "ConfirmBillingAgreement",
        )
        return agreement_id

    def authorize(self, client, agreement_id, amount, sync=True, capture_now=False, note=None,
                  reference=None):
        """AuthorizeOnBillingAgreement; returns (result, response) without judging success."""
        response = client.authorize_on_billing_agreement(
            amazon_billing_agreement_id=agreement_id,
            authorization_reference_id=reference or reference_id("auth"),
            authorization_amount=str(amount),
            seller_authorization_note=note,
            transaction_timeout=0 if sync else 1440,
            capture_now=capture_now,
        )
        return response

    def authorized(self, client, agreement_id, amount, **kwargs):
        """An authorization that must succeed: its AuthorizationDetails, with the ORO id added."""
        result = self.ok(
            self.authorize(client, agreement_id, amount, **kwargs), "AuthorizeOnBillingAgreement"
        )
        details = result["AuthorizationDetails"]
        oro = result["AmazonOrderReferenceId"]
        self.assertRegex(oro, ORO_ID)
        match = AUTH_ID.match(details["AmazonAuthorizationId"])
        self.assertIsNotNone(match, details)
        self.assertEqual(match.group(1), oro)
        details["_oro"] = oro
        return details

    def remaining(self, client, agreement_id):
        limits = self.agreement(client, agreement_id)["BillingAgreementLimits"]
        self.assertEqual(limits["CurrentRemainingBalance"]["CurrencyCode"], "JPY", limits)
        return Decimal(limits["CurrentRemainingBalance"]["Amount"])


# --------------------------------------------------------------------------------------------
# IPN: one listener for the whole test process; each test takes a path of its own.
# --------------------------------------------------------------------------------------------


class _Listener(BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802 (the name http.server calls)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        # Header names as a web framework hands them over (Werkzeug, Django's request.headers):
        # each word capitalised, e.g. X-Amz-Sns-Topic-Arn, whatever case the sender used.
        headers = {
            "-".join(part.capitalize() for part in name.split("-")): value
            for name, value in self.headers.items()
        }
        inbox = IpnInbox.by_path.get(self.path)
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()
        if inbox is not None:
            inbox.arrived.put((body, headers))

    def log_message(self, *args):
        pass


class IpnInbox:
    """Collects the notifications POSTed to one path of the shared listener."""

    by_path = {}
    _server = None
    _lock = threading.Lock()

    def __init__(self):
        with IpnInbox._lock:
            if IpnInbox._server is None:
                server = ThreadingHTTPServer(("127.0.0.1", 0), _Listener)
                server.daemon_threads = True
                threading.Thread(target=server.serve_forever, daemon=True).start()
                IpnInbox._server = server
        self.path = "/ipn/" + uuid.uuid4().hex
        self.url = "http://127.0.0.1:{}{}".format(IpnInbox._server.server_address[1], self.path)
        self.arrived = queue.Queue()
        self.seen = []
        IpnInbox.by_path[self.path] = self

    def wait_for(self, accept, timeout=15.0):
        """Waits for a notification (body, headers) for which `accept(handler)` is true, where
        handler is an authenticated EmulatorIpnHandler; returns (handler, body, headers)."""
        deadline = time.monotonic() + timeout
        for body, headers in self.seen:
            handler = EmulatorIpnHandler(body, headers)
            if accept(handler):
                return handler, body, headers
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(
                    "no {} arrived within {} s; arrived: {}".format(
                        getattr(accept, "what", "notification"),
                        timeout, [b.decode("utf-8", "replace") for b, _ in self.seen]
                    )
                )
            try:
                body, headers = self.arrived.get(timeout=left)
            except queue.Empty:
                continue
            self.seen.append((body, headers))
            handler = EmulatorIpnHandler(body, headers)
            if accept(handler):
                return handler, body, headers


def about(kind, object_id, state=None):
    """A test for IpnInbox.wait_for: a notification of `kind` (Authorization, Capture, Refund)
    about `object_id`, in `state` if given."""

    def accept(handler):
        body = handler.notification().get(kind + "Notification") or {}
        details = body.get(kind + "Details") or {}
        if details.get("Amazon{}Id".format(kind)) != object_id:
            return False
        return state is None or details[kind + "Status"]["State"] == state

    accept.what = "a {} notification about {}{}".format(
        kind, object_id, " in state " + state if state else ""
    )
    return accept


_cert_pem = None


def signing_cert_pem():
    global _cert_pem
    if _cert_pem is None:
        answer = requests.get(BASE_URL + CERT_PATH, timeout=30)
        if answer.status_code != 200:
            raise AssertionError(
                "GET {} answered {}: {}".format(CERT_PATH, answer.status_code, answer.text)
            )
        _cert_pem = answer.text
    return _cert_pem


class EmulatorIpnHandler(IpnHandler):
    """The SDK's IpnHandler with the certificate taken from the emulator.

    Amazon's SNS signs with a certificate at https://sns.<region>.amazonaws.com/….pem, which the
    SDK checks by its host name and downloads. The emulator names and serves its own certificate
    at <emulator>/sns/mws-signing-cert.pem. Only those two steps are replaced: the URL must be the
    emulator's certificate URL, and the PEM is read from there. The topic header check, the
    signature check (RSA-SHA1 over the SNS string to sign, with pyOpenSSL) and the parsing are
    the SDK's own.
    """

    def _validate_cert_url(self):
        url = urlparse(self._signing_cert_url)
        emulator = urlparse(BASE_URL)
        if url.scheme not in ("http", "https") or (url.netloc, url.path) != (
            emulator.netloc,
            CERT_PATH,
        ):
            raise ValueError("Invalid certificate.")
        return True

    def _get_cert(self):
        self._pem = signing_cert_pem()
        return True

    def notification(self):
        """The parsed NotificationData (namespace stripped), as the SDK's to_json() gives it."""
        return json.loads(self.to_json())

    def message(self):
        return self._message
