// The emulator's Widgets.js: what Amazon Pay's script gives a merchant page for Auto Pay
// (billing agreements) in Japan. It defines `amazon.Login` (Login with Amazon) and
// `OffAmazonPayments.Button` / `OffAmazonPayments.Widgets.{AddressBook, Wallet, Consent}`, renders
// the widgets as frames served by this emulator, and calls `window.onAmazonLoginReady` and
// `window.onAmazonPaymentsReady` once loaded.
(function () {
    'use strict';
    var source = new URL(document.currentScript.src);
    var base = source.origin;
    var env = source.pathname.indexOf('/sandbox/') >= 0 ? 'sandbox' : 'live';
    var TOKEN_COOKIE = 'amazon_Login_accessToken';
    var clientId = null;
    var accessToken = readTokenCookie();
    var frames = {};
    var frameCount = 0;
    var pendingLogin = null;

    function readTokenCookie() {
        var found = document.cookie.split(';').map(function (c) { return c.trim(); })
            .filter(function (c) { return c.indexOf(TOKEN_COOKIE + '=') === 0; })[0];
        return found ? decodeURIComponent(found.slice(TOKEN_COOKIE.length + 1)) : null;
    }

    function keepToken(token, expiresIn) {
        accessToken = token;
        document.cookie = TOKEN_COOKIE + '=' + encodeURIComponent(token) + '; path=/; max-age='
            + (expiresIn || 3600) + (location.protocol === 'https:' ? '; secure' : '');
    }

    function element(id) {
        var el = document.getElementById(id);
        if (!el) throw new Error('OffAmazonPayments: there is no element #' + id);
        return el;
    }

    function call(fn, arg) {
        if (typeof fn === 'function') fn(arg);
    }

    function randomState() {
        var bytes = new Uint8Array(16);
        crypto.getRandomValues(bytes);
        return Array.prototype.map.call(bytes, function (b) { return ('0' + b.toString(16)).slice(-2); }).join('');
    }

    window.addEventListener('message', function (e) {
        if (e.origin !== base || !e.data) return;
        if (e.data.kessai === 'widget') {
            var frame = frames[e.data.frame];
            if (frame && e.source === frame.iframe.contentWindow) frame.widget.receive(e.data, frame.iframe);
        } else if (e.data.kessai === 'lwa' && pendingLogin && e.data.answer
            && e.data.answer.state === pendingLogin.state) {
            var done = pendingLogin.done;
            pendingLogin = null;
            done(e.data.answer);
        }
    });

    // ---- Login with Amazon ----
    var Login = {
        setClientId: function (id) { clientId = id; },
        getClientId: function () { return clientId; },
        setSandboxMode: function () {},
        setUseCookie: function () {},
        setRegion: function () {},
        authorize: function (options, next) {
            options = options || {};
            var scope = Array.isArray(options.scope) ? options.scope.join(' ') : (options.scope || 'profile');
            var state = randomState();
            var query = new URLSearchParams({ client_id: clientId || '', scope: scope, response_type: 'token', state: state });
            var request = { status: 'in progress' };
            if (options.popup === false) {
                query.set('redirect_uri', typeof next === 'string' ? new URL(next, location.href).href : location.href);
                location.href = base + '/ap/oa?' + query;
                return request;
            }
            query.set('origin', location.origin);
            pendingLogin = {
                state: state,
                done: function (answer) {
                    request.status = 'complete';
                    if (answer.access_token) keepToken(answer.access_token, answer.expires_in);
                    answer.status = 'complete';
                    if (typeof next === 'function') {
                        next(answer);
                    } else if (typeof next === 'string') {
                        var to = new URL(next, location.href);
                        Object.keys(answer).forEach(function (k) { to.searchParams.set(k, answer[k]); });
                        location.href = to.href;
                    }
                },
            };
            window.open(base + '/ap/oa?' + query, 'amazonloginpopup', 'width=520,height=680');
            return request;
        },
        logout: function () {
            accessToken = null;
            document.cookie = TOKEN_COOKIE + '=; path=/; max-age=0';
        },
    };

    // ---- Buttons ----
    function Button(id, sellerId, options) {
        options = options || {};
        var holder = element(id);
        var login = options.type === 'LwA' || options.type === 'Login' || options.type === 'LoginWithAmazon';
        var button = document.createElement('button');
        button.type = 'button';
        button.className = 'amazonpay-button';
        button.textContent = login ? 'Amazonアカウントでログイン' : 'Amazonアカウントでお支払い';
        button.style.background = '#ffd814';
        button.style.border = '1px solid #fcd200';
        button.style.borderRadius = '4px';
        button.style.padding = '0.5em 1.2em';
        button.style.cursor = 'pointer';
        button.style.font = 'inherit';
        button.addEventListener('click', function () {
            if (typeof options.authorization === 'function') {
                options.authorization();
            } else {
                Login.authorize({ scope: 'profile payments:widget payments:shipping_address', popup: true }, options.redirectUrl);
            }
        });
        holder.textContent = '';
        holder.appendChild(button);
        this.sellerId = sellerId;
    }

    // ---- Widgets ----
    function billingAgreement(a) {
        var id = a && a.amazonBillingAgreementId;
        return { getAmazonBillingAgreementId: function () { return id; } };
    }
    function consentStatus(given) {
        return { getConsentStatus: function () { return given ? 'true' : 'false'; } };
    }
    function widgetError(m) {
        return {
            getErrorCode: function () { return m.code; },
            getErrorMessage: function () { return m.message; },
        };
    }

    function Widget(kind, options) {
        this.kind = kind;
        this.options = options || {};
    }
    Widget.prototype.bind = function (id) {
        var o = this.options;
        var holder = element(id);
        var name = 'w' + (++frameCount);
        var query = new URLSearchParams({
            sellerId: o.sellerId || '', origin: location.origin, access_token: accessToken || '', env: env, frame: name,
        });
        if (o.amazonBillingAgreementId) query.set('amazonBillingAgreementId', o.amazonBillingAgreementId);
        var iframe = document.createElement('iframe');
        iframe.src = base + '/mws/widgets/' + this.kind + '?' + query;
        iframe.title = 'Amazon Pay ' + this.kind;
        iframe.style.width = '100%';
        iframe.style.border = '0';
        var size = o.design && o.design.size;
        iframe.style.height = size && size.height ? String(size.height).replace(/^(\d+)$/, '$1px') : '200px';
        holder.textContent = '';
        holder.appendChild(iframe);
        frames[name] = { iframe: iframe, widget: this };
        return this;
    };
    Widget.prototype.receive = function (m, iframe) {
        var o = this.options;
        switch (m.event) {
        case 'ready':
            call(o.onReady, this.kind === 'consent' ? consentStatus(m.consent) : billingAgreement(m.agreement));
            break;
        case 'addressSelect':
            call(o.onAddressSelect, billingAgreement(m.agreement));
            break;
        case 'paymentSelect':
            call(o.onPaymentSelect, billingAgreement(m.agreement));
            break;
        case 'consent':
            call(o.onConsent, consentStatus(m.consent));
            break;
        case 'resize':
            if (!(o.design && o.design.size && o.design.size.height)) iframe.style.height = (m.height + 4) + 'px';
            break;
        case 'error':
            call(o.onError, widgetError(m));
            break;
        default:
        }
    };
    function widget(kind) {
        return function (options) { return new Widget(kind, options); };
    }

    window.amazon = window.amazon || {};
    window.amazon.Login = Login;
    window.OffAmazonPayments = {
        Button: function (id, sellerId, options) { return new Button(id, sellerId, options); },
        Widgets: {
            AddressBook: widget('addressbook'),
            Wallet: widget('wallet'),
            Consent: widget('consent'),
        },
    };

    function ready() {
        call(window.onAmazonLoginReady);
        call(window.onAmazonPaymentsReady);
    }
    if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', ready);
    else ready();
})();
