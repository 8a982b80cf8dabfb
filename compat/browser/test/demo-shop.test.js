'use strict';

// End-to-end test in a real Chromium (Debian's `chromium`, driven by playwright-core over CDP):
// the demo shop of `kessai serve`, Kessai's buyer pages and the built-in Amazon Pay emulator's
// buyer pages, clicked through as a person would.

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { chromium } = require('playwright-core');

const PACKAGE_ROOT = path.resolve(__dirname, '..');

/** $KESSAI_BIN (a relative path resolves against compat/browser), else ../../target/debug/kessai. */
function kessaiBin() {
    const fromEnv = process.env.KESSAI_BIN;
    if (fromEnv && fromEnv.length > 0) return path.resolve(PACKAGE_ROOT, fromEnv);
    return path.resolve(PACKAGE_ROOT, '..', '..', 'target', 'debug', 'kessai');
}

const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const CHROMIUM_ARGS = [
    '--headless',
    '--no-sandbox',
    '--disable-gpu',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
];
const DESKTOP = { width: 1024, height: 800 };
const PHONE = { width: 390, height: 844 };

let server; // { child, gateway, emulator, dataDir, stderr() }
let browser;
/**
 * Screenshots go here, never into the repository. With $KESSAI_SCREENSHOTS they are kept in that
 * directory; otherwise they go to a fresh temp directory that is deleted at the end.
 */
const keepShots = !!process.env.KESSAI_SCREENSHOTS;
const shotDir = keepShots
    ? path.resolve(process.env.KESSAI_SCREENSHOTS)
    : fs.mkdtempSync(path.join(os.tmpdir(), 'kessai-browser-shots-'));
fs.mkdirSync(shotDir, { recursive: true });

// ---------------------------------------------------------------------------------------------
// The server
// ---------------------------------------------------------------------------------------------

/**
 * Spawns `kessai serve --listen 127.0.0.1:0 --sandbox-listen 127.0.0.1:0 --data-dir <fresh dir>`
 * and waits for the "Kessai gateway" and "Amazon Pay" lines on stdout.
 */
function startKessai({ timeoutMs = 20000 } = {}) {
    const bin = kessaiBin();
    if (!fs.existsSync(bin)) {
        throw new Error(`kessai binary not found at ${bin}: build it with 'cargo build -p kessai' or set KESSAI_BIN`);
    }
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'kessai-compat-browser-'));
    const child = spawn(
        bin,
        ['serve', '--listen', '127.0.0.1:0', '--sandbox-listen', '127.0.0.1:0', '--data-dir', dataDir],
        { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NO_COLOR: '1' } },
    );
    let stdout = '';
    let stderr = '';
    child.stderr.on('data', (d) => { stderr += d; });
    return new Promise((resolve, reject) => {
        const fail = (why) => {
            clearTimeout(timer);
            try { child.kill('SIGKILL'); } catch (_) { /* gone */ }
            fs.rmSync(dataDir, { recursive: true, force: true });
            reject(new Error(`${why}\nstdout:\n${stdout}\nstderr:\n${stderr}`));
        };
        const timer = setTimeout(() => fail('kessai serve did not print its addresses in time'), timeoutMs);
        child.on('exit', (code) => fail(`kessai serve exited early (code ${code})`));
        child.stdout.on('data', (d) => {
            stdout += d;
            const gateway = /^Kessai gateway\s+(http:\/\/127\.0\.0\.1:\d+)\s*$/m.exec(stdout);
            const emulator = /^Amazon Pay\s+(http:\/\/127\.0\.0\.1:\d+)\/? \(built-in emulator\)\s*$/m.exec(stdout);
            if (gateway && emulator) {
                clearTimeout(timer);
                child.removeAllListeners('exit');
                resolve({
                    child,
                    dataDir,
                    gateway: gateway[1],
                    emulator: emulator[1],
                    stderr: () => stderr,
                });
            }
        });
    });
}

function stopKessai(s) {
    return new Promise((resolve) => {
        if (s.child.exitCode !== null || s.child.signalCode !== null) return resolve();
        s.child.once('exit', () => resolve());
        s.child.kill('SIGTERM');
        setTimeout(() => { try { s.child.kill('SIGKILL'); } catch (_) { /* gone */ } }, 3000).unref();
    }).finally(() => fs.rmSync(s.dataDir, { recursive: true, force: true }));
}

