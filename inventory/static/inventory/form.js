// The integration form: after a refused save, move focus to the summary of the problems so that
// screen readers announce it and the keyboard starts there (the page is served without inline
// script, see the Content-Security-Policy in governance/settings.py).
(function () {
  "use strict";
  var summary = document.getElementById("error-summary");
  if (summary) { summary.focus(); }
})();
