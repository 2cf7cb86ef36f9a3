// The workflow step form: a field that applies to one choice only (the group when a group
// decides, the people when named people do, the number when a quorum does) is shown only while
// that choice is made. "Add another person" adds a username box. Without this script every field
// shows, its help saying when it applies, and the server clears what does not apply. Served as a
// file: the pages carry no inline script (Content-Security-Policy).
(function () {
  "use strict";
  var form = document.querySelector("form.step-form");
  if (!form) { return; }
  var dependents = Array.prototype.slice.call(form.querySelectorAll("[data-applies-when]"));

  function chosen(name) {
    var checked = form.querySelector('input[name="' + name + '"]:checked');
    return checked ? checked.value : "";
  }

  function update() {
    dependents.forEach(function (field) {
      field.hidden = chosen(field.getAttribute("data-applies-when")) !== field.getAttribute("data-applies-value");
    });
  }

  form.addEventListener("change", function (event) {
    if (event.target.type === "radio") { update(); }
  });
  update();

  form.querySelectorAll("button[data-people-add]").forEach(function (button) {
    var list = document.getElementById(button.getAttribute("data-people-add"));
    button.hidden = false;
    button.addEventListener("click", function () {
      var boxes = list.querySelectorAll("input");
      var item = boxes[boxes.length - 1].parentNode.cloneNode(true);
      var input = item.querySelector("input");
      input.value = "";
      input.id = list.id + "_" + boxes.length;
      input.setAttribute("aria-label", "Person " + (boxes.length + 1));
      input.removeAttribute("aria-invalid");
      list.appendChild(item);
      input.focus();
    });
  });
})();
