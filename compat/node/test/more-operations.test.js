'use strict';

// Operations and features the emulator does not implement yet. Every test here is marked
// `todo` (node:test): it runs and is reported, but a failure does not fail the suite.
// Remove the `todo` option once the feature lands.

const { describe, test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const h = require('../lib/emulator');

const TODO = {}; // options shared by the tests below

let emu;
before(async () => { emu = await h.startEmulator(); });
after(async () => { if (emu) await emu.stop(); });

describe('Create Charge (POST /charges)', () => {
    test('captureNow on a Chargeable (Confirm) charge permission -> 201 Captured', TODO, async () => {
        const m = await h.newMerchant(emu);
        const { completed } = await h.checkout(emu, m, { intent: 'Confirm', amount: 1500 });
        const res = await m.client.createCharge({
            chargePermissionId: completed.chargePermissionId,
            chargeAmount: h.jpy(1500),
            captureNow: true,
            softDescriptor: 'KESSAI',
        }, { 'x-amz-pay-idempotency-key': h.idemKey() });
        assert.equal(res.status, 201);
        assert.equal(res.data.chargePermissionId, completed.chargePermissionId);
        assert.equal(res.data.statusDetails.state, 'Captured');
        assert.deepEqual(res.data.captureAmount, h.jpy(1500));
    });

    test('without captureNow -> 201 Authorized, then capturable', TODO, async () => {
        const m = await h.newMerchant(emu);
        const { completed } = await h.checkout(emu, m, { intent: 'Confirm', amount: 1500 });
        const res = await m.client.createCharge({ chargePermissionId: completed.chargePermissionId, chargeAmount: h.jpy(1000) },
            { 'x-amz-pay-idempotency-key': h.idemKey() });
        assert.equal(res.status, 201);
        assert.equal(res.data.statusDetails.state, 'Authorized');
        const cap = await m.client.captureCharge(res.data.chargeId, { captureAmount: h.jpy(1000) },
            { 'x-amz-pay-idempotency-key': h.idemKey() });
        assert.equal(cap.data.statusDetails.state, 'Captured');
    });

    test('replay with the same key returns the same charge; a missing key -> 400', TODO, async () => {
        const m = await h.newMerchant(emu);
        const { completed } = await h.checkout(emu, m, { intent: 'Confirm', amount: 1500 });
        const body = { chargePermissionId: completed.chargePermissionId, chargeAmount: h.jpy(1500), captureNow: true };
        const key = h.idemKey();
        const a = await m.client.createCharge(body, { 'x-amz-pay-idempotency-key': key });
        const b = await m.client.createCharge(body, { 'x-amz-pay-idempotency-key': key });
        assert.equal(b.data.chargeId, a.data.chargeId);
        await h.expectApiError(m.client.createCharge(body), 400, ['MissingHeader', 'MissingHeaderValue']);
    });

    test('above ¥10,000,000 -> 400 TransactionAmountExceeded', TODO, async () => {
        const m = await h.newMerchant(emu);
        const { completed } = await h.checkout(emu, m, { intent: 'Confirm', amount: 1500 });
        await h.expectApiError(m.client.createCharge(
            { chargePermissionId: completed.chargePermissionId, chargeAmount: h.jpy(10000001), captureNow: true },
            { 'x-amz-pay-idempotency-key': h.idemKey() }), 400, 'TransactionAmountExceeded');
    });
});

describe('Charge Permission updates', () => {
    test('Update Charge Permission merchantMetadata -> 200', TODO, async () => {
        const m = await h.newMerchant(emu);
        const { completed } = await h.checkout(emu, m, { intent: 'Confirm' });
        const res = await m.client.updateChargePermission(completed.chargePermissionId,
            { merchantMetadata: { merchantReferenceId: 'order-updated', noteToBuyer: 'updated' } });
        assert.equal(res.status, 200);
        assert.equal(res.data.merchantMetadata.merchantReferenceId, 'order-updated');
    });

    test('Close Charge Permission -> Closed/MerchantClosed; Create Charge then fails', TODO, async () => {
        const m = await h.newMerchant(emu);
        const { completed } = await h.checkout(emu, m, { intent: 'Confirm' });
        const res = await m.client.closeChargePermission(completed.chargePermissionId,
            { closureReason: 'No more charges required', cancelPendingCharges: false });
        assert.equal(res.status, 200);
        assert.equal(res.data.statusDetails.state, 'Closed');
        assert.equal(res.data.statusDetails.reasons[0].reasonCode, 'MerchantClosed');
        await h.expectApiError(m.client.createCharge(
            { chargePermissionId: completed.chargePermissionId, chargeAmount: h.jpy(1000), captureNow: true },
            { 'x-amz-pay-idempotency-key': h.idemKey() }), 422, 'InvalidChargePermissionStatus');
    });
});

describe('Get Buyer', () => {
    test('a token from the buyerTokens helper -> the buyer; an unknown token -> 404 ResourceNotFound', TODO, async () => {
        const m = await h.newMerchant(emu);
        const res = await fetch(`${emu.baseUrl}/test_helpers/buyerTokens`, {
            method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}',
        });
        assert.equal(res.status, 200);
        const { buyerToken, buyerId } = await res.json();
        const buyer = (await m.client.getBuyer(buyerToken)).data;
        assert.equal(buyer.buyerId, buyerId);
        assert.equal(buyer.countryCode, 'JP');
        assert.ok(buyer.email.includes('@'));
        assert.equal(buyer.shippingAddress.postalCode, buyer.postalCode);
        await h.expectApiError(m.client.getBuyer('not-a-real-buyer-token'), 404, 'ResourceNotFound');
    });
});

