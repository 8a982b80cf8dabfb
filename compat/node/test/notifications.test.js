'use strict';

// Asynchronous authorization completed by an IPN (reference §9, §10): the merchant receives an SNS
// envelope, checks its signature against the certificate at SigningCertURL, then reads the charge.

const { describe, test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const http = require('node:http');
const crypto = require('node:crypto');
const h = require('../lib/emulator');

let emu;
before(async () => { emu = await h.startEmulator(); });
after(async () => { if (emu) await emu.stop(); });

/** A merchant IPN endpoint on port 0 that records every body. */
function receiver() {
    const bodies = [];
    const server = http.createServer((req, res) => {
        let body = '';
        req.on('data', (c) => { body += c; });
        req.on('end', () => { bodies.push({ body, contentType: req.headers['content-type'] }); res.end('OK'); });
    });
    return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({
        url: `http://127.0.0.1:${server.address().port}/ipn`,
        bodies,
        close: () => new Promise((r) => server.close(r)),
    })));
}

async function waitFor(predicate, ms = 10000) {
    const end = Date.now() + ms;
    while (Date.now() < end) {
        if (predicate()) return;
        await new Promise((r) => setTimeout(r, 100));
    }
    assert.fail('timed out waiting');
}

/** SNS SignatureVersion 2: SHA256withRSA over "Key\nValue\n" of the signed fields. */
function snsStringToSign(env) {
    const keys = ['Message', 'MessageId', ...(env.Subject !== undefined ? ['Subject'] : []), 'Timestamp', 'TopicArn', 'Type'];
    return keys.map((k) => `${k}\n${env[k]}\n`).join('');
}

describe('notifications', () => {
    test('a pending authorization is completed and announced by a signed IPN', async () => {
        const ipn = await receiver();
        try {
            const m = await h.newMerchant(emu);
            await h.helperOk(emu, 'POST', '/test_helpers/notificationUrl', { merchantId: m.merchantId, url: ipn.url }, 200);
            const { completed } = await h.checkout(emu, m, { paymentMethod: 'visa-0701', canHandlePendingAuthorization: true, amount: 1500 });
            const chargeId = completed.chargeId;
            assert.equal((await m.client.getCharge(chargeId)).data.statusDetails.state, 'AuthorizationInitiated');

            await h.advanceClock(emu, 31);
            await waitFor(() => ipn.bodies.length > 0);
            const { body, contentType } = ipn.bodies[0];
            assert.match(contentType, /^text\/plain/);
            const envelope = JSON.parse(body);
            assert.equal(envelope.Type, 'Notification');
            const message = JSON.parse(envelope.Message);
            assert.equal(message.ObjectType, 'CHARGE');
            assert.equal(message.ObjectId, chargeId);
            assert.equal(message.ChargePermissionId, completed.chargePermissionId);
            assert.equal(message.NotificationVersion, 'V2');

            // Verify as a merchant would: the certificate from SigningCertURL, SHA256withRSA.
            const pem = await (await fetch(envelope.SigningCertURL)).text();
            const cert = new crypto.X509Certificate(pem);
            const ok = crypto.verify('RSA-SHA256', Buffer.from(snsStringToSign(envelope)), cert.publicKey,
                Buffer.from(envelope.Signature, 'base64'));
            assert.equal(ok, true, 'the SNS signature verifies');
            const tampered = { ...envelope, Message: envelope.Message.replace(chargeId, 'S01-0000000-0000000-C000000') };
            assert.equal(crypto.verify('RSA-SHA256', Buffer.from(snsStringToSign(tampered)), cert.publicKey,
                Buffer.from(envelope.Signature, 'base64')), false);

            const charge = (await m.client.getCharge(chargeId)).data;
            assert.equal(charge.statusDetails.state, 'Authorized');
        } finally {
            await ipn.close();
        }
    });

    test('a pending decline is announced too, and the charge is Declined/HardDeclined', async () => {
        const ipn = await receiver();
        try {
            const m = await h.newMerchant(emu);
            await h.helperOk(emu, 'POST', '/test_helpers/notificationUrl', { merchantId: m.merchantId, url: ipn.url }, 200);
            const { completed } = await h.checkout(emu, m, { paymentMethod: 'visa-4354', canHandlePendingAuthorization: true });
            await h.advanceClock(emu, 31);
            await waitFor(() => ipn.bodies.length > 0);
            const charge = (await m.client.getCharge(completed.chargeId)).data;
            assert.equal(charge.statusDetails.state, 'Declined');
            assert.equal(charge.statusDetails.reasonCode, 'HardDeclined');
            const list = await h.helperOk(emu, 'GET', `/test_helpers/notifications?merchantId=${m.merchantId}`, undefined, 200);
            assert.equal(list.notifications.length, 1);
            assert.equal(list.notifications[0].status, 'delivered');
        } finally {
            await ipn.close();
        }
    });
});
