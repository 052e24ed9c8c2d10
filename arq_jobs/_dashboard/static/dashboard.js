// arq-jobs dashboard, on top of htmx: live refresh of the page's region (paused while the tab is
// hidden or the Live toggle is off), selections and open <details> kept across refreshes, and the
// answers of actions shown in the flash area (errors included). No eval, no inline code.
(function () {
  "use strict";

  var body = document.body;
  var periodMs = Math.round(parseFloat(body.getAttribute("data-refresh-s") || "0") * 1000);
  var toggle = document.getElementById("live-toggle");
  var statusLine = document.getElementById("refresh-status");
  var STORE_KEY = "arq-jobs.dashboard.live";
  var kept = {};

  function all(root, selector) {
    return Array.prototype.slice.call(root.querySelectorAll(selector));
  }

  function live() {
    return !document.hidden && (!toggle || toggle.checked);
  }

  // `everything`: after an action, refresh every region, even one that stopped refreshing itself
  function refresh(everything) {
    all(document, everything ? "[data-region]" : "[data-region][data-refresh]").forEach(function (region) {
      htmx.trigger(region, "dashboard:refresh");
    });
  }

  function say(text) {
    if (statusLine) statusLine.textContent = text;
  }

  function snapshot(region) {
    return {
      checked: all(region, "input[data-select]:checked").map(function (box) { return box.value; }),
      open: all(region, "details[id][open]").map(function (details) { return details.id; })
    };
  }

  function restore(region, state) {
    if (!state) return;
    all(region, "input[data-select]").forEach(function (box) {
      if (state.checked.indexOf(box.value) !== -1) box.checked = true;
    });
    state.open.forEach(function (id) {
      var details = document.getElementById(id);
      if (details && region.contains(details)) details.open = true;
    });
  }

  function updateSelection() {
    all(document, "form").forEach(function (form) {
      var boxes = all(form, "input[data-select]");
      if (!boxes.length && !form.querySelector("[data-needs-selection]")) return;
      var chosen = boxes.filter(function (box) { return box.checked; }).length;
      all(form, "[data-needs-selection]").forEach(function (button) { button.disabled = chosen === 0; });
      all(form, "[data-selected-count]").forEach(function (counter) {
        counter.textContent = chosen ? chosen + " selected" : "";
      });
      all(form, "input[data-select-all]").forEach(function (head) {
        head.checked = boxes.length > 0 && chosen === boxes.length;
        head.indeterminate = chosen > 0 && chosen < boxes.length;
      });
    });
  }

  if (toggle) {
    toggle.checked = window.localStorage.getItem(STORE_KEY) !== "off";
    toggle.addEventListener("change", function () {
      window.localStorage.setItem(STORE_KEY, toggle.checked ? "on" : "off");
      if (toggle.checked) refresh(false);
    });
  }
  if (periodMs > 0) {
    window.setInterval(function () { if (live()) refresh(false); }, periodMs);
    document.addEventListener("visibilitychange", function () { if (live()) refresh(false); });
  }

  document.addEventListener("change", function (event) {
    var target = event.target;
    if (target.matches && target.matches("input[data-select-all]")) {
      var table = target.closest("table") || document;
      all(table, "input[data-select]").forEach(function (box) { box.checked = target.checked; });
    }
    updateSelection();
  });

  document.addEventListener("click", function (event) {
    var close = event.target.closest && event.target.closest("[data-dismiss]");
    if (close) close.closest("[data-flash]").remove();
  });

  document.addEventListener("htmx:beforeSwap", function (event) {
    var target = event.detail.target;
    if (target.id === "flash") {
      // an action's answer: shown whatever its status (403, 404, 409 carry a readable message)
      event.detail.shouldSwap = true;
      event.detail.isError = false;
    } else if (target.hasAttribute("data-region")) {
      kept[target.id] = snapshot(target);
    }
  });

  document.addEventListener("htmx:responseError", function (event) {
    if (event.detail.elt.hasAttribute("data-region")) say("refresh failed (HTTP " + event.detail.xhr.status + ")");
  });
  document.addEventListener("htmx:sendError", function () { say("refresh failed: no answer from the server"); });

  document.body.addEventListener("dashboard:acted", function () {
    all(document, "input[data-select], input[data-select-all]").forEach(function (box) { box.checked = false; });
    kept = {};
    updateSelection();
    refresh(true);
  });

  htmx.onLoad(function (element) {
    if (element.hasAttribute && element.hasAttribute("data-region")) {
      restore(element, kept[element.id]);
      delete kept[element.id];
      say("");
    }
    updateSelection();
  });
})();