before(async () => {
    server = await startKessai();
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
});

after(async () => {
    if (browser) await browser.close();
    if (server) await stopKessai(server);
    if (!keepShots) fs.rmSync(shotDir, { recursive: true, force: true });
});

// ---------------------------------------------------------------------------------------------
// Pages
// ---------------------------------------------------------------------------------------------

/**
 * A fresh context and page. Every console error, page error (uncaught exception, CSP violation
 * report) and HTTP error response is collected in `problems`.
 */
async function openPage(viewport = DESKTOP) {
    const context = await browser.newContext({ viewport });
    // A step that does not happen fails within seconds, naming the step, instead of holding the run.
    context.setDefaultTimeout(20000);
    context.setDefaultNavigationTimeout(20000);
    const page = await context.newPage();
    const problems = [];
    page.on('console', (m) => {
        if (m.type() === 'error' || m.type() === 'warning') {
            problems.push(`console ${m.type()} on ${page.url()}: ${m.text()} [${m.location().url}]`);
        }
    });
    page.on('pageerror', (e) => problems.push(`page error on ${page.url()}: ${e.message}`));
    page.on('response', (r) => {
        if (r.status() >= 400) problems.push(`HTTP ${r.status()} for ${r.url()}`);
    });
    page.on('requestfailed', (r) => problems.push(`request failed: ${r.url()} (${r.failure()?.errorText})`));
    return { context, page, problems };
}

function onEmulator(url) {
    return url.startsWith(`${server.emulator}/`);
}
function onGateway(url) {
    return url.startsWith(`${server.gateway}/`);
}

/** Waits for the page to be at a URL whose path starts with `prefix` on `base`. */
async function waitForPath(page, base, prefix) {
    await page.waitForURL((u) => u.href.startsWith(`${base}${prefix}`), { timeout: 10000 });
    await page.waitForLoadState('load');
}

/** Asserts that the page has a stylesheet applied (the CSS loaded and was allowed by the CSP). */
async function assertStyled(page) {
    const styled = await page.evaluate(() => document.styleSheets.length > 0
        && Array.from(document.styleSheets).every((s) => { try { return s.cssRules.length > 0; } catch (_) { return false; } }));
    assert.ok(styled, `the stylesheet of ${page.url()} did not load`);
}

/** The order page's status, in words. */
async function orderStatus(page) {
    return (await page.locator('dl.summary dd.status').textContent()).trim();
}

/** The labels of the order page's action buttons. */
async function actionButtons(page) {
    return (await page.locator('form[action*="/demo/orders/"] button').allTextContents()).map((t) => t.trim());
}

function shot(page, name) {
    return page.screenshot({ path: path.join(shotDir, name), fullPage: true });
}

/**
 * On the gateway's hand-off page (the Authorize answer's responseContents, which the demo shop
 * shows as it came): presses the Amazon Pay button that the emulator's checkout.js rendered.
 * Once the script has rendered it, the page's no-script form is hidden.
 */
async function pressAmazonPayButton(page, hooks = {}) {
    const button = page.getByRole('button', { name: 'Amazon Pay', exact: true });
    await button.waitFor();
    assert.equal(await page.locator('form#kessai-amazonpay').isVisible(), false);
    if (hooks.handoff) await hooks.handoff(page);
    await button.click();
}

/**
 * Walks one purchase from the demo shop: shop (the item's form, a way to pay) → the gateway's
 * hand-off page (the Amazon Pay button of the emulator's checkout.js) → emulator sign-in → Kessai's confirmation page, or the shop's
 * own (`once-shop`) → emulator confirmation → the demo order page. Calls `hooks` on the way
 * (signin(page, response), review(page, response), shop(page), confirm(page, response)).
 */
