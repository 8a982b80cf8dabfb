'use strict';

// Starts a private Kessai sandbox (the Amazon Pay v2 emulator) for one test file and gives the
// tests an unmodified Amazon Pay Node.js SDK client aimed at it over plain HTTP.

const { spawn } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const PACKAGE_ROOT = path.resolve(__dirname, '..');
const SDK_NAME = '@amazonpay/amazon-pay-api-sdk-nodejs';

/** The emulator binary: $KESSAI_BIN (relative paths resolve against compat/node), else ../../target/debug/kessai. */
function kessaiBin() {
    const fromEnv = process.env.KESSAI_BIN;
    if (fromEnv && fromEnv.length > 0) return path.resolve(PACKAGE_ROOT, fromEnv);
    return path.resolve(PACKAGE_ROOT, '..', '..', 'target', 'debug', 'kessai');
}

// ---------------------------------------------------------------------------------------------
// The SDK talks HTTPS to the emulator (overrideServiceUrl; the emulator answers TLS and plain HTTP
// on the same port). Plain HTTP through an interceptor on the SDK's own axios copy (reference §13)
// is used only when a test turns it on (setHttpRewrite), or for every test with KESSAI_SDK_PLAIN_HTTP=1.
// ---------------------------------------------------------------------------------------------

const Client = require(SDK_NAME);
const sdkDir = path.dirname(require.resolve(SDK_NAME));
const sdkAxios = require(require.resolve('axios', { paths: [sdkDir] }));

let interceptorInstalled = false;
let rewriteToHttp = process.env.KESSAI_SDK_PLAIN_HTTP === '1';
/** Turns the https->http rewrite on (plain HTTP) or off (the SDK's own HTTPS, the default). */
function setHttpRewrite(on) {
    rewriteToHttp = !!on;
    if (rewriteToHttp) if (rewriteToHttp) installHttpInterceptor();
}
function installHttpInterceptor() {
    if (interceptorInstalled) return;
    interceptorInstalled = true;
    sdkAxios.interceptors.request.use((config) => {
        // Only loopback emulator URLs are rewritten; nothing else is ever contacted.
        if (rewriteToHttp && typeof config.url === 'string') {
            config.url = config.url.replace(/^https:\/\/(127\.0\.0\.1:\d+)\//, 'http://$1/');
        }
        return config;
    });
}
installHttpInterceptor();

// ---------------------------------------------------------------------------------------------
// Emulator process
// ---------------------------------------------------------------------------------------------

const LISTEN_RE = /kessai sandbox listening on (http:\/\/127\.0\.0\.1:(\d+))/;
// eslint-disable-next-line no-control-regex
const ANSI_RE = /\x1b\[[0-9;]*m/g;
const running = new Set();

process.on('exit', () => {
    for (const child of running) {
        try { child.kill('SIGKILL'); } catch (_) { /* already gone */ }
    }
});

/**
 * Spawns `kessai sandbox --listen 127.0.0.1:0 --data-dir <fresh temp dir>` and waits for its
 * "kessai sandbox listening on http://127.0.0.1:PORT" line on stdout.
 * Resolves to { baseUrl, port, host, dataDir, firstStdoutLine, log(), stop() }.
 */
async function startEmulator({ timeoutMs = 20000 } = {}) {
    const bin = kessaiBin();
    if (!fs.existsSync(bin)) {
        throw new Error(`kessai binary not found at ${bin}: build it with 'cargo build -p kessai' or set KESSAI_BIN`);
    }
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'kessai-compat-node-'));
    const child = spawn(bin, ['sandbox', '--listen', '127.0.0.1:0', '--data-dir', dataDir], {
        stdio: ['ignore', 'pipe', 'pipe'],
        env: { ...process.env, NO_COLOR: '1' },
    });
    running.add(child);

    const logLines = [];
    const remember = (stream, line) => {
        logLines.push(`[${stream}] ${line}`);
        if (logLines.length > 500) logLines.shift();
    };
    let stdoutLines = [];
    let exited = null;

    const ready = new Promise((resolve, reject) => {
        let buffered = '';
        const timer = setTimeout(() => {
            reject(new Error(`kessai did not print its listening line within ${timeoutMs} ms:\n${logLines.join('\n')}`));
        }, timeoutMs);
        child.stdout.setEncoding('utf8');
        child.stdout.on('data', (chunk) => {
            buffered += chunk;
            let nl;
            while ((nl = buffered.indexOf('\n')) >= 0) {
                const line = buffered.slice(0, nl).replace(ANSI_RE, '');
                buffered = buffered.slice(nl + 1);
                stdoutLines.push(line);
                remember('stdout', line);
                const m = LISTEN_RE.exec(line);
                if (m) {
                    clearTimeout(timer);
                    resolve({ baseUrl: m[1], port: Number(m[2]) });
                }
            }
        });
        child.stderr.setEncoding('utf8');
        let errBuf = '';
        child.stderr.on('data', (chunk) => {
            errBuf += chunk;
            let nl;
            while ((nl = errBuf.indexOf('\n')) >= 0) {
                remember('stderr', errBuf.slice(0, nl).replace(ANSI_RE, ''));
                errBuf = errBuf.slice(nl + 1);
            }
        });
        child.on('error', (e) => { clearTimeout(timer); reject(e); });
        child.on('exit', (code, signal) => {
            exited = { code, signal };
            running.delete(child);
            clearTimeout(timer);
            reject(new Error(`kessai exited (code ${code}, signal ${signal}) before listening:\n${logLines.join('\n')}`));
        });
    });

    let started;
    try {
        started = await ready;
    } catch (e) {
        if (!exited) child.kill('SIGKILL');
        fs.rmSync(dataDir, { recursive: true, force: true });
        throw e;
    }

    const emu = {
        ...started,
        host: `127.0.0.1:${started.port}`,
        dataDir,
        pid: child.pid,
        /** stdout lines printed before the listening line was found (the listening line last). */
        stdoutBeforeReady: stdoutLines.slice(),
        log: () => logLines.join('\n'),
        async stop() {
            if (!exited) {
                const gone = new Promise((resolve) => child.once('exit', resolve));
                child.kill('SIGTERM');
                const t = setTimeout(() => { if (!exited) child.kill('SIGKILL'); }, 3000);
                await gone;
                clearTimeout(t);
            }
            running.delete(child);
            fs.rmSync(dataDir, { recursive: true, force: true });
        },
    };
    return emu;
}

