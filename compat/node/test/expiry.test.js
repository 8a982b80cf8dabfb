'use strict';

// Time-driven transitions with the emulator clock (reference §5, §8).

const { describe, test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const h = require('../lib/emulator');

const DAY = 24 * 3600;

let emu;
before(async () => { emu = await h.startEmulator(); });
after(async () => { if (emu) await emu.stop(); });

describe('expiry', () => {
    test('an open checkout session expires after 24 h -> Canceled/Expired', async () => {
        const m = await h.newMerchant(emu);
        const s = await h.createSession(m);
        const id = s.checkoutSessionId;
        await h.signIn(emu, id);

        await h.advanceClock(emu, DAY - 10);
        assert.equal((await m.client.getCheckoutSession(id)).data.statusDetails.state, 'Open');

        await h.advanceClock(emu, 11);
        const cs = (await m.client.getCheckoutSession(id)).data;
        assert.equal(cs.statusDetails.state, 'Canceled', JSON.stringify(cs.statusDetails));
        assert.equal(cs.statusDetails.reasonCode, 'Expired');
        await h.expectApiError(m.client.updateCheckoutSession(id, h.updatePayload()), 422, 'InvalidCheckoutSessionStatus');
    });

    test('a completed checkout session does not expire', async () => {
        const m = await h.newMerchant(emu);
        const { id } = await h.checkout(emu, m);
        await h.advanceClock(emu, DAY + 1);
        assert.equal((await m.client.getCheckoutSession(id)).data.statusDetails.state, 'Completed');
    });

    test('an unused authorization expires after 30 days -> Canceled/ExpiredUnused', async () => {
        const m = await h.newMerchant(emu);
        const { completed } = await h.checkout(emu, m, { amount: 1000 });
        await h.advanceClock(emu, 30 * DAY - 60);
        assert.equal((await m.client.getCharge(completed.chargeId)).data.statusDetails.state, 'Authorized');

        await h.advanceClock(emu, 61);
        const charge = (await m.client.getCharge(completed.chargeId)).data;
        assert.equal(charge.statusDetails.state, 'Canceled', JSON.stringify(charge.statusDetails));
        assert.equal(charge.statusDetails.reasonCode, 'ExpiredUnused');
        await h.expectApiError(m.client.captureCharge(completed.chargeId, { captureAmount: h.jpy(1000) },
            { 'x-amz-pay-idempotency-key': h.idemKey() }), 422, 'InvalidChargeStatus');
    });

    test('a refund stays RefundInitiated for 30 s, then Refunded', async () => {
        const m = await h.newMerchant(emu);
        const { completed } = await h.checkout(emu, m, { intent: 'AuthorizeWithCapture', amount: 1000 });
        const refund = (await m.client.createRefund({ chargeId: completed.chargeId, refundAmount: h.jpy(1000) },
            { 'x-amz-pay-idempotency-key': h.idemKey() })).data;
        await h.advanceClock(emu, 20);
        assert.equal((await m.client.getRefund(refund.refundId)).data.statusDetails.state, 'RefundInitiated');
        await h.advanceClock(emu, 11);
        assert.equal((await m.client.getRefund(refund.refundId)).data.statusDetails.state, 'Refunded');
    });

    test('signatures are checked against the wall clock, not the emulator clock', async () => {
        // After moving the emulator clock by weeks, fresh SDK requests (dated now) still pass.
        const clock = await h.getClock(emu);
        assert.ok(clock.offsetSeconds > DAY, JSON.stringify(clock));
        const m = await h.newMerchant(emu);
        const s = await h.createSession(m);
        assert.equal((await m.client.getCheckoutSession(s.checkoutSessionId)).status, 200);
    });
});
