'use strict';

// Shapes of the returned objects (reference §4) and response headers (§1).

const { describe, test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const h = require('../lib/emulator');

let emu;
let m;
let flow;
let refund;
before(async () => {
    emu = await h.startEmulator();
    m = await h.newMerchant(emu);
    flow = await h.checkout(emu, m, { intent: 'AuthorizeWithCapture', amount: 1200 });
    refund = (await m.client.createRefund({ chargeId: flow.completed.chargeId, refundAmount: h.jpy(200) },
        { 'x-amz-pay-idempotency-key': h.idemKey() })).data;
});
after(async () => { if (emu) await emu.stop(); });

const CHECKOUT_SESSION_KEYS = [
    'checkoutSessionId', 'webCheckoutDetails', 'productType', 'paymentDetails', 'chargePermissionType', 'orderType',
    'recurringMetadata', 'paymentMethodOnFileMetadata', 'merchantDetails', 'merchantMetadata', 'supplementaryData',
    'buyer', 'billingAddress', 'paymentPreferences', 'statusDetails', 'shippingAddress', 'platformId',
    'chargePermissionId', 'chargeId', 'constraints', 'creationTimestamp', 'expirationTimestamp', 'storeId',
    'providerMetadata', 'releaseEnvironment', 'checkoutButtonText', 'deliverySpecifications', 'tokens',
];
const CHARGE_PERMISSION_KEYS = [
    'chargePermissionId', 'chargePermissionReferenceId', 'platformId', 'buyer', 'shippingAddress', 'billingAddress',
    'paymentPreferences', 'statusDetails', 'creationTimestamp', 'expirationTimestamp', 'merchantMetadata',
    'releaseEnvironment', 'limits', 'chargePermissionType', 'recurringMetadata', 'presentmentCurrency',
];
const CHARGE_KEYS = [
    'chargeId', 'chargeAmount', 'chargePermissionId', 'captureAmount', 'refundedAmount', 'softDescriptor',
    'providerMetadata', 'convertedAmount', 'conversionRate', 'channel', 'chargeInitiator', 'statusDetails',
    'creationTimestamp', 'expirationTimestamp', 'releaseEnvironment', 'merchantMetadata', 'platformId',
    'webCheckoutDetails',
];
const REFUND_KEYS = [
    'refundId', 'chargeId', 'creationTimestamp', 'refundAmount', 'statusDetails', 'softDescriptor', 'releaseEnvironment',
];

const sameSet = (obj, keys) =>
    assert.deepEqual(Object.keys(obj).slice().sort(), keys.slice().sort(), `keys of ${JSON.stringify(Object.keys(obj))}`);

const TS = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$|^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(\.\d+)?Z$/;
function unixOf(ts) {
    const mt = TS.exec(ts);
    assert.ok(mt, `timestamp ${ts}`);
    const p = mt[1] ? mt.slice(1, 7) : mt.slice(7, 13);
    return Date.UTC(+p[0], +p[1] - 1, +p[2], +p[3], +p[4], +p[5]) / 1000;
}

describe('object shapes', () => {
    test('Checkout Session has exactly the documented keys', async () => {
        const cs = (await m.client.getCheckoutSession(flow.id)).data;
        sameSet(cs, CHECKOUT_SESSION_KEYS);
    });

    test('Checkout Session keys come in the documented order (the SDK tests compare Object.keys strictly)', async () => {
        const cs = (await m.client.getCheckoutSession(flow.id)).data;
        h.assertKeyOrder(cs, CHECKOUT_SESSION_KEYS, ['shippingAddressList']);
    });

    test('Charge Permission, Charge and Refund have the documented keys', async () => {
        sameSet((await m.client.getChargePermission(flow.completed.chargePermissionId)).data, CHARGE_PERMISSION_KEYS);
        sameSet((await m.client.getCharge(flow.completed.chargeId)).data, CHARGE_KEYS);
        sameSet((await m.client.getRefund(refund.refundId)).data, REFUND_KEYS);
    });

    test('sandbox objects carry releaseEnvironment "Sandbox" (Checkout Session, Charge Permission, Charge, Refund)', async () => {
        const got = {
            checkoutSession: (await m.client.getCheckoutSession(flow.id)).data.releaseEnvironment,
            chargePermission: (await m.client.getChargePermission(flow.completed.chargePermissionId)).data.releaseEnvironment,
            charge: (await m.client.getCharge(flow.completed.chargeId)).data.releaseEnvironment,
            refund: (await m.client.getRefund(refund.refundId)).data.releaseEnvironment,
        };
        assert.deepEqual(got, { checkoutSession: 'Sandbox', chargePermission: 'Sandbox', charge: 'Sandbox', refund: 'Sandbox' });
    });

    test('Charge Permission statusDetails has a reasons list (or null), not reasonCode', async () => {
        const cp = (await m.client.getChargePermission(flow.completed.chargePermissionId)).data;
        assert.ok(cp.statusDetails.reasons === null || Array.isArray(cp.statusDetails.reasons));
        assert.equal('reasonCode' in cp.statusDetails, false);
        assert.deepEqual(cp.limits.amountLimit, h.jpy(1200));
    });

    test('prices are strings; timestamps UTC; expirations: CS +24 h, charge +30 days, CP +180 days', async () => {
        const cs = (await m.client.getCheckoutSession(flow.id)).data;
        assert.equal(typeof cs.paymentDetails.chargeAmount.amount, 'string');
        assert.equal(unixOf(cs.expirationTimestamp) - unixOf(cs.creationTimestamp), 24 * 3600);
        const charge = (await m.client.getCharge(flow.completed.chargeId)).data;
        assert.equal(unixOf(charge.expirationTimestamp) - unixOf(charge.creationTimestamp), 30 * 24 * 3600);
        const cp = (await m.client.getChargePermission(flow.completed.chargePermissionId)).data;
        assert.equal(unixOf(cp.expirationTimestamp) - unixOf(cp.creationTimestamp), 180 * 24 * 3600);
        unixOf(refund.creationTimestamp);
        unixOf(refund.statusDetails.lastUpdatedTimestamp);
    });

    test('every API response carries x-amz-pay-request-id (success and error)', async () => {
        const ok = await m.client.getCharge(flow.completed.chargeId);
        assert.ok(ok.headers['x-amz-pay-request-id'], `success headers: ${JSON.stringify(ok.headers)}`);
        const err = await h.expectApiError(m.client.getCharge('S01-0000000-0000000-C000000'), 404, 'ResourceNotFound');
        assert.ok(err.headers['x-amz-pay-request-id'], `error headers: ${JSON.stringify(err.headers)}`);
    });

    test('responses are application/json', async () => {
        const ok = await m.client.getCheckoutSession(flow.id);
        assert.match(ok.headers['content-type'], /^application\/json/);
    });
});

describe('emulator process', () => {
    test('the first stdout line is the listening line', () => {
        assert.match(emu.stdoutBeforeReady[0], /^kessai sandbox listening on http:\/\/127\.0\.0\.1:\d+$/,
            `stdout before ready: ${JSON.stringify(emu.stdoutBeforeReady)}`);
    });
});