// ---------------------------------------------------------------------------------------------
// Unsigned test helpers (/test_helpers/…)
// ---------------------------------------------------------------------------------------------

async function helper(emu, method, urlPath, body) {
    const res = await fetch(`${emu.baseUrl}${urlPath}`, {
        method,
        headers: body === undefined ? {} : { 'content-type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    let data;
    try { data = text.length ? JSON.parse(text) : null; } catch (_) { data = text; }
    return { status: res.status, data, headers: res.headers };
}

async function helperOk(emu, method, urlPath, body, expectedStatus = 200) {
    const r = await helper(emu, method, urlPath, body);
    if (r.status !== expectedStatus) {
        throw new Error(`${method} ${urlPath} -> ${r.status} (expected ${expectedStatus}): ${JSON.stringify(r.data)}`);
    }
    return r.data;
}

const signIn = (emu, id, choice) =>
    helperOk(emu, 'POST', `/test_helpers/checkoutSessions/${encodeURIComponent(id)}/sign_in`, choice);
const buyerConfirm = (emu, id) =>
    helperOk(emu, 'POST', `/test_helpers/checkoutSessions/${encodeURIComponent(id)}/confirm`);
const buyerCancel = (emu, id) =>
    helperOk(emu, 'POST', `/test_helpers/checkoutSessions/${encodeURIComponent(id)}/cancel`);
const getClock = (emu) => helperOk(emu, 'GET', '/test_helpers/clock');
const advanceClock = (emu, seconds) => helperOk(emu, 'POST', '/test_helpers/clock/advance', { seconds });

// ---------------------------------------------------------------------------------------------
// Merchants and SDK clients
// ---------------------------------------------------------------------------------------------

function rsaKeyPair() {
    return crypto.generateKeyPairSync('rsa', {
        modulusLength: 2048,
        publicKeyEncoding: { type: 'spki', format: 'pem' },
        privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
    });
}

/** A WebStoreClient config aimed at the emulator. */
function clientConfig(emu, publicKeyId, privateKey, extra = {}) {
    return {
        publicKeyId,
        privateKey,
        region: 'jp',
        sandbox: true,
        overrideServiceUrl: emu.host,
        ...extra,
    };
}

/**
 * Registers a fresh RSA-2048 key (so a fresh JPY/jp merchant) and returns
 * { publicKeyId, merchantId, storeId, privateKey, publicKey, client, config }.
 */
async function newMerchant(emu, extraConfig = {}) {
    const { publicKey, privateKey } = rsaKeyPair();
    const reg = await helperOk(emu, 'POST', '/test_helpers/publicKeys', { publicKey }, 201);
    const config = clientConfig(emu, reg.publicKeyId, privateKey, extraConfig);
    return {
        ...reg,
        privateKey,
        publicKey,
        config,
        client: new Client.WebStoreClient(config),
    };
}

// ---------------------------------------------------------------------------------------------
// Small request builders and the buyer dance
// ---------------------------------------------------------------------------------------------

const REVIEW_URL = 'https://merchant.example/review';
const RESULT_URL = 'https://merchant.example/result';

const idemKey = () => crypto.randomUUID().replace(/-/g, '');
const jpy = (amount) => ({ amount: String(amount), currencyCode: 'JPY' });

function createPayload(m, extra = {}) {
    return {
        webCheckoutDetails: { checkoutReviewReturnUrl: REVIEW_URL },
        storeId: m.storeId,
        ...extra,
    };
}

function updatePayload({ intent = 'Authorize', amount = 1000, canHandlePendingAuthorization, currency = 'JPY', ref } = {}) {
    const paymentDetails = {
        paymentIntent: intent,
        chargeAmount: { amount: String(amount), currencyCode: currency },
    };
    if (canHandlePendingAuthorization !== undefined) {
        paymentDetails.canHandlePendingAuthorization = canHandlePendingAuthorization;
    }
    return {
        webCheckoutDetails: { checkoutResultReturnUrl: RESULT_URL },
        paymentDetails,
        merchantMetadata: {
            merchantReferenceId: ref || `order-${crypto.randomUUID().slice(0, 8)}`,
            merchantStoreName: 'Kessai compat store',
            noteToBuyer: 'Thank you',
        },
    };
}

async function createSession(m, extra = {}) {
    const res = await m.client.createCheckoutSession(createPayload(m, extra), {
        'x-amz-pay-idempotency-key': idemKey(),
    });
    return res.data;
}

/**
 * Create CS -> sign_in helper -> Update CS -> confirm helper. Returns the checkout session id
 * plus the intermediate responses. The session is ready for Complete.
 */
async function buyerReachesResultPage(emu, m, opts = {}) {
    const session = await createSession(m);
    const id = session.checkoutSessionId;
    const signInChoice = opts.paymentMethod ? { paymentMethod: opts.paymentMethod } : undefined;
    const signedIn = await signIn(emu, id, signInChoice);
    const updated = (await m.client.updateCheckoutSession(id, updatePayload(opts))).data;
    const confirmed = await buyerConfirm(emu, id);
    return { id, session, signedIn, updated, confirmed };
}

/** The whole buyer flow through Complete. */
async function checkout(emu, m, opts = {}) {
    const amount = opts.amount ?? 1000;
    const reached = await buyerReachesResultPage(emu, m, { ...opts, amount });
    const completedRes = await m.client.completeCheckoutSession(reached.id, { chargeAmount: jpy(amount) });
    return { ...reached, completed: completedRes.data, completeStatus: completedRes.status };
}

/**
 * Signs a request with the SDK's public getSignedHeaders() and sends exactly `body` with fetch
 * (for bodies axios would re-encode). Returns { status, data, headers }.
 */
async function signedFetch(emu, client, method, urlFragment, body, headers = {}) {
    const options = { method, urlFragment, payload: body, headers: { ...headers } };
    const signed = client.getSignedHeaders(options); // prepareOptions() prefixes options.urlFragment
    const res = await fetch(`${emu.baseUrl}/${options.urlFragment}`, {
        method,
        headers: signed,
        body: body === undefined || body === null ? undefined : body,
    });
    const text = await res.text();
    let data;
    try { data = text.length ? JSON.parse(text) : null; } catch (_) { data = text; }
    return { status: res.status, data, headers: res.headers };
}

// ---------------------------------------------------------------------------------------------
// Assertions
// ---------------------------------------------------------------------------------------------

const assert = require('node:assert/strict');

const clip = (text, n = 600) => (typeof text === 'string' && text.length > n ? `${text.slice(0, n)}…` : text);

/** Awaits an SDK call that must fail with an Amazon Pay error {reasonCode, message}. */
async function expectApiError(promise, status, reasonCode) {
    let err;
    try {
        const res = await promise;
        assert.fail(`expected HTTP ${status} ${reasonCode}, got HTTP ${res && res.status}: ${clip(JSON.stringify(res && res.data))}`);
    } catch (e) {
        if (e instanceof assert.AssertionError) throw e;
        err = e;
    }
    assert.ok(err.response, `expected an HTTP error response, got ${err && (err.stack || err)}`);
    const got = `HTTP ${err.response.status} ${JSON.stringify(err.response.data)}`;
    assert.equal(err.response.status, status, `status: ${got}`);
    assert.equal(typeof err.response.data, 'object', `body is not JSON: ${got}`);
    const reasons = Array.isArray(reasonCode) ? reasonCode : [reasonCode];
    assert.ok(reasons.includes(err.response.data.reasonCode), `reasonCode (want ${reasons.join('|')}): ${got}`);
    assert.equal(typeof err.response.data.message, 'string', `message: ${got}`);
    return err.response;
}

/** Every documented key is present and in the documented order (extra keys listed in `allowedExtra`). */
function assertKeyOrder(obj, documented, allowedExtra = []) {
    const keys = Object.keys(obj);
    const missing = documented.filter((k) => !keys.includes(k));
    assert.deepEqual(missing, [], `missing keys; got ${JSON.stringify(keys)}`);
    const extra = keys.filter((k) => !documented.includes(k) && !allowedExtra.includes(k));
    assert.deepEqual(extra, [], `undocumented keys; got ${JSON.stringify(keys)}`);
    assert.deepEqual(keys.filter((k) => documented.includes(k)), documented, 'documented key order');
}

module.exports = {
    Client,
    sdkAxios,
    setHttpRewrite,
    kessaiBin,
    startEmulator,
    helper,
    helperOk,
    signIn,
    buyerConfirm,
    buyerCancel,
    getClock,
    advanceClock,
    rsaKeyPair,
    clientConfig,
    newMerchant,
    idemKey,
    jpy,
    createPayload,
    updatePayload,
    createSession,
    buyerReachesResultPage,
    checkout,
    signedFetch,
    expectApiError,
    assertKeyOrder,
    REVIEW_URL,
    RESULT_URL,
};
