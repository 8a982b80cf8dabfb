'use strict';

// The happy paths of the Checkout v2 buyer flow, driven by the unmodified Amazon Pay Node SDK.

const { describe, test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const h = require('../lib/emulator');

let emu;
before(async () => { emu = await h.startEmulator(); });
after(async () => { if (emu) await emu.stop(); });

describe('buyer flow', () => {
    test('Authorize: create -> sign in -> update -> confirm -> complete -> capture -> refund -> Refunded after 30 s', async () => {
        const m = await h.newMerchant(emu);

        // Create Checkout Session (201) as the button would.
        const created = await m.client.createCheckoutSession(h.createPayload(m), {
            'x-amz-pay-idempotency-key': h.idemKey(),
        });
        assert.equal(created.status, 201);
        const id = created.data.checkoutSessionId;
        assert.match(id, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
        assert.equal(created.data.statusDetails.state, 'Open');
        assert.equal(created.data.storeId, m.storeId);
        assert.equal(created.data.webCheckoutDetails.checkoutReviewReturnUrl, h.REVIEW_URL);
        assert.equal(created.data.webCheckoutDetails.amazonPayRedirectUrl, null);
        assert.equal(created.data.releaseEnvironment, 'Sandbox');

        // The buyer signs in and comes back to the review page.
        const signedIn = await h.signIn(emu, id, { paymentMethod: 'visa-1111' });
        assert.equal(signedIn.redirectUrl, `${h.REVIEW_URL}?amazonCheckoutSessionId=${id}`);

        const got = await m.client.getCheckoutSession(id);
        assert.equal(got.status, 200);
        assert.equal(got.data.checkoutSessionId, id);
        assert.equal(got.data.statusDetails.state, 'Open');
        assert.match(got.data.buyer.buyerId, /^amzn1\.account\./);
        assert.equal(typeof got.data.buyer.email, 'string');
        assert.equal(got.data.shippingAddress.countryCode, 'JP');
        assert.deepEqual(got.data.paymentPreferences, [{ paymentDescriptor: 'Visa ****1111' }]);

        // Update: payment details and the result page make amazonPayRedirectUrl appear.
        const updated = await m.client.updateCheckoutSession(id, h.updatePayload({ intent: 'Authorize', amount: 1000, ref: 'order-1' }));
        assert.equal(updated.status, 200);
        assert.equal(typeof updated.data.webCheckoutDetails.amazonPayRedirectUrl, 'string');
        assert.ok(updated.data.webCheckoutDetails.amazonPayRedirectUrl.length > 0);
        assert.equal(updated.data.webCheckoutDetails.checkoutResultReturnUrl, h.RESULT_URL);
        assert.equal(updated.data.paymentDetails.paymentIntent, 'Authorize');
        assert.deepEqual(updated.data.paymentDetails.chargeAmount, h.jpy(1000));
        assert.equal(updated.data.merchantMetadata.merchantReferenceId, 'order-1');
        assert.deepEqual(updated.data.constraints, []);

        // The buyer confirms on Amazon's page and lands on the result page.
        const confirmed = await h.buyerConfirm(emu, id);
        assert.equal(confirmed.redirectUrl, `${h.RESULT_URL}?amazonCheckoutSessionId=${id}`);

        // Complete.
        const completed = await m.client.completeCheckoutSession(id, { chargeAmount: h.jpy(1000) });
        assert.equal(completed.status, 200);
        assert.equal(completed.data.statusDetails.state, 'Completed');
        const cpId = completed.data.chargePermissionId;
        const chargeId = completed.data.chargeId;
        assert.match(cpId, /^[BP]01-\d{7}-\d{7}$/);
        assert.match(chargeId, /^S01-\d{7}-\d{7}-C\d{6}$/);

        // Charge permission.
        const cp = await m.client.getChargePermission(cpId);
        assert.equal(cp.status, 200);
        assert.equal(cp.data.chargePermissionId, cpId);
        assert.equal(cp.data.statusDetails.state, 'Chargeable');
        assert.equal(cp.data.chargePermissionType, 'OneTime');
        assert.equal(cp.data.chargePermissionReferenceId, 'order-1');
        assert.deepEqual(cp.data.limits.amountLimit, h.jpy(1000));
        assert.equal(cp.data.presentmentCurrency, 'JPY');
        assert.equal(cp.data.releaseEnvironment, 'Sandbox');

        // Charge: Authorized.
        const charge = await m.client.getCharge(chargeId);
        assert.equal(charge.status, 200);
        assert.equal(charge.data.chargeId, chargeId);
        assert.equal(charge.data.chargePermissionId, cpId);
        assert.deepEqual(charge.data.chargeAmount, h.jpy(1000));
        assert.equal(charge.data.statusDetails.state, 'Authorized');
        assert.equal(charge.data.captureAmount, null);

        // Capture the whole amount.
        const captured = await m.client.captureCharge(chargeId,
            { captureAmount: h.jpy(1000), softDescriptor: 'KESSAI TEST' },
            { 'x-amz-pay-idempotency-key': h.idemKey() });
        assert.equal(captured.status, 200);
        assert.equal(captured.data.chargeId, chargeId);
        assert.equal(captured.data.statusDetails.state, 'Captured');
        assert.deepEqual(captured.data.captureAmount, h.jpy(1000));
        assert.equal(captured.data.softDescriptor, 'KESSAI TEST');

        // Refund part of it.
        const refund = await m.client.createRefund(
            { chargeId, refundAmount: h.jpy(300), softDescriptor: 'KESSAI REFUND' },
            { 'x-amz-pay-idempotency-key': h.idemKey() });
        assert.equal(refund.status, 201);
        const refundId = refund.data.refundId;
        assert.match(refundId, /^S01-\d{7}-\d{7}-R\d{6}$/);
        assert.equal(refund.data.chargeId, chargeId);
        assert.deepEqual(refund.data.refundAmount, h.jpy(300));
        assert.equal(refund.data.statusDetails.state, 'RefundInitiated');

        const pending = await m.client.getRefund(refundId);
        assert.equal(pending.data.statusDetails.state, 'RefundInitiated');

        await h.advanceClock(emu, 31);
        const done = await m.client.getRefund(refundId);
        assert.equal(done.status, 200);
        assert.equal(done.data.refundId, refundId);
        assert.equal(done.data.statusDetails.state, 'Refunded');

        const after = await m.client.getCharge(chargeId);
        assert.equal(after.data.statusDetails.state, 'Captured');
        assert.deepEqual(after.data.refundedAmount, h.jpy(300));
    });

    test('AuthorizeWithCapture: Complete returns a Captured charge; it can be fully refunded', async () => {
        const m = await h.newMerchant(emu);
        const { completed } = await h.checkout(emu, m, { intent: 'AuthorizeWithCapture', amount: 2500 });
        assert.equal(completed.statusDetails.state, 'Completed');
        assert.ok(completed.chargeId, 'chargeId set');
        const charge = (await m.client.getCharge(completed.chargeId)).data;
        assert.equal(charge.statusDetails.state, 'Captured');
        assert.deepEqual(charge.chargeAmount, h.jpy(2500));
        assert.deepEqual(charge.captureAmount, h.jpy(2500));

        const refund = await m.client.createRefund({ chargeId: completed.chargeId, refundAmount: h.jpy(2500) },
            { 'x-amz-pay-idempotency-key': h.idemKey() });
        assert.equal(refund.status, 201);
        assert.equal(refund.data.statusDetails.state, 'RefundInitiated');
    });

    test('Confirm: Complete gives a Chargeable charge permission and no charge', async () => {
        const m = await h.newMerchant(emu);
        const { completed } = await h.checkout(emu, m, { intent: 'Confirm', amount: 800 });
        assert.equal(completed.statusDetails.state, 'Completed');
        assert.ok(completed.chargePermissionId);
        assert.equal(completed.chargeId, null);
        const cp = (await m.client.getChargePermission(completed.chargePermissionId)).data;
        assert.equal(cp.statusDetails.state, 'Chargeable');
    });

    test('partial capture of an authorization', async () => {
        const m = await h.newMerchant(emu);
        const { completed } = await h.checkout(emu, m, { amount: 1000 });
        const captured = await m.client.captureCharge(completed.chargeId, { captureAmount: h.jpy(600) },
            { 'x-amz-pay-idempotency-key': h.idemKey() });
        assert.equal(captured.data.statusDetails.state, 'Captured');
        assert.deepEqual(captured.data.captureAmount, h.jpy(600));
        assert.deepEqual(captured.data.chargeAmount, h.jpy(1000));
    });

    test('cancel an authorized charge -> Canceled/MerchantCanceled; it can no longer be captured', async () => {
        const m = await h.newMerchant(emu);
        const { completed } = await h.checkout(emu, m);
        const canceled = await m.client.cancelCharge(completed.chargeId, { cancellationReason: 'Out of stock' });
        assert.equal(canceled.status, 200);
        assert.equal(canceled.data.chargeId, completed.chargeId);
        assert.equal(canceled.data.statusDetails.state, 'Canceled');
        assert.equal(canceled.data.statusDetails.reasonCode, 'MerchantCanceled');

        const got = (await m.client.getCharge(completed.chargeId)).data;
        assert.equal(got.statusDetails.state, 'Canceled');

        await h.expectApiError(
            m.client.captureCharge(completed.chargeId, { captureAmount: h.jpy(1000) }, { 'x-amz-pay-idempotency-key': h.idemKey() }),
            422, 'InvalidChargeStatus');
        await h.expectApiError(m.client.cancelCharge(completed.chargeId, { cancellationReason: 'again' }),
            422, 'InvalidChargeStatus');
    });

    test('a captured charge cannot be canceled (422 InvalidChargeStatus)', async () => {
        const m = await h.newMerchant(emu);
        const { completed } = await h.checkout(emu, m, { intent: 'AuthorizeWithCapture' });
        await h.expectApiError(m.client.cancelCharge(completed.chargeId, { cancellationReason: 'late' }),
            422, 'InvalidChargeStatus');
    });

    test('other test payment methods succeed: mc-4444 and jcb-0005', async () => {
        for (const [method, descriptor] of [['mc-4444', 'Mastercard ****4444'], ['jcb-0005', 'JCB ****0005']]) {
            const m = await h.newMerchant(emu);
            const { completed } = await h.checkout(emu, m, { paymentMethod: method });
            assert.equal(completed.statusDetails.state, 'Completed', method);
            assert.deepEqual(completed.paymentPreferences, [{ paymentDescriptor: descriptor }], method);
            const charge = (await m.client.getCharge(completed.chargeId)).data;
            assert.equal(charge.statusDetails.state, 'Authorized', method);
        }
    });

    test('OneTime charge permission is Closed once the order total is captured (reference §5)', async () => {
        const m = await h.newMerchant(emu);
        const { completed } = await h.checkout(emu, m, { amount: 1000 });
        await m.client.captureCharge(completed.chargeId, { captureAmount: h.jpy(1000) },
            { 'x-amz-pay-idempotency-key': h.idemKey() });
        const cp = (await m.client.getChargePermission(completed.chargePermissionId)).data;
        assert.equal(cp.statusDetails.state, 'Closed', JSON.stringify(cp.statusDetails));
    });
});
