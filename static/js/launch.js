// The launch form: a live cost estimate of the chosen size (and a new public address), sizes too small for the
// chosen image greyed out, and Enter inside "add a key" adding the key. Prices are computed on the server
// (billing/pricing.py) and carried on each size card as data attributes, so this file only displays them and never
// does price arithmetic of its own.
// The server checks everything again; this only saves a round trip.
(function () {
  "use strict";

  function launchForm() {
    return document.querySelector("form[data-launch-form]");
  }

  function updateEstimate() {
    var estimate = document.querySelector("[data-cost-estimate]");
    var form = launchForm();
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

  // Only networks of the chosen region can be joined: the others are hidden and unticked, and the region's default
  // network is ticked when none of its networks is.
  function applyRegion() {
    var form = launchForm();
    var region = form && form.querySelector("input[name=region]:checked");
    if (!region) {
      return;
    }
    var choices = form.querySelectorAll("[data-network-region]");
    var ticked = false;
    Array.prototype.forEach.call(choices, function (label) {
      var here = label.getAttribute("data-network-region") === region.value;
      var box = label.querySelector("input");
      label.hidden = !here;
      if (!here) {
        box.checked = false;
      }
      ticked = ticked || box.checked;
    });
    if (!ticked) {
      Array.prototype.forEach.call(choices, function (label) {
        if (!label.hidden && label.hasAttribute("data-default-network")) {
          label.querySelector("input").checked = true;
        }
      });
    }
  }

  // A new public address is priced on its own line, shown while its box is ticked.
  function updateAddress() {
    var line = document.querySelector("[data-cost-ipv4]");
    var box = document.querySelector("input[data-public-ip]");
    if (line && box) {
      line.hidden = !box.checked;
    }
  }

  // An image needs a minimum disk and RAM: the server lists the sizes below it (data-too-small), by its own rule.
  function applyImage() {
    var form = launchForm();
    if (!form) {
      return;
    }
    var image = form.querySelector("input[name=image]:checked");
    var tooSmallIds = image ? (image.getAttribute("data-too-small") || "").split(" ") : [];
    var flavors = form.querySelectorAll("input[name=flavor]");
    Array.prototype.forEach.call(flavors, function (input) {
      if (input.hasAttribute("data-quota-refused")) {
        return;
      }
      var tooSmall = tooSmallIds.indexOf(input.value) !== -1;
      input.disabled = tooSmall;
      if (tooSmall && input.checked) {
        input.checked = false;
      }
      var note = input.closest("label").querySelector("[data-image-note]");
      if (note) {
        note.textContent = tooSmall ? "Too small for " + image.getAttribute("data-name") + "." : "";
        note.hidden = !tooSmall;
      }
    });
    updateEstimate();
  }

  document.addEventListener("change", function (event) {
    if (!event.target.closest("form[data-launch-form]")) {
      return;
    }
    if (event.target.name === "flavor") {
      updateEstimate();
    } else if (event.target.name === "image") {
      applyImage();
    } else if (event.target.name === "public_ip") {
      updateAddress();
    } else if (event.target.name === "region") {
      applyRegion();
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
    document.addEventListener("DOMContentLoaded", applyImage);
  } else {
    applyImage();
  }
})();
