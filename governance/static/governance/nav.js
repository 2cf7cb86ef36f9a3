// The header's menus (Administration, Oversight): each is a disclosure button that shows or
// hides its list of links. Enter or Space toggles (a real button), Down arrow opens and moves to
// the first link, arrows move within the list, Escape closes and returns to the button, and a
// click outside or focus leaving the menu closes it. Only one menu is open at a time. Without
// this script the buttons stay hidden and the lists show in the bar. Served as a file: the
// pages carry no inline script (Content-Security-Policy).
(function () {
  "use strict";
  var menus = Array.prototype.slice.call(document.querySelectorAll(".main-nav .nav-menu"));
  if (!menus.length) { return; }

  function parts(menu) {
    var button = menu.querySelector(".nav-menu-button");
    return { button: button, list: document.getElementById(button.getAttribute("aria-controls")) };
  }

  function links(menu) {
    return Array.prototype.slice.call(parts(menu).list.querySelectorAll("a"));
  }

  function setOpen(menu, open) {
    var p = parts(menu);
    p.button.setAttribute("aria-expanded", open ? "true" : "false");
    p.list.hidden = !open;
  }

  function closeAll(except) {
    menus.forEach(function (menu) { if (menu !== except) { setOpen(menu, false); } });
  }

  function isOpen(menu) {
    return parts(menu).button.getAttribute("aria-expanded") === "true";
  }

  function moveFocus(menu, step) {
    var items = links(menu);
    var index = items.indexOf(document.activeElement);
    var next = index < 0 ? (step > 0 ? 0 : items.length - 1) : (index + step + items.length) % items.length;
    items[next].focus();
  }

  menus.forEach(function (menu) {
    var p = parts(menu);
    p.button.hidden = false;
    menu.classList.add("is-enhanced");
    setOpen(menu, false);

    p.button.addEventListener("click", function () {
      var open = !isOpen(menu);
      closeAll(menu);
      setOpen(menu, open);
    });

    menu.addEventListener("keydown", function (event) {
      if (event.key === "Escape" && isOpen(menu)) {
        setOpen(menu, false);
        p.button.focus();
        event.preventDefault();
      } else if (event.key === "ArrowDown" || event.key === "ArrowUp") {
        if (!isOpen(menu)) { closeAll(menu); setOpen(menu, true); }
        moveFocus(menu, event.key === "ArrowDown" ? 1 : -1);
        event.preventDefault();
      }
    });

    menu.addEventListener("focusout", function (event) {
      if (event.relatedTarget && !menu.contains(event.relatedTarget)) { setOpen(menu, false); }
    });
  });

  document.addEventListener("click", function (event) {
    menus.forEach(function (menu) {
      if (!menu.contains(event.target)) { setOpen(menu, false); }
    });
  });
})();
