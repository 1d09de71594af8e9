// Follows a container's log on the log page: "Follow" opens a stream of its
// lines (Server-Sent Events: the last lines, then each new one), which
// replace the page's; "Stop following" closes it. Without script the page
// shows the last lines, and reloading shows newer ones.
(function () {
  var button = document.querySelector('[data-follow]');
  var pre = document.querySelector('pre.log');
  var state = document.querySelector('[data-follow-state]');
  if (!button || !pre) return;
  button.hidden = false;
  var source = null;
  function stop(message) {
    if (source) source.close();
    source = null;
    button.textContent = 'Follow';
    state.textContent = message || '';
    delete document.body.dataset.following;
  }
  button.addEventListener('click', function () {
    if (source) { stop(''); return; }
    var first = true;
    source = new EventSource(button.dataset.follow);
    button.textContent = 'Stop following';
    state.textContent = 'Following: new lines appear as the container writes them.';
    source.addEventListener('open', function () { document.body.dataset.following = 'true'; });
    source.addEventListener('line', function (e) {
      if (first) { pre.textContent = ''; first = false; }
      var empty = document.querySelector('[data-log-empty]');
      if (empty) empty.remove();
      pre.hidden = false;
      var atEnd = window.innerHeight + window.scrollY >= document.body.scrollHeight - 4;
      pre.textContent += JSON.parse(e.data) + '\n';
      if (atEnd) window.scrollTo(0, document.body.scrollHeight);
    });
    source.addEventListener('stopped', function (e) { stop(JSON.parse(e.data).message); });
  });
})();
