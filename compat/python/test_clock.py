"""What the emulator's clock drives: the JP monthly limit and its reset on the 1st, a Draft
agreement left unconfirmed for 3 hours, an authorization left unused for 30 days."""

import unittest
from datetime import datetime, timedelta, timezone

from support import (
    MONTHLY_LIMIT,
    MwsTestCase,
    advance_clock,
    client_for,
    emulator_clock,
    give_consent,
    new_agreement,
    new_seller,
    reference_id,
)

HOUR = 3600
DAY = 24 * HOUR


def parse_time(stamp):
    return datetime.strptime(stamp[:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=timezone.utc)


def emulator_now():
    return datetime.fromtimestamp(emulator_clock()["unix"], tz=timezone.utc)


def first_of_next_month(now):
    year, month = (now.year + 1, 1) if now.month == 12 else (now.year, now.month + 1)
    return datetime(year, month, 1, tzinfo=timezone.utc)


def advance_to(moment):
    """Moves the emulator's clock to `moment` (not backwards)."""
    seconds = int((moment - emulator_now()).total_seconds())
    if seconds > 0:
        advance_clock(seconds)


class MonthlyLimit(MwsTestCase):
    @classmethod
    def setUpClass(cls):
        # Start at the beginning of a month, so that no month ends inside a test.
        advance_to(first_of_next_month(emulator_now()) + timedelta(hours=1))

    def test_fifty_thousand_yen_a_month_then_a_new_month(self):
        seller = new_seller()
        client = client_for(seller)
        agreement_id = self.open_agreement(client, seller)
        self.authorized(client, agreement_id, 30000, sync=True, capture_now=True)
        self.assertEqual(self.remaining(client, agreement_id), MONTHLY_LIMIT - 30000)

        self.fails(
            self.authorize(client, agreement_id, 20001, sync=True), 400, "PeriodicAmountExceeded"
        )
        self.fails(
            self.authorize(client, agreement_id, 20001, sync=False), 400, "PeriodicAmountExceeded"
        )
        self.assertEqual(self.remaining(client, agreement_id), MONTHLY_LIMIT - 30000)
        # An asynchronous authorization uses the amount when it is asked for.
        pending = self.authorized(client, agreement_id, 20000, sync=False)
        self.assert_status(pending["AuthorizationStatus"], "Pending")
        self.assertEqual(self.remaining(client, agreement_id), 0)
        self.fails(self.authorize(client, agreement_id, 1, sync=True), 400, "PeriodicAmountExceeded")

        now = emulator_now()
        limits = self.agreement(client, agreement_id)["BillingAgreementLimits"]
        self.assertEqual(parse_time(limits["TimePeriodStartDate"]), now.replace(
            day=1, hour=0, minute=0, second=0, microsecond=0))
        self.assertEqual(parse_time(limits["TimePeriodEndDate"]), first_of_next_month(now))

        # The 1st of the next month (UTC): the whole amount again.
        advance_to(first_of_next_month(now) + timedelta(seconds=30))
        limits = self.agreement(client, agreement_id)["BillingAgreementLimits"]
        self.assert_jpy(limits["CurrentRemainingBalance"], MONTHLY_LIMIT)
        self.assertEqual(parse_time(limits["TimePeriodStartDate"]), first_of_next_month(now))
        self.assertEqual(
            parse_time(limits["TimePeriodEndDate"]),
            first_of_next_month(first_of_next_month(now)),
        )
        renewed = self.authorized(client, agreement_id, MONTHLY_LIMIT, sync=True, capture_now=True)
        self.assert_status(renewed["AuthorizationStatus"], "Closed", "MaxCapturesProcessed")
        self.assertEqual(self.remaining(client, agreement_id), 0)

    def test_limits_are_per_agreement(self):
        seller = new_seller()
        client = client_for(seller)
        first = self.open_agreement(client, seller)
        second = self.open_agreement(client, seller)
        self.authorized(client, first, MONTHLY_LIMIT, sync=True)
        self.assertEqual(self.remaining(client, first), 0)
        self.assertEqual(self.remaining(client, second), MONTHLY_LIMIT)
        self.authorized(client, second, 10000, sync=True)
        self.assertEqual(self.remaining(client, second), MONTHLY_LIMIT - 10000)


class Expiry(MwsTestCase):
    def test_a_draft_agreement_not_confirmed_in_three_hours_is_canceled(self):
        seller = new_seller()
        client = client_for(seller)
        stale = new_agreement(seller)
        give_consent(stale)
        confirmed = self.open_agreement(client, seller)
        advance_clock(3 * HOUR - 60)
        self.assert_status(self.agreement(client, stale)["BillingAgreementStatus"], "Draft")
        advance_clock(120)
        canceled = self.agreement(client, stale)
        self.assert_status(canceled["BillingAgreementStatus"], "Canceled", "Stale")
        self.fails(
            client.confirm_billing_agreement(amazon_billing_agreement_id=stale),
            405,
            "InvalidBillingAgreementStatus",
        )
        self.fails(self.authorize(client, stale, 1000), 405, "InvalidBillingAgreementStatus")
        # A confirmed agreement does not go stale.
        self.assert_status(self.agreement(client, confirmed)["BillingAgreementStatus"], "Open")

    def test_an_authorization_unused_for_thirty_days_is_closed(self):
        seller = new_seller()
        client = client_for(seller)
        agreement_id = self.open_agreement(client, seller)
        auth = self.authorized(client, agreement_id, 5000, sync=True)
        auth_id = auth["AmazonAuthorizationId"]
        self.assert_status(auth["AuthorizationStatus"], "Open")
        self.assertEqual(
            parse_time(auth["ExpirationTimestamp"]) - parse_time(auth["CreationTimestamp"]),
            timedelta(days=30),
        )
        advance_clock(30 * DAY - 60)
        self.assert_status(self.authorization(client, auth_id)["AuthorizationStatus"], "Open")
        advance_clock(120)
        expired = self.authorization(client, auth_id)
        self.assert_status(expired["AuthorizationStatus"], "Closed", "ExpiredUnused")
        self.assert_jpy(expired["CapturedAmount"], 0)
        self.fails(
            client.capture(
                amazon_authorization_id=auth_id,
                capture_reference_id=reference_id("cap"),
                capture_amount="5000",
            ),
            405,
            "InvalidAuthorizationStatus",
        )


if __name__ == "__main__":
    unittest.main()
