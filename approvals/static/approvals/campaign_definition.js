// The campaign definition form, enhanced. Without JavaScript every field shows and the form
// posts as it is; with it:
// - fields that apply only to one choice (a reviewing group for "A named group") show only then;
// - a list of checkboxes marked data-filterable gets a filter box;
// - a box of several usernames (data-people-list) suggests people for the name being typed;
// - the recurrence is described in words, with its next runs, as it is typed.
// Served as a file: the pages carry no inline script (Content-Security-Policy).
(function () {
  "use strict";

  function valueOf(form, name) {
    var controls = form.querySelectorAll("[name='" + name + "']");
    for (var i = 0; i < controls.length; i++) {
      var control = controls[i];
      if (control.type === "radio" || control.type === "checkbox") {
        if (control.checked) { return control.value; }
      } else {
        return control.value;
      }
    }
    return "";
  }

  function progressiveDisclosure(form) {
    var dependents = form.querySelectorAll("[data-show-when]");
    function update() {
      dependents.forEach(function (wrapper) {
        wrapper.hidden = valueOf(form, wrapper.dataset.showWhen) !== wrapper.dataset.showValue;
      });
    }
    form.addEventListener("change", update);
    update();
  }

  function filterBoxes(form) {
    form.querySelectorAll("[data-filterable]").forEach(function (list, index) {
      var legend = list.closest("fieldset") && list.closest("fieldset").querySelector("legend");
      var box = document.createElement("input");
      box.type = "search";
      box.id = "filter-" + index;
      box.className = "choice-filter";
      box.setAttribute("aria-controls", list.id);
      var label = document.createElement("label");
      label.htmlFor = box.id;
      label.textContent = "Filter " + (legend ? legend.textContent.toLowerCase() : "the list");
      list.parentNode.insertBefore(label, list);
      list.parentNode.insertBefore(box, list);
      box.addEventListener("input", function () {
        var text = box.value.trim().toLowerCase();
        Array.prototype.forEach.call(list.children, function (choice) {
          choice.hidden = text !== "" && choice.textContent.toLowerCase().indexOf(text) === -1;
        });
      });
    });
  }

  function debounce(callback, delay) {
    var timer = null;
    return function () {
      var args = arguments;
      window.clearTimeout(timer);
      timer = window.setTimeout(function () { callback.apply(null, args); }, delay);
    };
  }

  function getJSON(url) {
    return fetch(url, { headers: { "Accept": "application/json" }, credentials: "same-origin" })
      .then(function (response) { return response.ok ? response.json() : null; });
  }

  function peopleLists() {
    var list = document.getElementById("people-list-options");
    if (!list) { return; }
    document.querySelectorAll("input[data-people-list]").forEach(function (input) {
      input.addEventListener("input", debounce(function () {
        var cut = input.value.lastIndexOf(",");
        var prefix = cut === -1 ? "" : input.value.slice(0, cut + 1).replace(/\s*$/, "") + " ";
        var typed = input.value.slice(cut + 1).trim();
        if (typed.length < 2) { return; }
        getJSON(list.dataset.url + "?q=" + encodeURIComponent(typed)).then(function (data) {
          if (!data) { return; }
          while (list.firstChild) { list.removeChild(list.firstChild); }
          (data.results || []).forEach(function (person) {
            var option = document.createElement("option");
            option.value = prefix + person.username;
            option.textContent = person.label;
            list.appendChild(option);
          });
        }).catch(function () { /* keep the current suggestions */ });
      }, 200));
    });
  }

  function cronWords() {
    var input = document.getElementById("id_recurrence");
    var box = document.getElementById("cron-explain");
    if (!input || !box) { return; }
    var words = document.getElementById("cron-words");
    var next = document.getElementById("cron-next");
    var runs = document.getElementById("cron-runs");
    input.addEventListener("input", debounce(function () {
      getJSON(box.dataset.url + "?expr=" + encodeURIComponent(input.value)).then(function (data) {
        if (!data) { return; }
        words.classList.toggle("field-error", !data.valid);
        words.textContent = data.valid ? data.description :
          "Not a valid cron expression: five fields (minute hour day-of-month month day-of-week), e.g. 0 9 * 1,4,7,10 1#1.";
        while (runs.firstChild) { runs.removeChild(runs.firstChild); }
        data.next_runs.forEach(function (run) {
          var item = document.createElement("li");
          item.textContent = run;
          runs.appendChild(item);
        });
        next.hidden = data.next_runs.length === 0;
      }).catch(function () { /* the description stays as it was; the server checks on save */ });
    }, 300));
  }

  var form = document.querySelector("form.definition-form");
  if (!form) { return; }
  progressiveDisclosure(form);
  filterBoxes(form);
  if (window.fetch) { peopleLists(); cronWords(); }
})();
