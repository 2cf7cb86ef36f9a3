// Progressive enhancement of the review queue. Without JavaScript every form posts normally, the
// page redirects back with a message, and the table shows every item's details.
//  - Decide without a reload: the item leaves, and a visible, dismissable message (in the page's
//    role=status region) says what was recorded and how many items still wait.
//  - Bulk approval with nothing ticked says so next to its button instead of posting.
//  - Table view: each row's details open and close with its button (aria-expanded); the arrow
//    keys, j and k, Home and End move between rows; Escape closes the details.
(function () {
  "use strict";
  var status = document.getElementById("queue-status");
  var ITEM_SELECTOR = ".queue-item[data-step], .queue-row[data-step], .queue-detail[data-step]";

  function focusFirstItem() {
    var target = document.querySelector(".queue-item h2 a, .queue-row .row-toggle") || document.getElementById("main");
    if (target) { target.focus(); }
  }

  function dismissButton(panel, onDismiss) {
    var button = document.createElement("button");
    button.type = "button";
    button.className = "link message-dismiss";
    button.textContent = "Dismiss";
    button.setAttribute("aria-label", "Dismiss this message");
    button.addEventListener("click", function () {
      panel.remove();
      if (onDismiss) { onDismiss(); }
    });
    panel.appendChild(button);
  }

  // One message at a time: a new decision replaces the last one's confirmation.
  function confirmDecision(text) {
    if (!status) { return; }
    var panel = document.createElement("div");
    panel.className = "message success queue-confirm";
    var line = document.createElement("p");
    line.textContent = text;
    panel.appendChild(line);
    dismissButton(panel, focusFirstItem);
    status.replaceChildren(panel);
  }

  function updateCounts(count) {
    var total = document.getElementById("queue-total");
    if (total) { total.textContent = String(count); }
    document.querySelectorAll(".main-nav a").forEach(function (link) {
      if (link.getAttribute("href") && link.getAttribute("href").indexOf("/approvals/queue/") === 0) {
        var badge = link.querySelector(".badge");
        if (!badge) { return; }
        if (count > 999) {
          badge.textContent = "999+";
          badge.setAttribute("aria-label", "more than 999 waiting");
        } else if (count > 0) {
          badge.textContent = String(count);
          badge.setAttribute("aria-label", count + " waiting");
        } else {
          badge.remove();
        }
      }
    });
  }

  function waitingText(count) { return count + " waiting."; }

  // What takes the focus once an item is gone: the next item's title (or the previous one's).
  function nextFocus(stepId) {
    var own = document.querySelector(".queue-item[data-step='" + stepId + "'], .queue-row[data-step='" + stepId + "']");
    if (!own) { return null; }
    var sibling = own.nextElementSibling, previous = own.previousElementSibling;
    while (sibling && !sibling.matches(".queue-item, .queue-row")) { sibling = sibling.nextElementSibling; }
    while (previous && !previous.matches(".queue-item, .queue-row")) { previous = previous.previousElementSibling; }
    var other = sibling || previous;
    return other ? other.querySelector("h2 a, .row-toggle") : null;
  }

  function removeItem(stepId) {
    var focusTarget = nextFocus(stepId);
    document.querySelectorAll(ITEM_SELECTOR).forEach(function (element) {
      if (element.getAttribute("data-step") === stepId) { element.remove(); }
    });
    var bulk = document.getElementById("bulk-form");
    if (bulk && !document.querySelector("input[name=steps][form=bulk-form]")) { bulk.remove(); }
    if (!document.querySelector(".queue-item, .queue-row")) {
      var list = document.getElementById("queue-list") || document.querySelector(".queue-table-wrap");
      if (list) {
        var none = document.createElement("p");
        none.textContent = "Nothing on this page waits for your decision any more.";
        list.replaceWith(none);
      }
    }
    if (focusTarget) { focusTarget.focus(); } else { document.getElementById("main").focus(); }
  }

  function showRefusal(form, text) {
    var error = form.querySelector(".field-error");
    var comment = form.querySelector("textarea");
    if (error) { error.textContent = text; }
    if (comment) {
      comment.setAttribute("aria-invalid", "true");
      comment.focus();
    }
  }

  function decideInline(form, event) {
    // Another script (say, a confirmation of a critical decision) may have stopped the submit.
    if (event.defaultPrevented) { return; }
    event.preventDefault();
    var holder = form.closest("[data-step]");
    var stepId = holder ? holder.getAttribute("data-step") : null;
    var button = event.submitter || form.querySelector("button[type=submit]");
    var body = new FormData(form, event.submitter || undefined);
    if (button) { button.disabled = true; }
    fetch(form.action, {
      method: "POST",
      body: body,
      headers: { "Accept": "application/json" },
      credentials: "same-origin"
    }).then(function (response) {
      return response.json().then(function (data) { return { ok: response.ok, data: data }; });
    }).then(function (result) {
      if (button) { button.disabled = false; }
      if (result.ok && result.data.ok !== false) {
        var count = result.data.queue_count;
        confirmDecision(result.data.message + " " + waitingText(count));
        updateCounts(count);
        if (stepId) { removeItem(stepId); }
      } else {
        showRefusal(form, result.data.detail || "The decision was not recorded.");
      }
    }).catch(function () {
      if (button) { button.disabled = false; }
      showRefusal(form, "Network error: the decision was not recorded. Try again.");
    });
  }

  function enhanceDecisionForms() {
    document.querySelectorAll("form.decide").forEach(function (form) {
      form.addEventListener("submit", function (event) { decideInline(form, event); });
    });
  }

  function enhanceBulkForm() {
    var bulk = document.getElementById("bulk-form");
    if (!bulk) { return; }
    var error = document.getElementById("bulk-error");
    bulk.addEventListener("submit", function (event) {
      if (document.querySelector("input[name=steps][form=bulk-form]:checked")) {
        if (error) { error.textContent = ""; }
        return;
      }
      event.preventDefault();
      if (error) { error.textContent = "Nothing was approved: tick at least one low-risk item to approve in bulk."; }
      var first = document.querySelector("input[name=steps][form=bulk-form]");
      if (first) { first.focus(); }
    });
    document.querySelectorAll("input[name=steps][form=bulk-form]").forEach(function (box) {
      box.addEventListener("change", function () { if (error && box.checked) { error.textContent = ""; } });
    });
  }

  // Messages of the page load (a decision made without the script, a bulk approval's summary).
  function enhanceServerMessages() {
    document.querySelectorAll(".messages .message").forEach(function (message) {
      if (!message.querySelector("button")) { dismissButton(message, focusFirstItem); }
    });
  }

  function setExpanded(toggle, expanded) {
    var detail = document.getElementById(toggle.getAttribute("aria-controls"));
    toggle.setAttribute("aria-expanded", expanded ? "true" : "false");
    if (detail) { detail.hidden = !expanded; }
    var row = toggle.closest(".queue-row");
    if (row) { row.classList.toggle("is-open", expanded); }
  }

  function rowMove(key, toggles, index) {
    if (key === "ArrowDown" || key === "j") { return toggles[index + 1]; }
    if (key === "ArrowUp" || key === "k") { return toggles[index - 1]; }
    if (key === "Home") { return toggles[0]; }
    if (key === "End") { return toggles[toggles.length - 1]; }
    return null;
  }

  function enhanceTable() {
    var table = document.getElementById("queue-table");
    if (!table) { return; }
    table.classList.add("is-enhanced");
    table.querySelectorAll(".row-toggle").forEach(function (toggle) {
      setExpanded(toggle, false);
      toggle.addEventListener("click", function () {
        setExpanded(toggle, toggle.getAttribute("aria-expanded") !== "true");
      });
    });
    table.addEventListener("keydown", function (event) {
      if (event.altKey || event.ctrlKey || event.metaKey) { return; }
      var toggle = event.target.closest(".row-toggle");
      var detail = event.target.closest(".queue-detail");
      if (event.key === "Escape" && (toggle || detail)) {
        var owner = toggle || document.getElementById("item-title-" + detail.getAttribute("data-step"));
        if (owner) {
          event.preventDefault();
          setExpanded(owner, false);
          owner.focus();
        }
        return;
      }
      // Keys typed into the decision form keep their meaning: rows move only from a row's button.
      if (!toggle) { return; }
      var toggles = Array.prototype.slice.call(table.querySelectorAll(".row-toggle"));
      var target = rowMove(event.key, toggles, toggles.indexOf(toggle));
      if (target) {
        event.preventDefault();
        target.focus();
      }
    });
  }

  enhanceServerMessages();
  enhanceDecisionForms();
  enhanceBulkForm();
  enhanceTable();
})();
