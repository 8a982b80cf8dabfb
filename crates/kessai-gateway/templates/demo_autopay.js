// The demo shop's Auto Pay page: the Amazon Pay button, then the address book, wallet and
// consent widgets of the emulator's Widgets.js; 申し込む is enabled once all three are done.
(function () {
    'use strict';
    var root = document.getElementById('autopay');
    if (!root) return;
    var sellerId = root.dataset.sellerId;
    var form = document.getElementById('autopay-confirm');
    var idField = form.querySelector('input[name=billingAgreementId]');
    var submit = form.querySelector('button');
    var done = { address: false, payment: false, consent: false };

    function say(id, text) { document.getElementById(id).textContent = text; }
    function update() {
        submit.disabled = !(idField.value && done.address && done.payment && done.consent);
    }
    function fail(error) { say('login-status', error.getErrorMessage() + ' (' + error.getErrorCode() + ')'); }

    function bindWalletAndConsent(id) {
        new OffAmazonPayments.Widgets.Wallet({
            sellerId: sellerId,
            agreementType: 'BillingAgreement',
            amazonBillingAgreementId: id,
            onPaymentSelect: function () { done.payment = true; update(); },
            design: { designMode: 'responsive' },
            onError: fail,
        }).bind('walletWidgetDiv');
        new OffAmazonPayments.Widgets.Consent({
            sellerId: sellerId,
            amazonBillingAgreementId: id,
            onReady: function (status) { done.consent = status.getConsentStatus() === 'true'; update(); },
            onConsent: function (status) { done.consent = status.getConsentStatus() === 'true'; update(); },
            design: { designMode: 'responsive' },
            onError: fail,
        }).bind('consentWidgetDiv');
    }

    function showWidgets() {
        document.getElementById('widgets').hidden = false;
        new OffAmazonPayments.Widgets.AddressBook({
            sellerId: sellerId,
            agreementType: 'BillingAgreement',
            onReady: function (billingAgreement) {
                idField.value = billingAgreement.getAmazonBillingAgreementId();
                say('agreement-id', idField.value);
                bindWalletAndConsent(idField.value);
            },
            onAddressSelect: function () { done.address = true; update(); },
            design: { designMode: 'responsive' },
            onError: fail,
        }).bind('addressBookWidgetDiv');
    }

    window.onAmazonLoginReady = function () {
        amazon.Login.setClientId(root.dataset.clientId);
    };
    window.onAmazonPaymentsReady = function () {
        OffAmazonPayments.Button('AmazonPayButton', sellerId, {
            type: 'PwA',
            authorization: function () {
                amazon.Login.authorize({ scope: 'profile postal_code payments:widget payments:shipping_address', popup: true }, function (answer) {
                    if (answer.error) {
                        say('login-status', 'ログインできませんでした / Not signed in: ' + answer.error);
                        return;
                    }
                    say('login-status', 'ログインしました / Signed in');
                    showWidgets();
                });
            },
            onError: fail,
        });
    };
})();
