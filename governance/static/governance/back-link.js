// "Go back" links on error pages: back in the browser's history when there is one, else the
// link's own address (the page is served without inline script or javascript: links).
(function () {
  "use strict";
  document.querySelectorAll("a[data-history-back]").forEach(function (link) {
    link.addEventListener("click", function (event) {
      if (window.history.length > 1) {
        event.preventDefault();
        window.history.back();
      }
    });
  });
})();
