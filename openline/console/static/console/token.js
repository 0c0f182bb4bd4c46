// The new API token's page: a button that copies the secret (shown only where the
// clipboard can be written; otherwise the text selects whole on click).
(function () {
  "use strict";
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-copy-target]").forEach(function (button) {
      if (!navigator.clipboard) return;
      var source = document.getElementById(button.dataset.copyTarget);
      var status = document.querySelector("[data-copy-status]");
      button.hidden = false;
      button.addEventListener("click", function () {
        navigator.clipboard.writeText(source.textContent.trim()).then(
          function () { if (status) status.textContent = "Copied."; },
          function () { if (status) status.textContent = "Select the token and copy it."; }
        );
      });
    });
  });
})();
