// A campaign being launched: poll its progress and reload the page when the launch has finished.
// Without JavaScript the page refreshes itself (<noscript> meta refresh in the template).
(function () {
  "use strict";
  var el = document.getElementById("launch-progress"), bar = document.getElementById("launch-bar");
  if (!el) { return; }
  function poll() {
    fetch(el.dataset.url, {headers: {"Accept": "application/json"}, credentials: "same-origin"})
      .then(function (r) { return r.json(); })
      .then(function (p) {
        el.textContent = p.processed + " of " + p.total_expected + " processed (" + p.percent + "%).";
        bar.value = p.percent;
        if (p.finished) { window.location.reload(); } else { setTimeout(poll, 2000); }
      }).catch(function () { setTimeout(poll, 5000); });
  }
  setTimeout(poll, 2000);
})();
