'use strict';

// Error answers {reasonCode, message} with Amazon's statuses (reference §6, §7).

const { describe, test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const h = require('../lib/emulator');

let emu;
before(async () => { emu = await h.startEmulator(); });
after(async () => { if (emu) await emu.stop(); });

describe('amounts and states', () => {
    test('capture above the authorized amount -> 400 TransactionAmountExceeded', async () => {
        const m = await h.newMerchant(emu);
        const { completed } = await h.checkout(emu, m, { amount: 1000 });
        await h.expectApiError(m.client.captureCharge(completed.chargeId, { captureAmount: h.jpy(1001) },
            { 'x-amz-pay-idempotency-key': h.idemKey() }), 400, 'TransactionAmountExceeded');
        // Still capturable afterwards.
        const ok = await m.client.captureCharge(completed.chargeId, { captureAmount: h.jpy(1000) },
            { 'x-amz-pay-idempotency-key': h.idemKey() });
        assert.equal(ok.data.statusDetails.state, 'Captured');
    });

    test('a second capture (new key) -> 422 InvalidChargeStatus', async () => {
        const m = await h.newMerchant(emu);
        const { completed } = await h.checkout(emu, m, { amount: 1000 });
        await m.client.captureCharge(completed.chargeId, { captureAmount: h.jpy(500) },
            { 'x-amz-pay-idempotency-key': h.idemKey() });
        await h.expectApiError(m.client.captureCharge(completed.chargeId, { captureAmount: h.jpy(500) },
            { 'x-amz-pay-idempotency-key': h.idemKey() }), 422, 'InvalidChargeStatus');
    });

    test('Complete with another amount -> 409 AmountMismatch; the right amount still completes', async () => {
        const m = await h.newMerchant(emu);
        const { id } = await h.buyerReachesResultPage(emu, m, { amount: 1000 });
        await h.expectApiError(m.client.completeCheckoutSession(id, { chargeAmount: h.jpy(999) }), 409, 'AmountMismatch');
        const done = await m.client.completeCheckoutSession(id, { chargeAmount: h.jpy(1000) });
        assert.equal(done.data.statusDetails.state, 'Completed');
    });

    test('refund of an authorized (uncaptured) charge -> 422 InvalidChargeStatus', async () => {
        const m = await h.newMerchant(emu);
        const { completed } = await h.checkout(emu, m);
        await h.expectApiError(m.client.createRefund({ chargeId: completed.chargeId, refundAmount: h.jpy(100) },
            { 'x-amz-pay-idempotency-key': h.idemKey() }), 422, 'InvalidChargeStatus');
    });

    test('refund above the captured amount + min(15 %, 8,400 JPY) -> 400 TransactionAmountExceeded', async () => {
        const m = await h.newMerchant(emu);
        const { completed } = await h.checkout(emu, m, { intent: 'AuthorizeWithCapture', amount: 1000 });
        await h.expectApiError(m.client.createRefund({ chargeId: completed.chargeId, refundAmount: h.jpy(1151) },
            { 'x-amz-pay-idempotency-key': h.idemKey() }), 400, 'TransactionAmountExceeded');
    });

    test('Update after Complete -> 422 InvalidCheckoutSessionStatus', async () => {
        const m = await h.newMerchant(emu);
        const { id } = await h.checkout(emu, m);
        await h.expectApiError(m.client.updateCheckoutSession(id, { merchantMetadata: { noteToBuyer: 'late' } }),
            422, 'InvalidCheckoutSessionStatus');
    });

    test('Complete before the buyer has been through checkout -> 422 InvalidCheckoutSessionStatus', async () => {
        const m = await h.newMerchant(emu);
        const s = await h.createSession(m);
        await h.expectApiError(m.client.completeCheckoutSession(s.checkoutSessionId, { chargeAmount: h.jpy(1000) }),
            422, 'InvalidCheckoutSessionStatus');
    });
});

describe('not found', () => {
    test('an unsupported method on a known path -> 405 UnsupportedOperation', async () => {
        const m = await h.newMerchant(emu);
        const s = await h.createSession(m);
        const res = await h.signedFetch(emu, m.client, 'PUT', `checkoutSessions/${s.checkoutSessionId}`, '{}');
        assert.equal(res.status, 405, JSON.stringify(res.data));
        assert.equal(res.data.reasonCode, 'UnsupportedOperation');
    });

    test('unknown charge id -> 404 ResourceNotFound', async () => {
        const m = await h.newMerchant(emu);
        await h.expectApiError(m.client.getCharge('S01-0000000-0000000-C000000'), 404, 'ResourceNotFound');
    });

    test('unknown checkout session, charge permission and refund -> 404 ResourceNotFound', async () => {
        const m = await h.newMerchant(emu);
        await h.expectApiError(m.client.getCheckoutSession('00000000-0000-4000-8000-000000000000'), 404, 'ResourceNotFound');
        await h.expectApiError(m.client.getChargePermission('P01-0000000-0000000'), 404, 'ResourceNotFound');
        await h.expectApiError(m.client.getRefund('S01-0000000-0000000-R000000'), 404, 'ResourceNotFound');
    });

    test("another merchant's objects -> 404 ResourceNotFound", async () => {
        const a = await h.newMerchant(emu);
        const b = await h.newMerchant(emu);
        const { id, completed } = await h.checkout(emu, a);
        await h.expectApiError(b.client.getCheckoutSession(id), 404, 'ResourceNotFound');
        await h.expectApiError(b.client.updateCheckoutSession(id, { merchantMetadata: { noteToBuyer: 'x' } }), 404, 'ResourceNotFound');
        await h.expectApiError(b.client.getChargePermission(completed.chargePermissionId), 404, 'ResourceNotFound');
        await h.expectApiError(b.client.getCharge(completed.chargeId), 404, 'ResourceNotFound');
        await h.expectApiError(b.client.captureCharge(completed.chargeId, { captureAmount: h.jpy(1000) },
            { 'x-amz-pay-idempotency-key': h.idemKey() }), 404, 'ResourceNotFound');
        // …and A's charge is untouched.
        assert.equal((await a.client.getCharge(completed.chargeId)).data.statusDetails.state, 'Authorized');
    });
});

describe('request validation', () => {
    test('unknown field -> 400 UnrecognizedField', async () => {
        const m = await h.newMerchant(emu);
        await h.expectApiError(m.client.createCheckoutSession(h.createPayload(m, { notAField: 1 }),
            { 'x-amz-pay-idempotency-key': h.idemKey() }), 400, 'UnrecognizedField');
        const s = await h.createSession(m);
        await h.expectApiError(m.client.updateCheckoutSession(s.checkoutSessionId,
            { webCheckoutDetails: { checkoutResultReturnUrl: h.RESULT_URL, nope: 'x' } }), 400, 'UnrecognizedField');
    });

    test('missing storeId -> 400 MissingParameterValue', async () => {
        const m = await h.newMerchant(emu);
        await h.expectApiError(m.client.createCheckoutSession(
            { webCheckoutDetails: { checkoutReviewReturnUrl: h.REVIEW_URL } },
            { 'x-amz-pay-idempotency-key': h.idemKey() }), 400, 'MissingParameterValue');
    });

    test('a body that is not JSON -> 400 InvalidRequestFormat', async () => {
        const m = await h.newMerchant(emu);
        // axios re-encodes a string body that is not JSON, so sign with the SDK's own
        // getSignedHeaders() and send the exact bytes with fetch.
        const res = await h.signedFetch(emu, m.client, 'POST', 'checkoutSessions', '{"storeId": ',
            { 'x-amz-pay-idempotency-key': h.idemKey() });
        assert.equal(res.status, 400, JSON.stringify(res.data));
        assert.equal(res.data.reasonCode, 'InvalidRequestFormat', JSON.stringify(res.data));
    });

    test('JPY amount with decimals -> 400 InvalidParameterValue', async () => {
        const m = await h.newMerchant(emu);
        const s = await h.createSession(m);
        const payload = h.updatePayload({ amount: '1000.50' });
        await h.expectApiError(m.client.updateCheckoutSession(s.checkoutSessionId, payload), 400, 'InvalidParameterValue');
    });

    test('USD for a JP (JPY ledger) merchant -> 400 CurrencyMismatch', async () => {
        const m = await h.newMerchant(emu);
        const s = await h.createSession(m);
        const payload = h.updatePayload({ amount: '10.00', currency: 'USD' });
        await h.expectApiError(m.client.updateCheckoutSession(s.checkoutSessionId, payload), 400, 'CurrencyMismatch');
    });

    test('unknown paymentIntent -> 400 InvalidParameterValue', async () => {
        const m = await h.newMerchant(emu);
        const s = await h.createSession(m);
        await h.expectApiError(m.client.updateCheckoutSession(s.checkoutSessionId, h.updatePayload({ intent: 'Steal' })),
            400, 'InvalidParameterValue');
    });

    test('Complete with the amount in another currency -> 400 CurrencyMismatch', async () => {
        const m = await h.newMerchant(emu);
        const { id } = await h.buyerReachesResultPage(emu, m, { amount: 1000 });
        await h.expectApiError(
            m.client.completeCheckoutSession(id, { chargeAmount: { amount: '1000', currencyCode: 'USD' } }),
            400, 'CurrencyMismatch');
    });
});
