// Progressive enhancement of the review queue: decide without a full page reload. Without
// JavaScript the forms post normally and the page redirects back with a message.
(function () {
  "use strict";
  var status = document.getElementById("queue-status");
  function announce(text) { if (status) { status.textContent = text; } }
  function updateCounts(count) {
    var total = document.getElementById("queue-total");
    if (total) { total.textContent = String(count); }
    document.querySelectorAll(".main-nav a").forEach(function (link) {
      if (link.getAttribute("href") && link.getAttribute("href").indexOf("/approvals/queue/") === 0) {
        var badge = link.querySelector(".badge");
        if (badge) { if (count > 0) { badge.textContent = String(count); } else { badge.remove(); } }
      }
    });
  }
  document.querySelectorAll("form.decide").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var item = form.closest(".queue-item");
      var error = form.querySelector(".field-error");
      var comment = form.querySelector("textarea");
      var button = form.querySelector("button[type=submit]");
      button.disabled = true;
      fetch(form.action, {
        method: "POST",
        body: new FormData(form),
        headers: { "Accept": "application/json" },
        credentials: "same-origin"
      }).then(function (response) {
        return response.json().then(function (data) { return { ok: response.ok, data: data }; });
      }).then(function (result) {
        button.disabled = false;
        if (result.ok) {
          var next = item.nextElementSibling || item.previousElementSibling;
          item.remove();
          updateCounts(result.data.queue_count);
          announce(result.data.message);
          var focusTarget = next ? next.querySelector("h2 a") : document.getElementById("main");
          if (focusTarget) { focusTarget.focus(); }
        } else {
          error.textContent = result.data.detail || "The decision was not recorded.";
          comment.setAttribute("aria-invalid", "true");
          comment.focus();
        }
      }).catch(function () {
        button.disabled = false;
        error.textContent = "Network error: the decision was not recorded. Try again.";
      });
    });
  });
})();