async function buy(page, { item = 0, pattern = 'once', capture = false, instrument, hooks = {} } = {}) {
    const shop = await page.goto(`${server.gateway}/`);
    assert.equal(shop.status(), 200);
    await assertStyled(page);
    const form = page.locator('form.item').nth(item);
    await form.locator(`input[type=radio][name=pattern][value="${pattern}"]`).check();
    if (capture) await form.getByLabel('即時売上 / capture now').check();

    const signinResponse = page.waitForResponse((r) => onEmulator(r.url())
        && new URL(r.url()).pathname === '/checkout/signin' && r.request().method() === 'GET');
    await form.getByRole('button', { name: 'Amazon Payで支払う / Pay with Amazon Pay' }).click();
    await pressAmazonPayButton(page, hooks);
    const signin = await signinResponse;
    await waitForPath(page, server.emulator, '/checkout/signin?amazonCheckoutSessionId=');
    assert.equal(signin.status(), 200);
    await assertStyled(page);
    await page.getByRole('heading', { name: 'ログイン / Sign in' }).waitFor();
    if (instrument) {
        await page.locator(`input[type=radio][name=instrument][value="${instrument}"]`).check();
    }
    if (hooks.signin) await hooks.signin(page, signin);

    const confirmResponse = page.waitForResponse((r) => onEmulator(r.url())
        && new URL(r.url()).pathname === '/checkout/confirm' && r.request().method() === 'GET');
    if (pattern === 'once-shop') {
        // Sign-in → the shop's own confirmation page (payConfirmScreenUrl).
        await page.getByRole('button', { name: '続行 / Continue' }).click();
        await page.waitForURL((u) => u.href.startsWith(`${server.gateway}/demo/orders/`) && u.pathname.endsWith('/confirm'), { timeout: 10000 });
        await page.getByRole('heading', { name: 'ご注文の確認 / Confirm your order' }).waitFor();
        await assertStyled(page);
        if (hooks.shop) await hooks.shop(page);
        // The shop sets the final amount and sends the buyer to payRedirectUrl: Kessai's page
        // for that amount, then Amazon Pay.
        await page.getByRole('button', { name: '注文を確定 / Place the order' }).click();
        await waitForPath(page, server.gateway, '/amazonpay/pay/');
        await assertStyled(page);
        if (hooks.pay) await hooks.pay(page);
        await page.getByRole('button', { name: '確定 / Place order' }).click();
    } else {
        // Sign-in → Kessai's own confirmation page (checkoutReviewReturnUrl).
        const reviewResponse = page.waitForResponse((r) => onGateway(r.url())
            && new URL(r.url()).pathname.startsWith('/amazonpay/review/'));
        await page.getByRole('button', { name: '続行 / Continue' }).click();
        const review = await reviewResponse;
        await waitForPath(page, server.gateway, '/amazonpay/review/');
        assert.equal(review.status(), 200);
        await assertStyled(page);
        await page.getByRole('heading', { name: 'ご注文内容の確認 / Confirm your order' }).waitFor();
        if (hooks.review) await hooks.review(page, review);
        // A consent alone is agreed to, a payment placed.
        await page.getByRole('button', { name: /^(確定 \/ Place order|同意する \/ Agree)$/ }).click();
    }

    // → the emulator's confirmation page (payRedirectUrl / amazonPayRedirectUrl).
    const confirm = await confirmResponse;
    await waitForPath(page, server.emulator, '/checkout/confirm');
    assert.equal(confirm.status(), 200);
    await assertStyled(page);
    await page.getByRole('heading', { name: 'お支払いの確認 / Confirm payment' }).waitFor();
    if (hooks.confirm) await hooks.confirm(page, confirm);

    // Pay → Kessai's result URL → the demo shop's order page.
    await page.getByRole('button', { name: '支払う / Pay' }).click();
    await waitForPath(page, server.gateway, '/demo/orders/');
    await page.getByRole('heading', { name: /^注文 \/ Order / }).waitFor();
    await assertStyled(page);
    const orderId = decodeURIComponent(new URL(page.url()).pathname.split('/')[3]);
    return { orderId };
}

/**
 * Fills `fields` ({ name: value }) of the order page's form whose button is `name`, presses the
 * button and waits for the page that answers (the order page again, a charge's page, or the same
 * page with the error at that form).
 */