describe('simulation-code header (x-amz-pay-simulation-code)', () => {
    test('Complete with "Declined" on a visa-1111 session -> 422 CheckoutSessionCanceled, Canceled/Declined', TODO, async () => {
        const m = await h.newMerchant(emu);
        const { id } = await h.buyerReachesResultPage(emu, m, { amount: 1000 });
        await h.expectApiError(m.client.completeCheckoutSession(id, { chargeAmount: h.jpy(1000) },
            { 'x-amz-pay-simulation-code': 'Declined' }), 422, 'CheckoutSessionCanceled');
        const cs = (await m.client.getCheckoutSession(id)).data;
        assert.equal(cs.statusDetails.state, 'Canceled');
        assert.equal(cs.statusDetails.reasonCode, 'Declined');
    });

    test('a code unfit for the call -> 400 InvalidSandboxSimulationSpecified', TODO, async () => {
        const m = await h.newMerchant(emu);
        const s = await h.createSession(m);
        await h.expectApiError(m.client.getCheckoutSession(s.checkoutSessionId, { 'x-amz-pay-simulation-code': 'NoSuchCode' }),
            400, 'InvalidSandboxSimulationSpecified');
    });

    test('Create Charge with "HardDeclined" -> 422 HardDeclined', TODO, async () => {
        const m = await h.newMerchant(emu);
        const { completed } = await h.checkout(emu, m, { intent: 'Confirm' });
        await h.expectApiError(m.client.createCharge(
            { chargePermissionId: completed.chargePermissionId, chargeAmount: h.jpy(1000), captureNow: true },
            { 'x-amz-pay-idempotency-key': h.idemKey(), 'x-amz-pay-simulation-code': 'HardDeclined' }), 422, 'HardDeclined');
    });
});

describe('plain HTTP', () => {
    test('the SDK also works over plain HTTP on the same port (reference §13 interceptor)', async () => {
        const m = await h.newMerchant(emu);
        const s = await h.createSession(m);
        const before = process.env.KESSAI_SDK_PLAIN_HTTP === '1';
        h.setHttpRewrite(true);
        try {
            const res = await m.client.getCheckoutSession(s.checkoutSessionId);
            assert.equal(res.status, 200);
            assert.equal(res.data.checkoutSessionId, s.checkoutSessionId);
        } finally {
            h.setHttpRewrite(before);
        }
    });
});

describe('Finalize Checkout Session and Update Charge (PSP)', () => {
    test('Finalize after sign-in completes the session with an Authorized charge; Update Charge marks it ExpiredUnused', async () => {
        const m = await h.newMerchant(emu);
        const s = await h.createSession(m);
        const id = s.checkoutSessionId;
        await h.expectApiError(m.client.finalizeCheckoutSession(id, { chargeAmount: h.jpy(2500), paymentIntent: 'Authorize' }),
            422, 'InvalidCheckoutSessionStatus');
        await h.signIn(emu, id);
        const done = (await m.client.finalizeCheckoutSession(id, { chargeAmount: h.jpy(2500), paymentIntent: 'Authorize' })).data;
        assert.equal(done.statusDetails.state, 'Completed');
        const charge = (await m.client.getCharge(done.chargeId)).data;
        assert.equal(charge.statusDetails.state, 'Authorized');
        const expired = (await m.client.updateCharge(done.chargeId,
            { statusDetails: { state: 'Canceled', reasonCode: 'ExpiredUnused' } })).data;
        assert.equal(expired.statusDetails.state, 'Canceled');
        assert.equal(expired.statusDetails.reasonCode, 'ExpiredUnused');
        await h.expectApiError(m.client.updateCharge(done.chargeId,
            { statusDetails: { state: 'Canceled', reasonCode: 'ExpiredUnused' } }), 422, 'InvalidChargeStatus');
    });
});
