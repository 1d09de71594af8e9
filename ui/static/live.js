// Live status, time left and parts loaded after the page. Rows and fields marked data-live="namespace/name"
// follow the dashboard's Server-Sent Events, and open lists add and drop rows; elements with data-expires show
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

  // Parts a page loads after itself (data-fragment="URL"): the server's HTML
  // for them replaces the waiting note; a failure is said in its place.
  document.querySelectorAll('[data-fragment]').forEach(function (el) {
    function say(text) {
      var p = document.createElement('p');
      p.className = 'error';
      p.textContent = text;
      el.replaceChildren(p);
    }
    fetch(el.dataset.fragment, { credentials: 'same-origin', headers: { Accept: 'text/html' } })
      .then(function (r) {
        // Sent to the login page: the session ended; the page says so on reload.
        if (r.redirected) { window.location.reload(); return; }
        return r.text().then(function (html) {
          if (r.ok) el.innerHTML = html;
          else say('This part could not be read (' + r.status + '); reload the page.');
        });
      })
      .catch(function () { say('This part could not be read; reload the page.'); })
      .then(function () { el.dataset.fragmentLoaded = 'true'; });
  });

  if (!window.EventSource || !document.querySelector('[data-live], [data-live-rows]')) return;
  // The objects this page shows: the stream starts with their current state,
  // on connect and after every reconnect.
  var keys = [];
  document.querySelectorAll('[data-live]').forEach(function (el) {
    if (keys.indexOf(el.dataset.live) < 0) keys.push(el.dataset.live);
  });
  var source = new EventSource('/events?keys=' + encodeURIComponent(keys.join(',')));

  // Open lists (a tbody marked data-live-rows="kind", on an unfiltered first
  // page) add the row of an object just created (only such a change carries
  // a row) that they do not show yet, in their order —
  // Deployments by namespace and name, Terminals newest first — and drop the
  // row of one that is gone. The row is the server's own rendering.
  function sameOrAfter(a, b) {
    var x = a.split('/'), y = b.split('/');
    return x[0] > y[0] || (x[0] === y[0] && x[1] >= y[1]);
  }
  function count(by) {
    document.querySelectorAll('[data-live-count]').forEach(function (n) {
      n.textContent = String(Math.max(0, parseInt(n.textContent, 10) + by));
    });
  }
  function showEmpty(body) {
    var empty = !body.querySelector('tr');
    var table = body.closest('table');
    if (table) table.hidden = empty;
    document.querySelectorAll('[data-live-empty]').forEach(function (p) { p.hidden = !empty; });
  }
  function addRow(kind, c) {
    var body = document.querySelector('tbody[data-live-rows="' + kind + '"]');
    if (!body || !c.row) return;
    var holder = document.createElement('tbody');
    holder.innerHTML = c.row;
    var tr = holder.querySelector('tr');
    if (!tr) return;
    var next = null;
    if (kind === 'terminal') {
      next = body.querySelector('tr');
    } else {
      body.querySelectorAll('tr[data-live]').forEach(function (r) {
        if (!next && sameOrAfter(r.dataset.live, c.key)) next = r;
      });
    }
    body.insertBefore(tr, next);
    count(1);
    showEmpty(body);
  }
  function dropRow(kind, c) {
    document.querySelectorAll('tbody[data-live-rows="' + kind + '"] tr[data-live="' + CSS.escape(c.key) + '"]').forEach(function (r) {
      var body = r.parentNode;
      r.remove();
      count(-1);
      showEmpty(body);
    });
  }

  function apply(e) {
    var c = JSON.parse(e.data);
    // A Deployment and a Terminal may share namespace/name: rows go by kind.
    var list = 'tbody[data-live-rows="' + e.type + '"]';
    if (c.gone) dropRow(e.type, c);
    else if (c.row && !document.querySelector(list + ' tr[data-live="' + CSS.escape(c.key) + '"]')) addRow(e.type, c);
    document.querySelectorAll('[data-live="' + CSS.escape(c.key) + '"]').forEach(function (el) {
      var ready = el.querySelector('[data-field="ready"]');
      var message = el.querySelector('[data-field="message"]');
      var expires = el.querySelector('[data-field="expires"]');
      if (ready) { ready.textContent = c.ready; ready.dataset.state = c.state; }
      if (message) message.textContent = c.message;
      if (expires && c.expires) { expires.textContent = when(c.expires); expires.setAttribute('datetime', c.expires); }
      if (el.hasAttribute('data-expires') && c.expires) el.dataset.expires = c.expires;
      // A Deployment's parameters, as its spec has them now (someone changed them elsewhere).
      if (el.hasAttribute('data-parameters') && c.parameters) {
        el.replaceChildren();
        Object.keys(c.parameters).forEach(function (k) {
          var v = c.parameters[k];
          var dt = document.createElement('dt');
          var dd = document.createElement('dd');
          dt.textContent = k;
          dd.textContent = typeof v === 'string' ? v : JSON.stringify(v);
          el.append(dt, dd);
        });
      }
    });
    document.dispatchEvent(new CustomEvent('portico:change', { detail: c }));
    tick();
  }
  source.addEventListener('deployment', apply);
  source.addEventListener('terminal', apply);
  // Connected: changes from now on arrive (tests wait for this mark).
  source.addEventListener('open', function () { document.body.dataset.liveConnected = 'true'; });
  // The session ended (logout, expiry, revocation): no reconnecting.
  source.addEventListener('ended', function () { source.close(); });
})();
