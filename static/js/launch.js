// The launch form: a live cost estimate of the chosen size, and Enter inside "add a key" adding the key.
// Prices are computed on the server (billing/pricing.py) and carried on each size card as data attributes,
// so this file only displays them and never does price arithmetic of its own.
(function () {
  "use strict";

  function updateEstimate() {
    var estimate = document.querySelector("[data-cost-estimate]");
    var form = document.querySelector("form[data-launch-form]");
    if (!estimate || !form) {
      return;
    }
    var chosen = form.querySelector("input[name=flavor]:checked:not(:disabled)");
    var hourly = estimate.querySelector("[data-cost-hourly]");
    var monthly = estimate.querySelector("[data-cost-monthly]");
    var summary = estimate.querySelector("[data-cost-flavor]");
    if (!chosen) {
      hourly.textContent = "—";
      monthly.textContent = "—";
      summary.textContent = "Choose a size to see its price.";
      return;
    }
    hourly.textContent = chosen.getAttribute("data-hourly");
    monthly.textContent = chosen.getAttribute("data-monthly");
    summary.textContent = chosen.getAttribute("data-summary");
  }

  document.addEventListener("change", function (event) {
    if (event.target.name === "flavor" && event.target.closest("form[data-launch-form]")) {
      updateEstimate();
    }
  });

  // The key fields sit inside the launch form: Enter there must add the key, not launch a machine.
  document.addEventListener("keydown", function (event) {
    if (event.key !== "Enter" || event.target.tagName === "TEXTAREA") {
      return;
    }
    var picker = event.target.closest("[data-key-picker] details");
    if (!picker) {
      return;
    }
    event.preventDefault();
    var button = picker.querySelector("[data-key-add]");
    if (button) {
      button.click();
    }
  });

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", updateEstimate);
  } else {
    updateEstimate();
  }
})();
