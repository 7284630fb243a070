// Small behaviours for the dashboard, loaded on every page (no inline scripts: the CSP forbids them).
(function () {
  "use strict";

  // <form data-confirm="Question?"> asks before submitting.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    var question = form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) {
      event.preventDefault();
    }
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
        dialog.showModal();
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
