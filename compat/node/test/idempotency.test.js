'use strict';

// x-amz-pay-idempotency-key (reference §3).

const { describe, test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const h = require('../lib/emulator');

let emu;
before(async () => { emu = await h.startEmulator(); });
after(async () => { if (emu) await emu.stop(); });

describe('idempotency', () => {
    test('Create Checkout Session replayed with the same key and body returns the same session', async () => {
        const m = await h.newMerchant(emu);
        const key = h.idemKey();
        const payload = h.createPayload(m);
        const first = await m.client.createCheckoutSession(payload, { 'x-amz-pay-idempotency-key': key });
        const second = await m.client.createCheckoutSession(payload, { 'x-amz-pay-idempotency-key': key });
        assert.equal(first.status, 201);
        assert.equal(second.status, 201);
        assert.equal(second.data.checkoutSessionId, first.data.checkoutSessionId);
        assert.deepEqual(second.data, first.data);

        // A fresh key makes a new session.
        const third = await m.client.createCheckoutSession(payload, { 'x-amz-pay-idempotency-key': h.idemKey() });
        assert.notEqual(third.data.checkoutSessionId, first.data.checkoutSessionId);
    });

    test('the same key with another body -> 400 DuplicateIdempotencyKey', async () => {
        const m = await h.newMerchant(emu);
        const key = h.idemKey();
        await m.client.createCheckoutSession(h.createPayload(m), { 'x-amz-pay-idempotency-key': key });
        const other = h.createPayload(m, { merchantMetadata: { merchantReferenceId: 'different' } });
        await h.expectApiError(m.client.createCheckoutSession(other, { 'x-amz-pay-idempotency-key': key }),
            400, 'DuplicateIdempotencyKey');
    });

    test('keys belong to one merchant: another merchant may reuse a key', async () => {
        const a = await h.newMerchant(emu);
        const b = await h.newMerchant(emu);
        const key = h.idemKey();
        const sa = await a.client.createCheckoutSession(h.createPayload(a), { 'x-amz-pay-idempotency-key': key });
        const sb = await b.client.createCheckoutSession(h.createPayload(b), { 'x-amz-pay-idempotency-key': key });
        assert.equal(sb.status, 201);
        assert.notEqual(sb.data.checkoutSessionId, sa.data.checkoutSessionId);
        assert.equal(sb.data.storeId, b.storeId);
    });

    test('Create Checkout Session without a key -> 400 MissingHeader', async () => {
        const m = await h.newMerchant(emu);
        await h.expectApiError(m.client.createCheckoutSession(h.createPayload(m)), 400,
            ['MissingHeader', 'MissingHeaderValue']);
    });

    test('Create Refund: replay returns the same refund; a missing key is refused', async () => {
        const m = await h.newMerchant(emu);
        const { completed } = await h.checkout(emu, m, { intent: 'AuthorizeWithCapture', amount: 1000 });
        const key = h.idemKey();
        const body = { chargeId: completed.chargeId, refundAmount: h.jpy(100) };
        const first = await m.client.createRefund(body, { 'x-amz-pay-idempotency-key': key });
        const second = await m.client.createRefund(body, { 'x-amz-pay-idempotency-key': key });
        assert.equal(first.status, 201);
        assert.equal(second.status, 201);
        assert.equal(second.data.refundId, first.data.refundId);

        // refundedAmount counts settled refunds: let the refund settle (30 emulator-seconds).
        await h.advanceClock(emu, 31);
        const charge = (await m.client.getCharge(completed.chargeId)).data;
        assert.deepEqual(charge.refundedAmount, h.jpy(100), 'the replay did not refund twice');

        await h.expectApiError(m.client.createRefund({ chargeId: completed.chargeId, refundAmount: h.jpy(200) },
            { 'x-amz-pay-idempotency-key': key }), 400, 'DuplicateIdempotencyKey');
        await h.expectApiError(m.client.createRefund(body), 400, ['MissingHeader', 'MissingHeaderValue']);
    });

    test('Capture replayed with the same key returns the stored response', async () => {
        const m = await h.newMerchant(emu);
        const { completed } = await h.checkout(emu, m, { amount: 1000 });
        const key = h.idemKey();
        const body = { captureAmount: h.jpy(1000) };
        const first = await m.client.captureCharge(completed.chargeId, body, { 'x-amz-pay-idempotency-key': key });
        const second = await m.client.captureCharge(completed.chargeId, body, { 'x-amz-pay-idempotency-key': key });
        assert.equal(first.status, 200);
        assert.equal(second.status, 200);
        assert.deepEqual(second.data, first.data);
    });
});
