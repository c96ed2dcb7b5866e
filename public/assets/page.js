/*
 * Small enhancements of Latchkey's pages. Everything here is optional: with JavaScript off the
 * pages work the same, only without these niceties. Plain ES2017, no dependencies.
 */
(function () {
  'use strict';

  /**
   * Takes the query off the address bar once the page has read it. The callback already answers
   * with a clean URL; this covers the error pages rendered at /callback?code=…&state=… and the
   * Connect page's ?status=… so that nothing of the flow stays in history or in a copied link.
   */
  function cleanAddressBar() {
    if (document.body.getAttribute('data-clean-url') !== 'true') return;
    if (!location.search || !window.history || typeof history.replaceState !== 'function') return;
    history.replaceState(history.state, '', location.pathname + location.hash);
  }

  /** Shows the times the server wrote in UTC in the reader's own time zone and language. */
  function localiseTimes() {
    var nodes = document.querySelectorAll('[data-local-time]');
    for (var i = 0; i < nodes.length; i++) {
      var node = nodes[i];
      var date = new Date(node.getAttribute('data-local-time'));
      if (isNaN(date.getTime())) continue;
      try {
        node.textContent = date.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });
      } catch (e) {
        node.textContent = date.toLocaleString();
      }
    }
  }

  /** In a popup, offers a button that closes it (instead of links away); in a normal tab it stays hidden. */
  function offerClose() {
    var button = document.getElementById('close-window');
    if (!button || !window.opener) return;
    var away = document.querySelectorAll('[data-hide-in-popup]');
    for (var i = 0; i < away.length; i++) away[i].hidden = true;
    button.hidden = false;
    button.addEventListener('click', function () {
      window.close();
    });
  }

  cleanAddressBar();
  localiseTimes();
  offerClose();
})();
