// Live status and time left. Rows and fields marked data-live="namespace/name"
// follow the dashboard's Server-Sent Events; elements with data-expires show
// the time left and, a few minutes before the end, a warning. Pages work
// without this script. Each change is also re-dispatched on the document as
// a `portico:change` event for other scripts (the terminal page).
(function () {
  var warnMinutes = parseInt(document.body.dataset.warnMinutes || '5', 10);

  function left(ms) {
    if (ms <= 0) return 'now';
    var m = Math.floor(ms / 60000), s = Math.floor((ms % 60000) / 1000);
    if (m >= 60) return Math.floor(m / 60) + ' h ' + (m % 60) + ' min';
    return m > 0 ? m + ' min ' + s + ' s' : s + ' s';
  }

  // A time as the pages print it: to the second, in UTC (ui/format.rs).
  function when(iso) {
    var t = Date.parse(iso);
    if (isNaN(t)) return iso;
    return new Date(Math.round(t / 1000) * 1000).toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC');
  }

  function tick() {
    document.querySelectorAll('[data-expires]').forEach(function (el) {
      var at = Date.parse(el.dataset.expires);
      if (isNaN(at)) return;
      var ms = at - Date.now();
      var text = left(ms);
      var l = el.querySelector('[data-field="left"]');
      if (l) l.textContent = '(' + text + ' left)';
      // At the maximum lifetime no Extend moves the end: say so, offer none.
      var max = Date.parse(el.dataset.max || '');
      var capped = !isNaN(max) && at >= max;
      var scope = el.closest('main') || document;
      scope.querySelectorAll('[data-field="extend"]').forEach(function (f) { f.hidden = capped; });
      el.querySelectorAll('[data-field="extendable"]').forEach(function (f) { f.hidden = capped; });
      el.querySelectorAll('[data-field="capped"]').forEach(function (f) { f.hidden = !capped; });
      var warning = el.querySelector('[data-field="warning"]');
      if (warning) {
        warning.hidden = ms > warnMinutes * 60000;
        var lw = warning.querySelector('[data-field="left-warning"]');
        if (lw) lw.textContent = text;
      }
    });
  }
  tick();
  setInterval(tick, 1000);

  if (!window.EventSource || !document.querySelector('[data-live]')) return;
  // The objects this page shows: the stream starts with their current state,
  // on connect and after every reconnect.
  var keys = [];
  document.querySelectorAll('[data-live]').forEach(function (el) {
    if (keys.indexOf(el.dataset.live) < 0) keys.push(el.dataset.live);
  });
  var source = new EventSource('/events?keys=' + encodeURIComponent(keys.join(',')));
  function apply(e) {
    var c = JSON.parse(e.data);
    document.querySelectorAll('[data-live="' + CSS.escape(c.key) + '"]').forEach(function (el) {
      var ready = el.querySelector('[data-field="ready"]');
      var message = el.querySelector('[data-field="message"]');
      var expires = el.querySelector('[data-field="expires"]');
      if (ready) ready.textContent = c.ready;
      if (message) message.textContent = c.message;
      if (expires && c.expires) { expires.textContent = when(c.expires); expires.setAttribute('datetime', c.expires); }
      if (el.hasAttribute('data-expires') && c.expires) el.dataset.expires = c.expires;
    });
    document.dispatchEvent(new CustomEvent('portico:change', { detail: c }));
    tick();
  }
  source.addEventListener('deployment', apply);
  source.addEventListener('terminal', apply);
  // The session ended (logout, expiry, revocation): no reconnecting.
  source.addEventListener('ended', function () { source.close(); });
})();
