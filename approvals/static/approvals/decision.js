// The decision form (templates/approvals/_decision_form.html): its submit button names the action
// chosen — "Approve 2 scopes", "Reject", "Request changes" — as the reviewer changes the choice or
// the ticked scopes, and a critical request's confirmation box shows only while approving (the
// server asks for it whatever the script does). Without JavaScript the server's label stands.
(function () {
  "use strict";
  function approveLabel(form, button) {
    var boxes = form.querySelectorAll("input[name=approved_scopes]");
    if (!boxes.length) { return button.getAttribute("data-label-approve"); }
    var ticked = form.querySelectorAll("input[name=approved_scopes]:checked").length;
    return "Approve " + ticked + " scope" + (ticked === 1 ? "" : "s");
  }
  function update(form) {
    var button = form.querySelector("button[type=submit]");
    if (!button) { return; }
    var chosen = form.querySelector("input[name=decision]:checked");
    var value = chosen ? chosen.value : "";
    var label = value === "approve" ? approveLabel(form, button) : button.getAttribute("data-label-" + (value || "none").replace("_", "-"));
    button.textContent = label || button.getAttribute("data-label-none");
    form.querySelectorAll("[data-approve-only]").forEach(function (part) {
      part.hidden = value !== "" && value !== "approve";
    });
  }
  document.querySelectorAll("form[data-decision-form]").forEach(function (form) {
    if (form.hasAttribute("data-decision-ready")) { return; }
    form.setAttribute("data-decision-ready", "");
    form.addEventListener("change", function () { update(form); });
    update(form);
  });
})();
