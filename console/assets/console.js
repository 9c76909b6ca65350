// postcall console: the few things a server-rendered page cannot do alone.
"use strict";
(function () {
  // Back returns to the page you came from (usually the filtered list).
  var back = document.querySelector("[data-back]");
  if (back && document.referrer === "" && window.history.length > 1) {
    back.addEventListener("click", function (e) { e.preventDefault(); window.history.back(); });
  }
  // Download JSON is disabled while processing runs or a download starts.
  var dl = document.getElementById("download-json");
  if (dl) {
    dl.addEventListener("click", function (e) {
      if (dl.hasAttribute("data-disabled")) { e.preventDefault(); return; }
      dl.setAttribute("data-disabled", ""); dl.classList.add("disabled");
      setTimeout(function () { dl.removeAttribute("data-disabled"); dl.classList.remove("disabled"); }, 3000);
    });
  }
  // While post-call processing runs, poll its progress and reload when it
  // changes, so that a re-run's result shows without a manual reload.
  var progress = document.querySelector("[data-poll]");
  if (progress) {
    var url = progress.getAttribute("data-poll");
    var poll = function () {
      fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (p) {
          if (p && p.done) { window.location.replace(window.location.pathname); return; }
          setTimeout(poll, 1000);
        })
        .catch(function () { setTimeout(poll, 3000); });
    };
    setTimeout(poll, 1000);
  }
})();
