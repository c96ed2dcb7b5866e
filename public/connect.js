/*!
 * Latchkey connect.js: lets a host application connect a user's account at a provider.
 *
 *   <script src="https://latchkey.example.com/connect.js"></script>
 *   Latchkey.connect({ provider: 'videoask', token })
 *     .then(({ provider, connectionId }) => …)
 *     .catch((err) => err.code); // 'access_denied', 'closed', 'link_expired', 'provider_error', …
 *
 * It opens Latchkey in a popup and waits for one message from it, checked for Latchkey's exact
 * origin and for coming from that very popup. The popup tells Latchkey the opener's origin,
 * which must be in ALLOWED_RETURN_ORIGINS; Latchkey posts to that origin only (never '*'), so a
 * page on any other origin receives nothing. When the browser blocks the popup, the page itself
 * goes to Latchkey and comes back with ?status=…&provider=…&connection_id=… (the promise then
 * never settles: the page is navigating away).
 *
 * Plain ES2017, no build step, no dependencies.
 */
(function (global) {
  'use strict';

  // Latchkey writes ALLOWED_RETURN_ORIGINS here when it serves this file; null means unknown.
  var ALLOWED_ORIGINS = /* latchkey:allowed-origins */ null;
  var PROVIDER_ID = /^[a-z][a-z0-9-]{1,40}$/;
  var CONNECTION_ID = /^[A-Za-z0-9._:@-]{1,128}$/;
  var POLL_MS = 250;
  var POPUP_WIDTH = 520;
  var POPUP_HEIGHT = 720;

  var script = document.currentScript;
  var scriptBase = script && script.src ? baseOf(script.src) : null;

  /** Latchkey's base URL from this script's own URL: https://host[/base]/connect.js → https://host[/base]. */
  function baseOf(src) {
    var url = new URL(src, location.href);
    return url.origin + url.pathname.replace(/\/connect\.js$/, '').replace(/\/+$/, '');
  }

  function connectError(code, message) {
    var error = new Error(message);
    error.name = 'LatchkeyConnectError';
    error.code = code;
    return error;
  }

  function authUrl(base, provider, options, extra) {
    var params = new URLSearchParams();
    if (options.token) params.set('token', String(options.token));
    else if (options.connectionId) params.set('connection_id', String(options.connectionId));
    Object.keys(extra).forEach(function (name) {
      params.set(name, extra[name]);
    });
    var query = params.toString();
    return base + '/auth/' + encodeURIComponent(provider) + (query ? '?' + query : '');
  }

  /** A window centred on the current one, small enough to read as a dialog. */
  function popupFeatures() {
    var left = (window.screenX || 0) + ((window.outerWidth || POPUP_WIDTH) - POPUP_WIDTH) / 2;
    var top = (window.screenY || 0) + ((window.outerHeight || POPUP_HEIGHT) - POPUP_HEIGHT) / 2;
    return (
      'popup=yes,width=' +
      POPUP_WIDTH +
      ',height=' +
      POPUP_HEIGHT +
      ',left=' +
      Math.max(0, Math.round(left)) +
      ',top=' +
      Math.max(0, Math.round(top))
    );
  }

  /** Latchkey refuses a return_to on an origin it does not allow, so only ask to come back when allowed. */
  function mayReturnHere() {
    return ALLOWED_ORIGINS === null || ALLOWED_ORIGINS.indexOf(location.origin) !== -1;
  }

  function validate(options) {
    if (typeof options.provider !== 'string' || !PROVIDER_ID.test(options.provider)) {
      throw connectError('invalid_request', 'Latchkey.connect needs a provider id such as "videoask".');
    }
    if (options.token !== undefined && (typeof options.token !== 'string' || !options.token)) {
      throw connectError('invalid_request', 'token must be the string returned by POST /connect-sessions.');
    }
    if (options.connectionId !== undefined && !CONNECTION_ID.test(String(options.connectionId))) {
      throw connectError('invalid_request', 'connectionId must match ^[A-Za-z0-9._:@-]{1,128}$.');
    }
  }

  /**
   * Connects one account. Resolves with { provider, connectionId }; rejects with an Error whose
   * `code` is 'access_denied' (the user declined), 'closed' (the user closed the window), or the
   * error code Latchkey reported: 'link_expired' for an expired or already used link,
   * 'provider_error' when the token exchange failed, or the provider's own refusal as one of
   * RFC 6749 §4.1.2.1's codes ('server_error', 'temporarily_unavailable', 'invalid_scope', …).
   *
   * @param {{ provider: string, token?: string, connectionId?: string, baseUrl?: string }} options
   */
  function connect(options) {
    options = options || {};
    return new Promise(function (resolve, reject) {
      validate(options);
      var base = options.baseUrl ? String(options.baseUrl).replace(/\/+$/, '') : scriptBase;
      if (!base)
        throw connectError(
          'invalid_request',
          'Latchkey.connect needs baseUrl when connect.js is not loaded from Latchkey.',
        );
      var latchkeyOrigin = new URL(base, location.href).origin;
      var provider = options.provider;

      // A fresh name per call, so that two calls never share (and confuse) one window.
      var name = 'latchkey-' + Date.now().toString(36) + Math.random().toString(36).slice(2);
      var popup = window.open(
        authUrl(base, provider, options, { popup: '1', origin: location.origin }),
        name,
        popupFeatures(),
      );
      if (!popup) {
        var extra = mayReturnHere() ? { return_to: location.href } : {};
        location.assign(authUrl(base, provider, options, extra));
        return;
      }

      var settled = false;
      var closedSeen = false;
      var timer = setInterval(watchPopup, POLL_MS);
      window.addEventListener('message', onMessage);
      try {
        popup.focus();
      } catch (e) {
        // Focus is a courtesy; some browsers refuse it.
      }

      function settle(outcome, value) {
        if (settled) return;
        settled = true;
        clearInterval(timer);
        window.removeEventListener('message', onMessage);
        outcome(value);
      }

      function onMessage(event) {
        // Only Latchkey's exact origin, and only the window this call opened.
        if (event.origin !== latchkeyOrigin || event.source !== popup) return;
        var data = event.data;
        if (!data || typeof data !== 'object' || data.type !== 'latchkey:result' || data.provider !== provider) return;
        try {
          popup.close();
        } catch (e) {
          // The popup closes itself as well.
        }
        if (data.status === 'connected') {
          settle(resolve, { provider: data.provider, connectionId: String(data.connectionId) });
        } else if (data.status === 'denied') {
          settle(reject, connectError('access_denied', 'The user declined the connection.'));
        } else {
          var code = typeof data.code === 'string' && data.code ? data.code : 'provider_error';
          settle(reject, connectError(code, 'The connection did not complete (' + code + ').'));
        }
      }

      function watchPopup() {
        if (!popup.closed) return;
        // Wait one more tick: a result posted right before the popup closed is delivered first.
        if (!closedSeen) {
          closedSeen = true;
          return;
        }
        settle(reject, connectError('closed', 'The connect window was closed before the connection finished.'));
      }
    });
  }

  var api = global.Latchkey || {};
  api.connect = connect;
  global.Latchkey = api;
})(window);
