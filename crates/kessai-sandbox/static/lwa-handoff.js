// The end of the Login with Amazon popup: hands the answer to the page that opened it (only to
// its origin), then closes.
(function () {
    'use strict';
    var list = document.getElementById('lwa-answer');
    var answer = {};
    Array.prototype.forEach.call(list.querySelectorAll('li'), function (li) {
        answer[li.dataset.name] = li.dataset.value;
    });
    if (answer.expires_in) answer.expires_in = Number(answer.expires_in);
    if (window.opener) {
        window.opener.postMessage({ kessai: 'lwa', answer: answer }, list.dataset.origin);
        window.close();
    }
})();
