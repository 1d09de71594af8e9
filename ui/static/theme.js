// The colour theme: the system's, or light or dark as chosen with the
// header's button (kept in this browser's localStorage). Loaded in <head>
// without defer, so the chosen theme applies before the page is drawn.
(function () {
  var themes = ['system', 'light', 'dark'];
  var names = { system: 'Theme: system', light: 'Theme: light', dark: 'Theme: dark' };
  function chosen() {
    try { return localStorage.getItem('portico-theme') || 'system'; } catch (e) { return 'system'; }
  }
  function apply(theme) {
    if (theme === 'system') delete document.documentElement.dataset.theme;
    else document.documentElement.dataset.theme = theme;
  }
  apply(chosen());
  document.addEventListener('DOMContentLoaded', function () {
    var button = document.querySelector('[data-theme-toggle]');
    if (!button) return;
    var show = function () { button.textContent = names[chosen()] || names.system; };
    show();
    button.hidden = false;
    button.addEventListener('click', function () {
      var next = themes[(themes.indexOf(chosen()) + 1) % themes.length];
      try { localStorage.setItem('portico-theme', next); } catch (e) { /* kept for this page only */ }
      apply(next);
      show();
      document.dispatchEvent(new CustomEvent('portico:theme'));
    });
  });
})();
