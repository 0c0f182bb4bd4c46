// The form page's preview: a question with show-if logic appears only while the earlier
// answer it depends on is chosen, as it will in a conversation.
(function () {
  "use strict";
  function chosen(preview, key) {
    var values = [];
    preview.querySelectorAll("#preview-" + key + ", [name=preview-" + key + "]").forEach(function (input) {
      if (input.tagName === "SELECT" && input.value) { values.push(input.value); }
      if (input.type === "checkbox" && input.checked) { values.push(input.value); }
    });
    return values;
  }
  function sync(preview) {
    preview.querySelectorAll("[data-show-if-field]").forEach(function (field) {
      var wanted = field.dataset.showIfValues.split(" ");
      var depends = preview.querySelector("[data-preview-field=" + field.dataset.showIfField + "]");
      var given = chosen(preview, field.dataset.showIfField);
      field.hidden = (depends && depends.hidden) || !given.some(function (v) { return wanted.indexOf(v) >= 0; });
    });
  }
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-preview]").forEach(function (preview) {
      preview.addEventListener("change", function () { sync(preview); });
      sync(preview);
    });
  });
})();
