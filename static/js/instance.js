// The instance detail page: a dialog the server re-rendered with form errors (rename) opens again as a modal.
// The server marks it `open` so the errors show even without JavaScript; here it becomes a proper modal.
(function () {
  "use strict";

  function reopen() {
    var dialogs = document.querySelectorAll("dialog[data-reopen-modal]");
    Array.prototype.forEach.call(dialogs, function (dialog) {
      if (dialog.open) {
        dialog.close();
      }
      dialog.showModal();
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", reopen);
  } else {
    reopen();
  }
})();
