// The terminal page: xterm.js over the dashboard's WebSocket, which it proxies
// to the pod's attach endpoint. Binary frames carry the terminal's bytes;
// text frames carry JSON ({"status"} or {"error"} from the server,
// {"resize"} from here); when the shell's side ends the server says why
// ({"ended", "again"}), and a connection lost without that is made again by
// itself. While the page is open it sends heartbeats, so the
// Terminal lives as long as someone looks at it.
(function () {
  var el = document.getElementById('terminal');
  var status = document.getElementById('attach-status');
  var again = document.getElementById('reconnect');
  if (!el) return;
  function say(text, error) {
    status.textContent = text;
    status.className = error ? 'error' : '';
  }
  if (!window.Terminal || !window.FitAddon) {
    say('The terminal script is not installed on this server (npm packages @xterm/xterm, @xterm/addon-fit).', true);
    return;
  }
  var chosen = document.documentElement.dataset.theme;
  var dark = chosen ? chosen === 'dark' : window.matchMedia && window.matchMedia('(prefers-color-scheme: dark)').matches;
  var term = new window.Terminal({
    cursorBlink: true,
    fontFamily: 'ui-monospace, monospace',
    theme: dark ? { background: '#111827', foreground: '#f3f4f6' } : { background: '#ffffff', foreground: '#1f2937', cursor: '#1f2937' },
  });
  var fit = new window.FitAddon.FitAddon();
  term.loadAddon(fit);
  term.open(el);
  fit.fit();
  var ws = null;
  var encoder = new TextEncoder();

  function sendSize() {
    if (ws && ws.readyState === 1) ws.send(JSON.stringify({ resize: { cols: term.cols, rows: term.rows } }));
  }
  // Set when the Terminal turns Ready while a socket that has not attached
  // is still open (the server is refusing it: "not running"): connect again
  // as soon as that socket closes, rather than at the next change.
  var readyMeanwhile = false;
  var attached = false;
  // What the server said when the shell's side ended ({"ended", "again"}).
  var ended = null;
  // A connection that was attached closed without the server saying why (the
  // network dropped, the dashboard restarted): connect again by itself, with
  // a growing pause, until attached again or the server refuses.
  var lost = false;
  var pause = 1000;
  // The Terminal has ended: nothing to extend or delete, no heartbeats.
  var isOver = el.dataset.ended === 'true';
  function over() {
    isOver = true;
    var controls = document.querySelector('[data-field="controls"]');
    if (controls) controls.hidden = true;
  }
  function connect() {
    again.hidden = true;
    readyMeanwhile = false;
    attached = false;
    ended = null;
    say(lost ? 'The connection was lost; connecting again…' : 'Connecting…');
    var proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
    ws = new WebSocket(proto + '//' + location.host + el.dataset.attach);
    ws.binaryType = 'arraybuffer';
    ws.onopen = sendSize;
    ws.onmessage = function (e) {
      if (typeof e.data === 'string') {
        var m = JSON.parse(e.data);
        if (m.error) { lost = false; say(m.error, true); }
        else if (m.ended) { ended = m; say(m.ended); if (!m.again) over(); }
        else if (m.status) say(m.status === 'attached' ? 'Connected.' : m.status);
        if (m.status === 'attached') { attached = true; lost = false; pause = 1000; term.focus(); }
      } else {
        term.write(new Uint8Array(e.data));
      }
    };
    ws.onclose = function (e) {
      ws = null;
      // 1008: the session ended; the server said so, and logging in again is the way back.
      if (e.code === 1008) return;
      if (ended) { again.hidden = !ended.again; return; }
      if (readyMeanwhile) { connect(); return; }
      if (attached || lost) {
        lost = true;
        again.hidden = false;
        say('The connection was lost; connecting again in ' + Math.round(pause / 1000) + ' s…');
        setTimeout(function () { if (!ws && lost) connect(); }, pause);
        pause = Math.min(pause * 2, 30000);
        return;
      }
      again.hidden = false;
    };
  }
  term.onData(function (d) { if (ws && ws.readyState === 1) ws.send(encoder.encode(d)); });
  term.onResize(sendSize);
  window.addEventListener('resize', function () { fit.fit(); });
  again.addEventListener('click', function () { if (!ws) connect(); });
  // Full screen: the terminal alone fills the screen (Escape or the button
  // leaves it); the shell is told its new size.
  var full = document.getElementById('fullscreen');
  if (full && el.requestFullscreen) {
    full.hidden = false;
    full.addEventListener('click', function () {
      if (document.fullscreenElement) document.exitFullscreen();
      else el.requestFullscreen().then(function () { term.focus(); });
    });
    document.addEventListener('fullscreenchange', function () {
      full.textContent = document.fullscreenElement ? 'Exit full screen' : 'Full screen';
      // Once the new size is laid out.
      requestAnimationFrame(function () { fit.fit(); });
    });
  }
  // Connect when the Terminal becomes ready (live status), if not connected.
  document.addEventListener('portico:change', function (e) {
    if (e.detail.key !== el.dataset.key || e.detail.ready !== 'True') return;
    if (!ws) connect();
    else if (!attached) readyMeanwhile = true;
  });

  function heartbeat() {
    if (document.hidden || isOver) return;
    fetch(el.dataset.heartbeat, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
      body: 'csrf=' + encodeURIComponent(el.dataset.csrf),
      credentials: 'same-origin',
    });
  }
  setInterval(heartbeat, 60000);
  connect();
})();