async function act(page, name, fields = {}) {
    const form = page.locator('form', { has: page.getByRole('button', { name, exact: true }) });
    for (const [field, value] of Object.entries(fields)) {
        const input = form.locator(`[name="${field}"]`);
        if ((await input.evaluate((e) => e.tagName)) === 'SELECT') await input.selectOption(value);
        else await input.fill(String(value));
    }
    const committed = page.waitForEvent('framenavigated', (f) => f === page.mainFrame());
    await form.getByRole('button', { name, exact: true }).click();
    await committed;
    await page.waitForLoadState('load');
    await page.getByRole('heading', { name: /^注文 \/ Order / }).waitFor();
}

function assertCleanPages(problems) {
    assert.deepEqual(problems, [], `the pages reported problems:\n${problems.join('\n')}`);
}

/** The order id of the page the browser is on. */
function shownOrder(page) {
    return decodeURIComponent(new URL(page.url()).pathname.split('/')[3]);
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

test('one-time, Kessai\'s confirmation page: change the amount, capture, refund; an error shows at its form', { timeout: 90000 }, async () => {
    const { context, page, problems } = await openPage(DESKTOP);
    try {
        const { orderId } = await buy(page, {
            hooks: { review: (p) => shot(p, 'kessai-confirm-desktop.png') },
        });
        assert.match(orderId, /^demo-tea-/);
        assert.match(await page.getByRole('status').textContent(), /Thank you: the payment went through\./);
        assert.equal(await orderStatus(page), 'authorized ¥3,240');
        assert.equal(await page.locator('dl.summary dd.amount').textContent(), '¥3,240');
        assert.equal(await page.locator('dl.summary dt', { hasText: 'お届け先 / Ship to' }).count(), 1);
        assert.deepEqual(await actionButtons(page),
            ['売上 / Capture', 'キャンセル / Cancel the payment', '金額を変更 / Change the amount']);

        await act(page, '金額を変更 / Change the amount', { amount: 3000 });
        assert.equal(await orderStatus(page), 'authorized ¥3,000');

        await act(page, '売上 / Capture');
        assert.equal(await orderStatus(page), 'captured ¥3,000');
        assert.deepEqual(await actionButtons(page), ['返金 / Refund'], 'only a refund is offered once captured');

        await act(page, '返金 / Refund', { amount: 1000 });
        assert.equal(await orderStatus(page), 'refunded ¥1,000 of ¥3,000');

        // More than is left: the page says so at the refund form, in words with the code.
        await page.locator('form[action$="/refund"] input[name=amount]').evaluate((e) => e.removeAttribute('max'));
        await act(page, '返金 / Refund', { amount: 5000 });
        const alert = page.getByRole('alert');
        assert.match(await alert.textContent(), /The refund failed: .*E307/s);
        assert.equal(await page.locator('div.problem + form[action$="/refund"]').count(), 1, 'the error is at the refund form');
        assert.equal(await orderStatus(page), 'refunded ¥1,000 of ¥3,000', 'nothing changed');

        await act(page, '返金 / Refund', { amount: '' });
        assert.equal(await orderStatus(page), 'refunded ¥3,000 of ¥3,000');
        assert.deepEqual(await actionButtons(page), [], 'nothing is left to do');
        await shot(page, 'one-time-final-desktop.png');

        // The shop lists the order, read from the gateway.
        await page.getByRole('link', { name: '← ショップ / shop' }).click();
        await page.waitForURL(`${server.gateway}/`);
        const row = page.locator('table.orders tr', { hasText: orderId });
        assert.match(await row.textContent(), /¥3,000\s*refunded ¥3,000 of ¥3,000/);
        assert.doesNotMatch(await page.locator('main').textContent(), /￥/);
        await shot(page, 'shop-list-desktop.png');
        assertCleanPages(problems);
    } finally {
        await context.close();
    }
});

test('one-time, the shop\'s own confirmation page: the address from GetAddress, a shipping fee, UpdateAuthorize', { timeout: 90000 }, async () => {
    const { context, page, problems } = await openPage(PHONE);
    try {
        await buy(page, {
            item: 1,
            pattern: 'once-shop',
            hooks: {
                pay: async (p) => assert.match(await p.locator('main').textContent(), /¥2,880/),
                shop: async (p) => {
                    assert.match(await p.locator('dd.address').textContent(), /〒/);
                    await p.getByLabel(/お急ぎ便 \/ Express/).check();
                    assert.match(await p.locator('main').textContent(), /¥2,880/);
                    await shot(p, 'shop-confirm-phone.png');
                },
            },
        });
        assert.equal(await orderStatus(page), 'authorized ¥2,880', '¥1,980 and ¥900 express shipping');
        assert.equal(await page.locator('dl.summary dd.amount').textContent(), '¥2,880');
        await act(page, '売上 / Capture');
        assert.equal(await orderStatus(page), 'captured ¥2,880');
        await shot(page, 'shop-confirmed-final-phone.png');
        assertCleanPages(problems);
    } finally {
        await context.close();
    }
});

test('subscription with its first charge: change the plan, charge again, end it', { timeout: 90000 }, async () => {
    const { context, page, problems } = await openPage(DESKTOP);
    try {
        const { orderId } = await buy(page, { pattern: 'subscribe', capture: true });
        assert.match(await page.getByRole('status').textContent(), /your subscription is set up and the first payment went through/);
        assert.equal(await orderStatus(page), 'subscription active, first charge captured ¥3,240');
        assert.deepEqual(await actionButtons(page),
            ['返金 / Refund', '今すぐ請求 / Charge now', 'プラン変更 / Change the plan', '定期購入を解約 / End the subscription']);

        await act(page, 'プラン変更 / Change the plan', { amount: 2000, frequencyValue: 2, frequencyUnit: 'Week' });
        assert.equal(shownOrder(page), orderId);
        assert.equal(await page.locator('dl.summary dd.plan').textContent(), '¥2,000 per period');
        assert.match(await orderStatus(page), /^subscription active/);

        await act(page, '今すぐ請求 / Charge now', { amount: 2000 });
        const charge = shownOrder(page);
        assert.notEqual(charge, orderId, 'a charge is an order of its own');
        assert.equal(await orderStatus(page), 'captured ¥2,000');
        await page.getByRole('link', { name: orderId }).click();
        await page.waitForURL(`${server.gateway}/demo/orders/${orderId}`);
        assert.match(await page.locator('main').textContent(), new RegExp(`${charge}\\s*¥2,000 – captured ¥2,000`));

        await act(page, '定期購入を解約 / End the subscription');
        assert.match(await orderStatus(page), /^subscription ended/);
        assert.ok(!(await actionButtons(page)).includes('今すぐ請求 / Charge now'), 'no charge after the end');
        await shot(page, 'subscription-final-desktop.png');
        assertCleanPages(problems);
    } finally {
        await context.close();
    }
});

test('consent only, then charge now', { timeout: 90000 }, async () => {
    const { context, page, problems } = await openPage(DESKTOP);
    try {
        const { orderId } = await buy(page, { item: 1, pattern: 'consent' });
        assert.match(await page.getByRole('status').textContent(), /your subscription is set up; nothing is charged yet/);
        assert.equal(await orderStatus(page), 'subscription active (no charge yet)');
        assert.deepEqual(await actionButtons(page),
            ['今すぐ請求 / Charge now', 'プラン変更 / Change the plan', '定期購入を解約 / End the subscription']);
        await act(page, '今すぐ請求 / Charge now', { amount: 1500 });
        assert.notEqual(shownOrder(page), orderId);
        assert.equal(await orderStatus(page), 'captured ¥1,500');
        assert.deepEqual(await actionButtons(page), ['返金 / Refund']);
        await shot(page, 'consent-charge-final-desktop.png');
        assertCleanPages(problems);
    } finally {
        await context.close();
    }
});

test('a declined card (visa-3434) is told in words with E401; nothing is offered', { timeout: 90000 }, async () => {
    const { context, page, problems } = await openPage(PHONE);
    try {
        await buy(page, {
            item: 1,
            instrument: 'visa-3434',
            hooks: {
                signin: async (p) => {
                    assert.ok(await p.locator('input[name=instrument][value="visa-3434"]').isChecked());
                    await shot(p, 'emulator-signin-phone.png');
                },
            },
        });
        assert.equal(await orderStatus(page), 'declined by Amazon Pay');
        assert.match(await page.getByRole('status').textContent(), /Amazon Pay declined the payment \(E401/);
        assert.deepEqual(await actionButtons(page), []);
        assert.equal(await page.locator('dl.summary dt', { hasText: 'お届け先 / Ship to' }).count(), 0);
        await shot(page, 'declined-final-phone.png');
        assertCleanPages(problems);
    } finally {
        await context.close();
    }
});

test('pages render without console errors and send a Content-Security-Policy; unknown addresses have pages', { timeout: 90000 }, async (t) => {
    const { context, page, problems } = await openPage(DESKTOP);
    const csp = {};
    const keep = async (name, p, response) => {
        csp[name] = await response.headerValue('content-security-policy');
        const overflow = await p.evaluate(() => document.documentElement.scrollWidth > window.innerWidth);
        assert.equal(overflow, false, `${p.url()} scrolls sideways`);
    };
    try {
        await buy(page, {
            capture: true,
            hooks: {
                handoff: async (p) => { await shot(p, 'handoff-desktop.png'); },
                signin: async (p, r) => { await keep('signin', p, r); await shot(p, 'emulator-signin-desktop.png'); },
                review: async (p, r) => {
                    await keep('review', p, r);
                    await p.setViewportSize(PHONE);
                    await shot(p, 'kessai-confirm-phone.png');
                    await p.setViewportSize(DESKTOP);
                },
                confirm: async (p, r) => { await keep('confirm', p, r); await shot(p, 'emulator-confirm-desktop.png'); },
            },
        });
        assert.equal(await orderStatus(page), 'captured ¥3,240');
        await shot(page, 'demo-order-desktop.png');
        for (const name of ['signin', 'confirm']) {
            const value = csp[name];
            assert.ok(value, `the emulator's ${name} page has no Content-Security-Policy header`);
            assert.match(value, /default-src 'none'/, value);
            assert.match(value, /frame-ancestors 'none'/, value);
            assert.ok(value.includes(server.gateway), `${name}: form-action does not name ${server.gateway}: ${value}`);
        }
        assert.ok(csp.review, "Kessai's confirmation page has no Content-Security-Policy header");

        // Addresses without a page, on both servers, and the emulator's root.
        const expected = [];
        for (const [url, status, heading] of [
            [`${server.emulator}/checkout/signin?amazonCheckoutSessionId=nope`, 400, 'ご利用いただけません / Cannot continue'],
            [`${server.gateway}/no/such/page`, 404, 'ページが見つかりません / Page not found'],
            [`${server.emulator}/no/such/page`, 404, 'ページが見つかりません / Page not found'],
            [`${server.emulator}/`, 200, 'Amazon Pay emulator'],
        ]) {
            const r = await page.goto(url);
            assert.equal(r.status() >= 400, status >= 400, `${url} answers ${r.status()}`);
            assert.ok(await r.headerValue('content-security-policy'), `${url} has no CSP`);
            await page.getByRole('heading', { name: heading }).waitFor();
            await assertStyled(page);
            expected.push(url);
        }
        await shot(page, 'emulator-root-desktop.png');
        assertCleanPages(problems.filter((p) => !expected.some((u) => p.includes(u))));
    } finally {
        await context.close();
    }
    t.diagnostic(keepShots ? `screenshots in ${shotDir}` : 'screenshots deleted (set KESSAI_SCREENSHOTS=DIR to keep them)');
});

/** From the demo shop to the emulator's sign-in page of a new one-time order. */
async function toSignin(page) {
    await page.goto(`${server.gateway}/`);
    await page.locator('form.item').nth(0)
        .getByRole('button', { name: 'Amazon Payで支払う / Pay with Amazon Pay' }).click();
    await pressAmazonPayButton(page);
    await waitForPath(page, server.emulator, '/checkout/signin?amazonCheckoutSessionId=');
}

/** From the emulator's sign-in page with the defaults: Kessai's 確定, pay, the demo order page. */
async function payFromSignin(page) {
    await page.getByRole('button', { name: '続行 / Continue' }).click();
    await waitForPath(page, server.gateway, '/amazonpay/review/');
    await page.getByRole('button', { name: '確定 / Place order' }).click();
    await waitForPath(page, server.emulator, '/checkout/confirm');
    await page.getByRole('button', { name: '支払う / Pay' }).click();
    await waitForPath(page, server.gateway, '/demo/orders/');
}

test('with script off, the hand-off page\'s form posts the signed payload and the purchase completes', { timeout: 90000 }, async () => {
    const context = await browser.newContext({ viewport: DESKTOP, javaScriptEnabled: false });
    context.setDefaultTimeout(20000);
    const page = await context.newPage();
    try {
        await page.goto(`${server.gateway}/`);
        await page.locator('form.item').nth(0)
            .getByRole('button', { name: 'Amazon Payで支払う / Pay with Amazon Pay' }).click();
        // No script: no Amazon Pay button was rendered; the page's own form is there instead.
        const fallback = page.getByRole('button', { name: 'Amazon Payへ進む / Continue to Amazon Pay' });
        await fallback.waitFor();
        assert.equal(await page.getByRole('button', { name: 'Amazon Pay', exact: true }).count(), 0);
        await shot(page, 'handoff-no-script.png');
        await fallback.click();
        await waitForPath(page, server.emulator, '/checkout/signin?amazonCheckoutSessionId=');
        await payFromSignin(page);
        await page.getByRole('heading', { name: /^注文 \/ Order / }).waitFor();
        assert.equal(await orderStatus(page), 'authorized ¥3,240');
    } finally {
        await context.close();
    }
});

test('a cancel at Amazon is confirmed on Kessai\'s page, and the buyer can start again', { timeout: 90000 }, async () => {
    const { context, page, problems } = await openPage(DESKTOP);
    try {
        await toSignin(page);
        await page.getByRole('button', { name: 'キャンセル / Cancel' }).click();
        await waitForPath(page, server.gateway, '/amazonpay/cancel/');
        await page.getByRole('heading', { name: 'お支払いをキャンセルしました / Payment canceled' }).waitFor();
        await assertStyled(page);
        await page.getByRole('button', { name: 'ショップに戻る / Return to the shop' }).click();
        await waitForPath(page, server.gateway, '/demo/orders/');
        assert.equal(await orderStatus(page), 'canceled by the buyer');
        assert.match(await page.getByRole('status').textContent(), /You canceled the payment at Amazon Pay\./);
        assert.deepEqual(await actionButtons(page), []);
        assertCleanPages(problems);

        // (That a form of another site cannot abandon or confirm an order is tested without a
        // browser in crates/kessai/tests/buyer_csrf.rs: a page of about:blank posting across sites
        // was seen to hang Chromium here now and then.)
        await toSignin(page);
        await payFromSignin(page);
        assert.equal(await orderStatus(page), 'authorized ¥3,240');
        assertCleanPages(problems);
    } finally {
        await context.close();
    }
});

/**
 * The agreement as the emulator reports it to its buyer: the consent widget's page, opened with
 * the buyer's access token (the cookie Widgets.js keeps on the shop's origin).
 */
async function agreementAtEmulator(context, sellerId, id) {
    const cookies = await context.cookies(server.gateway);
    const token = cookies.find((c) => c.name === 'amazon_Login_accessToken');
    assert.ok(token, 'Widgets.js kept the access token');
    const q = new URLSearchParams({
        sellerId, origin: server.gateway, access_token: decodeURIComponent(token.value), amazonBillingAgreementId: id, env: 'sandbox',
    });
    const r = await fetch(`${server.emulator}/mws/widgets/consent?${q}`);
    assert.equal(r.status, 200);
    const html = await r.text();
    return {
        state: /data-state="([^"]*)"/.exec(html)[1],
        consent: /data-consent="([^"]*)"/.exec(html)[1],
        token: decodeURIComponent(token.value),
    };
}

