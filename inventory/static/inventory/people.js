// Person fields (owners, backup, a transfer's new owner): a username box whose suggestions
// come from the page's <datalist id="people-options">. The page lists the user's colleagues;
// as they type (2 characters or more) the list is refreshed from the people endpoint, which
// answers at most 10 matches. Without JavaScript the box still takes a username, checked on the
// server. Served as a file: the pages carry no inline script (Content-Security-Policy).
(function () {
  "use strict";
  var list = document.getElementById("people-options");
  if (!list || !window.fetch) { return; }
  var url = list.getAttribute("data-url");
  var timer = null;
  var last = "";

  function fill(results) {
    while (list.firstChild) { list.removeChild(list.firstChild); }
    results.forEach(function (person) {
      var option = document.createElement("option");
      option.value = person.username;
      option.textContent = person.label;
      list.appendChild(option);
    });
  }

  function search(text) {
    if (text === last) { return; }
    last = text;
    fetch(url + "?q=" + encodeURIComponent(text), {
      headers: { "Accept": "application/json" },
      credentials: "same-origin"
    }).then(function (response) {
      return response.ok ? response.json() : { results: [] };
    }).then(function (data) {
      if (text === last) { fill(data.results || []); }
    }).catch(function () { /* keep the current suggestions */ });
  }

  // One listener for every box, also those a page adds later (another person to name).
  document.addEventListener("input", function (event) {
    var input = event.target;
    if (!input.matches || !input.matches("input[data-people-search]")) { return; }
    var text = input.value.trim();
    if (text.length < 2) { return; }
    window.clearTimeout(timer);
    timer = window.setTimeout(function () { search(text); }, 200);
  });
})();
