// Runs inside one widget frame (address book, wallet or consent): makes or reads the billing
// agreement, sends the buyer's choices to the emulator with the frame's token, and tells the
// merchant's page (only its origin) what happened.
(function () {
    'use strict';
    var d = document.body.dataset;
    var status = document.querySelector('.status');

    function tell(event, extra) {
        var message = { kessai: 'widget', frame: d.frame, event: event };
        Object.keys(extra || {}).forEach(function (k) { message[k] = extra[k]; });
        window.parent.postMessage(message, d.origin);
    }

    function send(op, value) {
        var body = new URLSearchParams({ page: d.page, op: op, value: value || '' });
        return fetch('/mws/widgets/action', { method: 'POST', body: body }).then(function (r) {
            return r.json().then(function (answer) {
                if (!r.ok) throw answer;
                return answer;
            });
        });
    }

    function fail(e) {
        var code = (e && e.error) || 'InternalServerError';
        var message = (e && e.message) || String(e);
        if (status) status.textContent = message;
        tell('error', { code: code, message: message });
    }

    function resize() {
        tell('resize', { height: document.documentElement.scrollHeight });
    }

    if (d.errorCode) {
        tell('error', { code: d.errorCode, message: d.errorMessage });
        resize();
        return;
    }

    if (d.kind === 'consent') {
        var box = document.querySelector('input[name=consent]');
        tell('ready', { agreement: { amazonBillingAgreementId: d.agreement }, consent: d.consent === 'true' });
        box.addEventListener('change', function () {
            box.disabled = true;
            send('consent', box.checked ? 'true' : 'false').then(function (ba) {
                status.textContent = ba.consent ? '同意しました / Consent given' : '同意を取り消しました / Consent withdrawn';
                tell('consent', { agreement: ba, consent: ba.consent });
            }, function (e) {
                box.checked = !box.checked;
                fail(e);
            }).then(function () { box.disabled = false; });
        });
        resize();
        return;
    }

    var op = d.kind === 'addressbook' ? 'address' : 'payment';
    var selected = d.kind === 'addressbook' ? 'addressSelect' : 'paymentSelect';
    function choose(value) {
        return send(op, value).then(function (ba) {
            status.textContent = '選択しました / Selected';
            tell(selected, { agreement: ba });
        });
    }
    var start = d.agreement ? Promise.resolve({ amazonBillingAgreementId: d.agreement }) : send('create');
    start.then(function (ba) {
        d.agreement = ba.amazonBillingAgreementId;
        tell('ready', { agreement: ba });
        // As Amazon's widgets do, the buyer's first (default) choice is made at once.
        var checked = document.querySelector('input[name=choice]:checked');
        if (checked && !d.chosen) return choose(checked.value);
        return undefined;
    }).catch(fail);
    Array.prototype.forEach.call(document.querySelectorAll('input[name=choice]'), function (input) {
        input.addEventListener('change', function () {
            if (d.agreement) choose(input.value).catch(fail);
        });
    });
    resize();
})();
