'use strict';

// Sandbox simulation by test payment method (reference §12) and buyer cancellation.

const { describe, test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const h = require('../lib/emulator');

let emu;
before(async () => { emu = await h.startEmulator(); });
after(async () => { if (emu) await emu.stop(); });

async function assertCanceled(m, id, reasonCode) {
    const cs = (await m.client.getCheckoutSession(id)).data;
    assert.equal(cs.statusDetails.state, 'Canceled', JSON.stringify(cs.statusDetails));
    assert.equal(cs.statusDetails.reasonCode, reasonCode, JSON.stringify(cs.statusDetails));
    assert.equal(cs.chargePermissionId, null);
    assert.equal(cs.chargeId, null);
}

describe('declines and cancellations', () => {
    test('visa-3434 is declined: Complete -> 422 CheckoutSessionCanceled; Get CS Canceled/Declined', async () => {
        const m = await h.newMerchant(emu);
        const { id } = await h.buyerReachesResultPage(emu, m, { paymentMethod: 'visa-3434', amount: 1000 });
        await h.expectApiError(m.client.completeCheckoutSession(id, { chargeAmount: h.jpy(1000) }),
            422, 'CheckoutSessionCanceled');
        await assertCanceled(m, id, 'Declined');
        await h.expectApiError(m.client.updateCheckoutSession(id, { merchantMetadata: { noteToBuyer: 'x' } }),
            422, 'InvalidCheckoutSessionStatus');
    });

    test('visa-3064: the buyer cancels -> Complete 422 CheckoutSessionCanceled; Canceled/BuyerCanceled', async () => {
        const m = await h.newMerchant(emu);
        const { id } = await h.buyerReachesResultPage(emu, m, { paymentMethod: 'visa-3064', amount: 1000 });
        await h.expectApiError(m.client.completeCheckoutSession(id, { chargeAmount: h.jpy(1000) }),
            422, 'CheckoutSessionCanceled');
        await assertCanceled(m, id, 'BuyerCanceled');
    });

    test('the buyer cancels on the Amazon page (cancel helper) -> Canceled/BuyerCanceled', async () => {
        const m = await h.newMerchant(emu);
        const s = await h.createSession(m);
        const id = s.checkoutSessionId;
        await h.signIn(emu, id);
        await m.client.updateCheckoutSession(id, h.updatePayload({ amount: 1000 }));
        await h.buyerCancel(emu, id);
        await assertCanceled(m, id, 'BuyerCanceled');
        await h.expectApiError(m.client.completeCheckoutSession(id, { chargeAmount: h.jpy(1000) }),
            422, 'CheckoutSessionCanceled');
    });
});

describe('pending authorizations (canHandlePendingAuthorization)', () => {
    test('visa-0701: AuthorizationInitiated, then Authorized after 30 s', async () => {
        const m = await h.newMerchant(emu);
        const { completed, completeStatus } = await h.checkout(emu, m,
            { paymentMethod: 'visa-0701', intent: 'Authorize', canHandlePendingAuthorization: true, amount: 1000 });
        assert.ok([200, 202].includes(completeStatus), `Complete status ${completeStatus}`);
        assert.ok(completed.chargeId);
        const charge = (await m.client.getCharge(completed.chargeId)).data;
        assert.equal(charge.statusDetails.state, 'AuthorizationInitiated');
        await h.expectApiError(m.client.captureCharge(completed.chargeId, { captureAmount: h.jpy(1000) },
            { 'x-amz-pay-idempotency-key': h.idemKey() }), 422, 'InvalidChargeStatus');

        await h.advanceClock(emu, 31);
        const later = (await m.client.getCharge(completed.chargeId)).data;
        assert.equal(later.statusDetails.state, 'Authorized');
        const captured = await m.client.captureCharge(completed.chargeId, { captureAmount: h.jpy(1000) },
            { 'x-amz-pay-idempotency-key': h.idemKey() });
        assert.equal(captured.data.statusDetails.state, 'Captured');
    });

    test('visa-4354: AuthorizationInitiated, then Declined/HardDeclined after 30 s', async () => {
        const m = await h.newMerchant(emu);
        const { completed } = await h.checkout(emu, m,
            { paymentMethod: 'visa-4354', intent: 'Authorize', canHandlePendingAuthorization: true, amount: 1000 });
        const charge = (await m.client.getCharge(completed.chargeId)).data;
        assert.equal(charge.statusDetails.state, 'AuthorizationInitiated');
        await h.advanceClock(emu, 31);
        const later = (await m.client.getCharge(completed.chargeId)).data;
        assert.equal(later.statusDetails.state, 'Declined');
        assert.equal(later.statusDetails.reasonCode, 'HardDeclined');
    });
});
