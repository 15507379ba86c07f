// picbot console: the jobs list refreshes itself; deletions ask first.
// Plain JS, no library, loaded from the bot itself (the CSP allows nothing else).
"use strict";
(function () {
  var rows = document.querySelector("tbody[data-live]");
  if (rows) {
    var busy = false;
    setInterval(function () {
      if (busy || document.hidden) return;
      busy = true;
      fetch(rows.getAttribute("data-live"), { credentials: "same-origin", headers: { "Accept": "text/html" } })
        .then(function (r) { return r.ok && !r.redirected ? r.text() : null; })
        .then(function (html) { if (html !== null) rows.innerHTML = html; })
        .catch(function () {})
        .then(function () { busy = false; });
    }, 3000);
  }
  document.querySelectorAll("form.confirm").forEach(function (f) {
    f.addEventListener("submit", function (e) {
      if (!window.confirm(f.getAttribute("data-confirm"))) e.preventDefault();
    });
  });
})();
