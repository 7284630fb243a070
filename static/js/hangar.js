// Small behaviours for the dashboard, loaded on every page (no inline scripts: the CSP forbids them).
(function () {
  "use strict";

  // Heavy libraries (xterm.js, uPlot) are fetched only when a page needs them: Hangar.load(scripts, styleSheets)
  // adds the style sheets, then the scripts one after another, and resolves once all have loaded (once per URL).
  var loaded = {};

  function loadOne(url, isScript) {
    if (!loaded[url]) {
      loaded[url] = new Promise(function (resolve, reject) {
        var node = document.createElement(isScript ? "script" : "link");
        if (isScript) {
          node.src = url;
        } else {
          node.rel = "stylesheet";
          node.href = url;
        }
        node.onload = resolve;
        node.onerror = function () {
          delete loaded[url];
          node.remove();
          reject(new Error("could not load " + url));
        };
        document.head.appendChild(node);
      });
    }
    return loaded[url];
  }

  window.Hangar = {
    load: function (scripts, styleSheets) {
      var sheets = Promise.all((styleSheets || []).map(function (url) { return loadOne(url, false); }));
      return (scripts || []).reduce(function (previous, url) {
        return previous.then(function () { return loadOne(url, true); });
      }, sheets);
    }
  };

  // On a phone, tables become stacked cards (hangar.css); each cell is labelled with its column's heading unless
  // the template gave it a data-label. Run on load and after every htmx swap.
  function labelCells(root) {
    Array.prototype.forEach.call((root || document).querySelectorAll("table.table"), function (table) {
      var headings = Array.prototype.map.call(table.querySelectorAll("thead th"), function (th) {
        return th.textContent.trim();
      });
      Array.prototype.forEach.call(table.querySelectorAll("tbody tr"), function (row) {
        var column = 0;
        Array.prototype.forEach.call(row.children, function (cell) {
          if (!cell.hasAttribute("data-label") && headings[column] && cell.colSpan === 1 && column > 0) {
            cell.setAttribute("data-label", headings[column]);
          }
          column += cell.colSpan || 1;
        });
      });
    });
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", function () { labelCells(document); });
  } else {
    labelCells(document);
  }
  document.addEventListener("htmx:afterSwap", function (event) { labelCells(event.target.parentNode || document); });

  // On a phone the navigation folds behind a Menu button (CSS shows it only once this script runs).
  document.documentElement.classList.add("js");
  document.addEventListener("click", function (event) {
    var toggle = event.target.closest("[data-nav-toggle]");
    if (toggle) {
      var open = toggle.closest(".sidebar").classList.toggle("open");
      toggle.setAttribute("aria-expanded", String(open));
    }
  });

  // Modal dialogs (<dialog>): labelled by their first heading, Tab and Shift+Tab stay inside, Esc closes them
  // (the browser's own "cancel"), and focus goes back to whatever opened them.
  function openDialog(dialog, opener) {
    if (!dialog.hasAttribute("aria-labelledby") && !dialog.hasAttribute("aria-label")) {
      var heading = dialog.querySelector("h1, h2, h3");
      if (heading) {
        heading.id = heading.id || dialog.id + "-title";
        dialog.setAttribute("aria-labelledby", heading.id);
      }
    }
    dialog.returnFocusTo = opener || document.activeElement;
    if (!dialog.open) {
      dialog.showModal();
    }
  }

  document.addEventListener(
    "close",
    function (event) {
      var dialog = event.target;
      if (dialog.tagName === "DIALOG" && dialog.returnFocusTo && document.contains(dialog.returnFocusTo)) {
        dialog.returnFocusTo.focus();
      }
    },
    true
  );

  document.addEventListener("keydown", function (event) {
    var dialog = document.querySelector("dialog[open]");
    if (event.key !== "Tab" || !dialog) {
      return;
    }
    var focusable = Array.prototype.filter.call(
      dialog.querySelectorAll("a[href], button, input, select, textarea, [tabindex]:not([tabindex='-1'])"),
      function (element) {
        return !element.disabled && element.type !== "hidden" && element.getClientRects().length > 0;
      }
    );
    if (!focusable.length) {
      return;
    }
    var first = focusable[0];
    var last = focusable[focusable.length - 1];
    if (!dialog.contains(document.activeElement)) {
      event.preventDefault();
      first.focus();
    } else if (event.shiftKey && document.activeElement === first) {
      event.preventDefault();
      last.focus();
    } else if (!event.shiftKey && document.activeElement === last) {
      event.preventDefault();
      first.focus();
    }
  });

  // The one confirmation dialog, built on first use: a modal <dialog> labelled by its question and described by
  // its note, with the confirming button first (it takes the focus) and Cancel.
  function element(tag, attributes, children) {
    var node = document.createElement(tag);
    Object.keys(attributes).forEach(function (name) {
      node.setAttribute(name, attributes[name]);
    });
    node.append.apply(node, children || []);
    return node;
  }

  function confirmDialog() {
    var dialog = document.getElementById("confirm-dialog");
    if (dialog) {
      return dialog;
    }
    dialog = element(
      "dialog",
      { id: "confirm-dialog", class: "confirm", "aria-labelledby": "confirm-dialog-title", "aria-describedby": "confirm-dialog-note" },
      [
        element("h2", { id: "confirm-dialog-title", "data-confirm-question": "" }),
        element("p", { id: "confirm-dialog-note", class: "muted small", "data-confirm-note": "" }),
        element("div", { class: "form-actions" }, [
          element("button", { type: "button", "data-confirm-accept": "" }),
          element("button", { type: "button", class: "btn", "data-dialog-close": "" }, ["Cancel"])
        ])
      ]
    );
    document.body.appendChild(dialog);
    return dialog;
  }

  // <form data-confirm="Question?" [data-confirm-note="…"] [data-confirm-label="Stop"]> asks in the page's own
  // dialog before submitting; the browser's confirm() is never used.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    var question = form.getAttribute("data-confirm");
    var dialog = confirmDialog();
    if (!question || form.confirmed || !dialog) {
      form.confirmed = false;
      return;
    }
    event.preventDefault();
    var submitter = event.submitter || form.querySelector("[type=submit]");
    var accept = dialog.querySelector("[data-confirm-accept]");
    dialog.querySelector("[data-confirm-question]").textContent = question;
    dialog.querySelector("[data-confirm-note]").textContent = form.getAttribute("data-confirm-note") || "";
    accept.textContent = form.getAttribute("data-confirm-label") || (submitter && submitter.textContent.trim()) || "Confirm";
    accept.className = "btn " + (submitter && submitter.classList.contains("danger") ? "danger solid" : "primary");
    accept.onclick = function () {
      dialog.returnFocusTo = null;
      dialog.close();
      form.confirmed = true;
      form.requestSubmit(submitter && submitter.form === form ? submitter : undefined);
    };
    openDialog(dialog, submitter);
    accept.focus();
  });

  // <select data-autosubmit> submits its form when changed (the tenant switcher).
  document.addEventListener("change", function (event) {
    var target = event.target;
    if (target.matches("[data-autosubmit]") && target.form) {
      target.form.requestSubmit();
    }
  });

  // <button data-dialog-open="id"> opens <dialog id="id">; <button data-dialog-close> closes its dialog.
  document.addEventListener("click", function (event) {
    var opener = event.target.closest("[data-dialog-open]");
    if (opener) {
      var dialog = document.getElementById(opener.getAttribute("data-dialog-open"));
      if (dialog) {
        openDialog(dialog, opener);
      }
      return;
    }
    var closer = event.target.closest("[data-dialog-close]");
    if (closer) {
      closer.closest("dialog").close();
    }
  });

  // <input data-must-equal="text"> enables the submit button of its form only when the text matches.
  document.addEventListener("input", function (event) {
    var input = event.target;
    var expected = input.getAttribute("data-must-equal");
    if (expected === null) {
      return;
    }
    var button = input.form && input.form.querySelector("[type=submit]");
    if (button) {
      button.disabled = input.value !== expected;
    }
  });

  // Copy buttons: <button data-copy="#selector">.
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy]");
    if (!button) {
      return;
    }
    var source = document.querySelector(button.getAttribute("data-copy"));
    if (source && navigator.clipboard) {
      navigator.clipboard.writeText(source.textContent.trim());
      button.textContent = "Copied";
    }
  });
})();
