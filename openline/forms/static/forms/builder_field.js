// The question page: show only the inputs the chosen kind uses, and only the answers of
// the question chosen for show-if. Without this script every input shows and still works.
(function () {
  "use strict";
  function setUp(form) {
    var kind = form.querySelector("[name=kind]");
    var showIf = form.querySelector("[name=show_if_field]");
    function sync() {
      form.querySelectorAll("[data-for-kinds]").forEach(function (el) {
        el.hidden = el.dataset.forKinds.split(" ").indexOf(kind.value) < 0;
      });
      form.querySelectorAll("[data-show-if-for]").forEach(function (el) {
        var on = showIf && el.dataset.showIfFor === showIf.value;
        el.hidden = !on;
        if (!on) {
          el.querySelectorAll("input").forEach(function (box) { box.checked = false; });
        }
      });
    }
    kind.addEventListener("change", sync);
    if (showIf) { showIf.addEventListener("change", sync); }
    sync();
  }
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-question-form]").forEach(setUp);
  });
})();
