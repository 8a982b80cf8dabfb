/*
 * Kessai's Amazon Pay emulator: the double of Amazon's checkout.js.
 *
 * The same global API as Amazon's script: amazon.Pay.renderButton(selector, options) returns a
 * button with onClick(callback) and initCheckout(options); amazon.Pay.initCheckout(options);
 * amazon.Pay.bindChangeAction(selector, {amazonCheckoutSessionId, changeAction});
 * amazon.Pay.signout(). Pressing a button posts its createCheckoutSessionConfig (payloadJSON,
 * signature, publicKeyId, algorithm) and options as a form to this emulator's /checkout/start,
 * which checks the signature and the payload, creates the checkout session and shows its sign-in
 * page. Bad options throw an Error that names the option (and log it), as nothing is sent.
 */
(function (global) {
  'use strict';

  var current = document.currentScript;
  var origin = current && current.src ? new URL(current.src, document.baseURI).origin : '';

  var PRODUCT_TYPES = ['PayAndShip', 'PayOnly', 'SignIn'];
  var PLACEMENTS = ['Home', 'Product', 'Cart', 'Checkout', 'Other'];
  var COLORS = ['Gold', 'LightGray', 'DarkGray'];
  var LANGUAGES = ['ja_JP', 'en_US', 'en_GB', 'de_DE', 'fr_FR', 'it_IT', 'es_ES'];
  var CURRENCIES = ['JPY', 'USD', 'EUR', 'GBP'];
  var CHANGE_ACTIONS = ['changeAddress', 'changePayment'];

  function fail(message) {
    var error = new Error('amazon.Pay: ' + message);
    if (global.console) { global.console.error(error.message); }
    throw error;
  }

  function oneOf(value, name, choices) {
    if (value !== undefined && choices.indexOf(value) < 0) {
      fail(name + ' ' + JSON.stringify(value) + ' is not one of ' + choices.join(', '));
    }
  }

  function checkOptions(options) {
    if (!options || typeof options !== 'object') { fail('options must be an object'); }
    if (!options.merchantId) { fail('merchantId is required'); }
    if (!options.ledgerCurrency) { fail('ledgerCurrency is required'); }
    oneOf(options.ledgerCurrency, 'ledgerCurrency', CURRENCIES);
    oneOf(options.productType, 'productType', PRODUCT_TYPES);
    oneOf(options.placement, 'placement', PLACEMENTS);
    oneOf(options.buttonColor, 'buttonColor', COLORS);
    oneOf(options.checkoutLanguage, 'checkoutLanguage', LANGUAGES);
    var estimated = options.estimatedOrderAmount;
    if (estimated !== undefined) {
      if (!estimated || typeof estimated !== 'object' || estimated.amount === undefined) {
        fail('estimatedOrderAmount must be {amount, currencyCode}');
      }
      oneOf(estimated.currencyCode, 'estimatedOrderAmount.currencyCode', CURRENCIES);
    }
  }

  function merge(base, more) {
    var out = {};
    var key;
    for (key in base) { if (Object.prototype.hasOwnProperty.call(base, key)) { out[key] = base[key]; } }
    for (key in more) { if (Object.prototype.hasOwnProperty.call(more, key)) { out[key] = more[key]; } }
    return out;
  }

  /* A top-level form post to the emulator, as Amazon's hand-off navigates the page. */
  function post(fields) {
    var form = document.createElement('form');
    form.method = 'post';
    form.action = origin + '/checkout/start';
    form.style.display = 'none';
    Object.keys(fields).forEach(function (name) {
      var input = document.createElement('input');
      input.type = 'hidden';
      input.name = name;
      input.value = fields[name];
      form.appendChild(input);
    });
    document.body.appendChild(form);
    form.submit();
  }

  function start(options) {
    checkOptions(options);
    var config = options.createCheckoutSessionConfig;
    if (!config || typeof config !== 'object') { fail('createCheckoutSessionConfig is required'); }
    if (typeof config.payloadJSON !== 'string' || config.payloadJSON === '') {
      fail('createCheckoutSessionConfig.payloadJSON must be the JSON string that was signed');
    }
    if (!config.signature) { fail('createCheckoutSessionConfig.signature is required'); }
    if (!config.publicKeyId) { fail('createCheckoutSessionConfig.publicKeyId is required'); }
    post({
      payloadJSON: config.payloadJSON,
      signature: config.signature,
      publicKeyId: config.publicKeyId,
      algorithm: config.algorithm || '',
      merchantId: options.merchantId,
      ledgerCurrency: options.ledgerCurrency,
      checkoutLanguage: options.checkoutLanguage || '',
      productType: options.productType || 'PayAndShip',
      placement: options.placement || '',
      sandbox: options.sandbox ? 'true' : 'false'
    });
  }

  var STYLE = [
    ':host{display:block}',
    'button{display:flex;flex-direction:column;align-items:center;justify-content:center;width:100%;min-height:45px;',
    'border-radius:4px;border:1px solid #a88734;cursor:pointer;font:bold 16px/1.2 system-ui,sans-serif;padding:6px 12px}',
    'button.Gold{background:#ffd814;color:#0f1111}',
    'button.LightGray{background:#e7e9ec;color:#0f1111;border-color:#adb1b8}',
    'button.DarkGray{background:#232f3e;color:#fff;border-color:#232f3e}',
    'small{font-weight:normal;font-size:11px;margin-top:2px}'
  ].join('');

  var LABELS = {
    PayAndShip: 'Amazonアカウントでお支払い',
    PayOnly: 'Amazonアカウントでお支払い',
    SignIn: 'Amazonでログイン'
  };

  function renderButton(selector, options) {
    var container = typeof selector === 'string' ? document.querySelector(selector) : selector;
    if (!container) { fail('no element matches ' + selector); }
    checkOptions(options);
    var root = container.shadowRoot || (container.attachShadow ? container.attachShadow({ mode: 'open' }) : container);
    while (root.firstChild) { root.removeChild(root.firstChild); }
    var style = document.createElement('style');
    style.textContent = STYLE;
    root.appendChild(style);
    var button = document.createElement('button');
    button.type = 'button';
    button.className = options.buttonColor || 'Gold';
    button.setAttribute('aria-label', 'Amazon Pay');
    button.appendChild(document.createTextNode('amazon pay'));
    var small = document.createElement('small');
    small.textContent = LABELS[options.productType || 'PayAndShip'] + (options.sandbox ? ' (sandbox)' : '');
    button.appendChild(small);
    root.appendChild(button);

    var handler = null;
    button.addEventListener('click', function () {
      if (handler) { handler(); return; }
      if (!options.createCheckoutSessionConfig) {
        fail('the button has no createCheckoutSessionConfig and no onClick handler');
      }
      start(options);
    });
    return {
      onClick: function (callback) {
        if (typeof callback !== 'function') { fail('onClick takes a function'); }
        handler = callback;
      },
      initCheckout: function (more) { start(merge(options, more || {})); }
    };
  }

  function bindChangeAction(selector, options) {
    var element = typeof selector === 'string' ? document.querySelector(selector) : selector;
    if (!element) { fail('no element matches ' + selector); }
    if (!options || !options.amazonCheckoutSessionId) { fail('amazonCheckoutSessionId is required'); }
    oneOf(options.changeAction, 'changeAction', CHANGE_ACTIONS);
    if (!options.changeAction) { fail('changeAction is required'); }
    element.addEventListener('click', function (event) {
      event.preventDefault();
      /* The sign-in page lets the buyer choose the address and the payment method again, then
         returns to checkoutReviewReturnUrl. */
      global.location.assign(origin + '/checkout/signin?amazonCheckoutSessionId='
        + encodeURIComponent(options.amazonCheckoutSessionId));
    });
  }

  /* The emulator keeps no Amazon sign-in between checkouts (each sign-in page asks again), so
     there is nothing to end; the promise resolves as Amazon's does once the buyer is out. */
  function signout() {
    return Promise.resolve();
  }

  global.amazon = global.amazon || {};
  global.amazon.Pay = {
    renderButton: renderButton,
    initCheckout: initCheckout,
    bindChangeAction: bindChangeAction,
    signout: signout
  };

  function initCheckout(options) { start(options); }
})(window);
