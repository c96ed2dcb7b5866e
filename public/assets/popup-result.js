/*
 * The last step of a popup flow: hands the result to the page that opened the popup, then closes.
 * The message goes to one exact origin, the opener's as checked against ALLOWED_RETURN_ORIGINS
 * by Latchkey, never to '*': if the opener is anything else the browser drops it.
 */
(function () {
  'use strict';

  var CLOSE_DELAY_MS = 150;

  function readResult() {
    var node = document.getElementById('latchkey-result');
    if (!node) return null;
    try {
      return JSON.parse(node.textContent);
    } catch (e) {
      return null;
    }
  }

  function deliver(result) {
    var opener = window.opener;
    if (!result || !opener || opener.closed) return false;
    opener.postMessage(result.message, result.targetOrigin);
    return true;
  }

  if (deliver(readResult())) {
    // connect.js closes the popup as soon as it has the message; this is the fallback.
    setTimeout(function () {
      window.close();
    }, CLOSE_DELAY_MS);
  } else {
    var orphan = document.getElementById('no-opener');
    if (orphan) orphan.hidden = false;
  }
})();
