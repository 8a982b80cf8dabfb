'use strict';

// Request signing as the Node SDK does it (reference §2): both algorithm names, wrong keys,
// unknown key ids, tampered bodies.

const { describe, test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const h = require('../lib/emulator');

let emu;
before(async () => { emu = await h.startEmulator(); });
after(async () => { if (emu) await emu.stop(); });

describe('signatures', () => {
    test('the SDK default algorithm is AMZN-PAY-RSASSA-PSS and the emulator accepts it', async () => {
        const m = await h.newMerchant(emu);
        const signed = m.client.getSignedHeaders({ method: 'GET', urlFragment: 'charges/x', headers: {} });
        assert.match(signed.authorization, /^AMZN-PAY-RSASSA-PSS PublicKeyId=SANDBOX-[^,]+, SignedHeaders=[^,]+, Signature=.+$/);
        const s = await h.createSession(m);
        const got = await m.client.getCheckoutSession(s.checkoutSessionId);
        assert.equal(got.status, 200);
    });

    test("algorithm 'AMZN-PAY-RSASSA-PSS-V2' (salt 32): a whole Authorize flow with capture and refund", async () => {
        const m = await h.newMerchant(emu, { algorithm: 'AMZN-PAY-RSASSA-PSS-V2' });
        const signed = m.client.getSignedHeaders({ method: 'GET', urlFragment: 'charges/x', headers: {} });
        assert.match(signed.authorization, /^AMZN-PAY-RSASSA-PSS-V2 PublicKeyId=/);

        const { completed } = await h.checkout(emu, m, { amount: 3000 });
        assert.equal(completed.statusDetails.state, 'Completed');
        const captured = await m.client.captureCharge(completed.chargeId, { captureAmount: h.jpy(3000) },
            { 'x-amz-pay-idempotency-key': h.idemKey() });
        assert.equal(captured.data.statusDetails.state, 'Captured');
        const refund = await m.client.createRefund({ chargeId: completed.chargeId, refundAmount: h.jpy(1000) },
            { 'x-amz-pay-idempotency-key': h.idemKey() });
        assert.equal(refund.status, 201);
        assert.equal((await m.client.getRefund(refund.data.refundId)).status, 200);
    });

    test('the same key may sign with either algorithm', async () => {
        const m = await h.newMerchant(emu);
        const v2 = new h.Client.WebStoreClient({ ...m.config, algorithm: 'AMZN-PAY-RSASSA-PSS-V2' });
        const v1 = new h.Client.WebStoreClient({ ...m.config, algorithm: 'AMZN-PAY-RSASSA-PSS' });
        const s = await h.createSession(m);
        assert.equal((await v2.getCheckoutSession(s.checkoutSessionId)).status, 200);
        assert.equal((await v1.getCheckoutSession(s.checkoutSessionId)).status, 200);
    });

    test('an unknown public key id -> 401 UnauthorizedAccess', async () => {
        const { privateKey } = h.rsaKeyPair();
        const client = new h.Client.WebStoreClient(
            h.clientConfig(emu, 'SANDBOX-AAAAAAAAAAAAAAAAAAAAAAAA', privateKey));
        await h.expectApiError(client.getCharge('S01-0000000-0000000-C000000'), 401, 'UnauthorizedAccess');
        await h.expectApiError(client.createCheckoutSession({ webCheckoutDetails: { checkoutReviewReturnUrl: h.REVIEW_URL }, storeId: 'x' },
            { 'x-amz-pay-idempotency-key': h.idemKey() }), 401, 'UnauthorizedAccess');
    });

    test('a registered key id signed with another private key -> 403 InvalidRequestSignature', async () => {
        const m = await h.newMerchant(emu);
        const { privateKey: wrong } = h.rsaKeyPair();
        const client = new h.Client.WebStoreClient(h.clientConfig(emu, m.publicKeyId, wrong));
        await h.expectApiError(client.createCheckoutSession(h.createPayload(m), { 'x-amz-pay-idempotency-key': h.idemKey() }),
            403, 'InvalidRequestSignature');
        const s = await h.createSession(m);
        await h.expectApiError(client.getCheckoutSession(s.checkoutSessionId), 403, 'InvalidRequestSignature');
        // The same with V2.
        const clientV2 = new h.Client.WebStoreClient(h.clientConfig(emu, m.publicKeyId, wrong, { algorithm: 'AMZN-PAY-RSASSA-PSS-V2' }));
        await h.expectApiError(clientV2.getCheckoutSession(s.checkoutSessionId), 403, 'InvalidRequestSignature');
    });

    test("another merchant's key id with this merchant's private key -> 403 InvalidRequestSignature", async () => {
        const a = await h.newMerchant(emu);
        const b = await h.newMerchant(emu);
        const client = new h.Client.WebStoreClient(h.clientConfig(emu, b.publicKeyId, a.privateKey));
        await h.expectApiError(client.getCharge('S01-0000000-0000000-C000000'), 403, 'InvalidRequestSignature');
    });

    test('a body changed after signing -> 403 InvalidRequestSignature', async () => {
        const m = await h.newMerchant(emu);
        const body = JSON.stringify(h.createPayload(m));
        const options = { method: 'POST', urlFragment: 'checkoutSessions', payload: body,
            headers: { 'x-amz-pay-idempotency-key': h.idemKey() } };
        const signed = m.client.getSignedHeaders(options);
        const tampered = body.replace(h.REVIEW_URL, 'https://evil.example/review');
        const res = await fetch(`${emu.baseUrl}/${options.urlFragment}`, { method: 'POST', headers: signed, body: tampered });
        const data = await res.json();
        assert.equal(res.status, 403, JSON.stringify(data));
        assert.equal(data.reasonCode, 'InvalidRequestSignature');

        // The untouched body with the same headers is accepted.
        const ok = await fetch(`${emu.baseUrl}/${options.urlFragment}`, { method: 'POST', headers: signed, body });
        assert.equal(ok.status, 201, JSON.stringify(await ok.json()));
    });

    test('a signed header changed after signing -> 403 InvalidRequestSignature', async () => {
        const m = await h.newMerchant(emu);
        const body = JSON.stringify(h.createPayload(m));
        const options = { method: 'POST', urlFragment: 'checkoutSessions', payload: body,
            headers: { 'x-amz-pay-idempotency-key': h.idemKey() } };
        const signed = m.client.getSignedHeaders(options);
        signed['x-amz-pay-idempotency-key'] = h.idemKey();
        const res = await fetch(`${emu.baseUrl}/${options.urlFragment}`, { method: 'POST', headers: signed, body });
        const data = await res.json();
        assert.equal(res.status, 403, JSON.stringify(data));
        assert.equal(data.reasonCode, 'InvalidRequestSignature');
    });

    test('an unsigned API request -> 400 MissingHeader', async () => {
        const res = await fetch(`${emu.baseUrl}/v2/charges/S01-0000000-0000000-C000000`, {
            headers: { accept: 'application/json', 'content-type': 'application/json' },
        });
        const data = await res.json();
        assert.equal(res.status, 400, JSON.stringify(data));
        assert.equal(data.reasonCode, 'MissingHeader');
    });
});
