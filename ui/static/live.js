// Live status: rows and fields marked data-live="namespace/name" follow the
// dashboard's Server-Sent Events. Pages work without this script.
(function () {
  if (!window.EventSource || !document.querySelector('[data-live]')) return;
  var source = new EventSource('/events');
  source.addEventListener('deployment', function (e) {
    var c = JSON.parse(e.data);
    document.querySelectorAll('[data-live="' + CSS.escape(c.key) + '"]').forEach(function (el) {
      var ready = el.querySelector('[data-field="ready"]');
      var message = el.querySelector('[data-field="message"]');
      if (ready) ready.textContent = c.ready;
      if (message) message.textContent = c.message;
    });
  });
})();
