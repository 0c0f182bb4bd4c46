// The monthly summary's "Print / Save as PDF" button: the browser's print dialog, with the
// page's print style sheet (no filters, no navigation).
(function () {
  "use strict";
  document.addEventListener("click", function (event) {
    if (event.target.closest("[data-print]")) window.print();
  });
})();