test('Auto Pay (seed 000): login, address, payment, consent, confirm, first charge, later charge, refund', { timeout: 120000 }, async () => {
    const { context, page, problems } = await openPage();
    const start = await page.goto(`${server.gateway}/demo/autopay`);
    assert.equal(start.status(), 200);
    assert.match(start.headers()['content-security-policy'], new RegExp(`script-src 'self' ${server.emulator}`));
    await assertStyled(page);
    await page.getByRole('heading', { name: 'サブスクリプション (Auto Pay)' }).waitFor();
    const sellerId = await page.locator('#autopay').getAttribute('data-seller-id');
    const submit = page.locator('#autopay-confirm button');
    assert.equal(await submit.isDisabled(), true);

    // Login with Amazon in a popup.
    const [popup] = await Promise.all([
        page.waitForEvent('popup'),
        page.getByRole('button', { name: 'Amazonアカウントでお支払い' }).click(),
    ]);
    await popup.waitForLoadState('load');
    assert.ok(onEmulator(popup.url()) && new URL(popup.url()).pathname === '/ap/oa', popup.url());
    await popup.getByRole('heading', { name: 'Amazonアカウントでログイン / Login with Amazon' }).waitFor();
    await assertStyled(popup);
    await shot(popup, 'autopay-login-desktop.png');
    await Promise.all([
        popup.waitForEvent('close'),
        popup.getByRole('button', { name: 'ログイン / Sign in' }).click(),
    ]);
    await page.getByText('ログインしました / Signed in').waitFor();

    // The address book makes a Draft agreement; the default choices are made at once.
    const idText = page.locator('#agreement-id');
    await page.waitForFunction(() => /^C0\d-\d{7}-\d{7}$/.test(document.getElementById('agreement-id').textContent));
    const id = (await idText.textContent()).trim();
    const addressBook = page.frameLocator('#addressBookWidgetDiv iframe');
    await addressBook.getByText('選択しました / Selected').waitFor();
    await addressBook.locator('input[value="taro-office"]').check();
    const wallet = page.frameLocator('#walletWidgetDiv iframe');
    await wallet.getByText('選択しました / Selected').waitFor();
    await wallet.getByText(/JCB \*\*\*\*0005/).click();
    const consent = page.frameLocator('#consentWidgetDiv iframe');
    let atEmulator = await agreementAtEmulator(context, sellerId, id);
    assert.deepEqual([atEmulator.state, atEmulator.consent], ['Draft', 'false']);
    assert.equal(await submit.isDisabled(), true, 'no subscribing before consent');
    await consent.getByRole('checkbox').check();
    await consent.getByText('同意しました / Consent given').waitFor();
    await page.waitForFunction(() => !document.querySelector('#autopay-confirm button').disabled);
    await shot(page, 'autopay-widgets-desktop.png');

    // The profile API knows the buyer by the same token.
    const profile = await (await fetch(`${server.emulator}/user/profile`, { headers: { authorization: `bearer ${atEmulator.token}` } })).json();
    assert.equal(profile.name, '山田 太郎');

    // Confirm: Set, Confirm, Validate, Authorize (sync, CaptureNow) on the shop's server.
    await submit.click();
    await waitForPath(page, server.gateway, `/demo/autopay/agreements/${id}`);
    await assertStyled(page);
    await page.getByText(/お支払いが完了しました/).waitFor();
    assert.equal((await page.locator('.agreement-state').textContent()).trim(), 'Open');
    assert.equal((await page.locator('.capture-state').textContent()).trim(), 'Completed');
    assert.equal((await page.locator('.capture-amount').textContent()).trim(), '¥980');
    assert.match(await page.locator('.address').textContent(), /530-0001/);
    assert.equal((await page.locator('.remaining').textContent()).trim(), '¥49,020');
    const firstCapture = (await page.locator('.capture-id').textContent()).trim();
    atEmulator = await agreementAtEmulator(context, sellerId, id);
    assert.deepEqual([atEmulator.state, atEmulator.consent], ['Open', 'true']);

    // A later month's charge.
    await page.getByRole('button', { name: /^もう一度請求する/ }).click();
    await page.waitForURL((u) => u.searchParams.get('capture') !== firstCapture);
    await page.getByText(/お支払いが完了しました/).waitFor();
    assert.equal((await page.locator('.capture-state').textContent()).trim(), 'Completed');
    assert.equal((await page.locator('.remaining').textContent()).trim(), '¥48,040');

    // A part refund of it: Pending at first, as Amazon answers.
    await page.locator('input[name=amount]').fill('500');
    await page.getByRole('button', { name: '返金する / Refund' }).click();
    await page.waitForURL((u) => u.searchParams.has('refund'));
    assert.equal((await page.locator('.refund-state').textContent()).trim(), 'Pending');
    await shot(page, 'autopay-final-desktop.png');
    assert.deepEqual(problems, []);
    await context.close();
});
