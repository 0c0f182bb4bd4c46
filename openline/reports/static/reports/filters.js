// The report filters: the field list offers only the chosen form's fields (each form's
// fields are an <optgroup> labelled with its name). The server checks the pair anyway.
(function () {
  "use strict";
  function narrow(form, field) {
    var chosen = form.selectedIndex > 0 ? form.options[form.selectedIndex].text : null;
    Array.prototype.forEach.call(field.querySelectorAll("optgroup"), function (group) {
      var shown = chosen === null || group.label === chosen;
      group.hidden = !shown;
      group.disabled = !shown;
    });
    var picked = field.options[field.selectedIndex];
    if (picked && picked.parentElement.disabled) field.value = "";
  }
  document.addEventListener("DOMContentLoaded", function () {
    var form = document.getElementById("id_form");
    var field = document.getElementById("id_field");
    if (!form || !field) return;
    narrow(form, field);
    form.addEventListener("change", function () { narrow(form, field); });
  });
})();
