/*
 * NeonPro: light or dark theme. Without a choice the page follows the system
 * setting (color-scheme "light dark" and light-dark() in the CSS); the toggle stores an explicit
 * choice in localStorage. Loaded in <head>, before the first paint, so a
 * remembered choice never flashes the other theme.
 */
(function () {
  "use strict";

  var KEY = "neonpro-theme";
  var root = document.documentElement;

  function stored() {
    try {
      var value = window.localStorage.getItem(KEY);
      return value === "dark" || value === "light" ? value : null;
    } catch (err) {
      return null; // storage disabled: follow the system
    }
  }

  function systemTheme() {
    return window.matchMedia && window.matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light";
  }

  function apply(theme) {
    if (theme) {
      root.setAttribute("data-theme", theme);
    } else {
      root.removeAttribute("data-theme");
    }
  }

  apply(stored());

  function wire() {
    var toggle = document.getElementById("theme-toggle");
    if (!toggle) {
      return;
    }
    function render() {
      var dark = (stored() || systemTheme()) === "dark";
      toggle.setAttribute("aria-pressed", String(dark));
      toggle.setAttribute("data-current", dark ? "dark" : "light");
    }
    toggle.addEventListener("click", function () {
      var next = (stored() || systemTheme()) === "dark" ? "light" : "dark";
      try {
        window.localStorage.setItem(KEY, next);
      } catch (err) { /* not remembered, applied anyway */ }
      apply(next);
      render();
    });
    if (window.matchMedia) {
      window.matchMedia("(prefers-color-scheme: dark)").addEventListener("change", render);
    }
    render();
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", wire);
  } else {
    wire();
  }
})();
