'use strict';

// The checkout.js button's signed payload (reference §2.5, §11), signed by the SDK's own
// generateButtonSignature and posted as the emulator's checkout.js double posts it
// (/checkout/start): the emulator verifies it with the key registry and creates the session;
// a tampered payload, a wrong key and another store's payload are refused with a page.

const { describe, test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const h = require('../lib/emulator');

let emu;
before(async () => { emu = await h.startEmulator(); });
after(async () => { if (emu) await emu.stop(); });

function payloadOf(m, amount = 1500) {
    return {
        webCheckoutDetails: { checkoutReviewReturnUrl: h.REVIEW_URL },
        storeId: m.storeId,
        chargePermissionType: 'OneTime',
        paymentDetails: { paymentIntent: 'Authorize', chargeAmount: h.jpy(amount) },
        merchantMetadata: { merchantReferenceId: 'node-button-1' },
    };
}

/** Posts a button form the way checkout.js does; resolves to { status, location, text }. */
async function press(fields) {
    const r = await fetch(`${emu.baseUrl}/checkout/start`, {
        method: 'POST',
        body: new URLSearchParams(fields),
        redirect: 'manual',
    });
    return { status: r.status, location: r.headers.get('location'), text: await r.text() };
}

function form(m, payloadJSON, signature, algorithm, extra = {}) {
    return {
        payloadJSON,
        signature,
        publicKeyId: m.publicKeyId,
        algorithm,
        merchantId: m.merchantId,
        ledgerCurrency: 'JPY',
        checkoutLanguage: 'ja_JP',
        productType: 'PayAndShip',
        placement: 'Checkout',
        sandbox: 'true',
        ...extra,
    };
}

describe('checkout.js button payloads signed by generateButtonSignature', () => {
    for (const algorithm of ['AMZN-PAY-RSASSA-PSS', 'AMZN-PAY-RSASSA-PSS-V2']) {
        test(`${algorithm}: the emulator verifies it and creates the session from it`, async () => {
            const m = await h.newMerchant(emu, { algorithm });
            const payload = payloadOf(m);
            // The SDK JSON.stringifies an object; the page hands the script that same string.
            const signature = m.client.generateButtonSignature(payload);
            const r = await press(form(m, JSON.stringify(payload), signature, algorithm));
            assert.equal(r.status, 303, r.text);
            const location = new URL(r.location);
            assert.equal(location.pathname, '/checkout/signin');
            const id = location.searchParams.get('amazonCheckoutSessionId');
            const got = await m.client.getCheckoutSession(id);
            assert.equal(got.status, 200);
            assert.equal(got.data.storeId, m.storeId);
            assert.equal(got.data.webCheckoutDetails.checkoutReviewReturnUrl, h.REVIEW_URL);
            assert.deepEqual(got.data.paymentDetails.chargeAmount, h.jpy(1500));
            assert.equal(got.data.merchantMetadata.merchantReferenceId, 'node-button-1');
            assert.equal(got.data.statusDetails.state, 'Open');
        });
    }

    test('a string payload is signed as it is', async () => {
        const m = await h.newMerchant(emu, { algorithm: 'AMZN-PAY-RSASSA-PSS-V2' });
        const text = JSON.stringify(payloadOf(m), null, 2);
        const signature = m.client.generateButtonSignature(text);
        const r = await press(form(m, text, signature, 'AMZN-PAY-RSASSA-PSS-V2'));
        assert.equal(r.status, 303, r.text);
    });

    test('refused: a tampered payload, a wrong key, a wrong algorithm name, another store', async () => {
        const m = await h.newMerchant(emu, { algorithm: 'AMZN-PAY-RSASSA-PSS-V2' });
        const other = await h.newMerchant(emu, { algorithm: 'AMZN-PAY-RSASSA-PSS-V2' });
        const v2 = 'AMZN-PAY-RSASSA-PSS-V2';
        const payload = JSON.stringify(payloadOf(m));
        const signature = m.client.generateButtonSignature(payload);

        const tampered = payload.replace('"1500"', '"15"');
        assert.notEqual(tampered, payload);
        let r = await press(form(m, tampered, signature, v2));
        assert.equal(r.status, 403);
        assert.match(r.text, /signature does not match payloadJSON/);

        // Signed with the other merchant's private key, sent with this merchant's key id.
        r = await press(form(m, payload, other.client.generateButtonSignature(payload), v2));
        assert.equal(r.status, 403);
        assert.match(r.text, /signature does not match payloadJSON/);

        // V2's salt checked as the legacy algorithm's.
        r = await press(form(m, payload, signature, 'AMZN-PAY-RSASSA-PSS'));
        assert.equal(r.status, 403);

        // The other merchant's store in a payload this merchant signed.
        const foreign = JSON.stringify({ ...payloadOf(m), storeId: other.storeId });
        r = await press(form(m, foreign, m.client.generateButtonSignature(foreign), v2));
        assert.equal(r.status, 400);
        assert.match(r.text, /storeId/);

        // This merchant's payload presented as the other merchant's button.
        r = await press(form(m, payload, signature, v2, { merchantId: other.merchantId }));
        assert.equal(r.status, 403);
        assert.match(r.text, /is not the merchant of publicKeyId/);
    });

    test('the emulator serves checkout.js with amazon.Pay', async () => {
        const r = await fetch(`${emu.baseUrl}/checkout.js`);
        assert.equal(r.status, 200);
        assert.match(r.headers.get('content-type'), /^text\/javascript/);
        const text = await r.text();
        for (const name of ['renderButton', 'initCheckout', 'bindChangeAction', 'signout']) {
            assert.ok(text.includes(name), name);
        }
    });
});
