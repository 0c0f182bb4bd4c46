// Forms in a conversation's pane (forms/pane/_form.html): questions shown or hidden as
// earlier answers change (show-if; the server drops hidden answers too), and answers typed
// but not yet saved kept when the pane is redrawn (a live refresh replaces its HTML). The
// same keeping serves other pane forms marked data-keep-typed (a rescue step's note), for
// their fields marked data-keep-typed.
(function () {
  "use strict";

  function $all(selector, root) { return Array.prototype.slice.call((root || document).querySelectorAll(selector)); }

  // ---- show-if ----------------------------------------------------------------------------
  function answers(form, key) {
    return $all('[name="f-' + key + '"]', form).filter(function (el) {
      if (el.disabled) return false;
      if (el.type === "radio" || el.type === "checkbox") return el.checked;
      return el.value !== "";
    }).map(function (el) { return el.value; });
  }
  function shown(form, box) {
    var key = box.dataset.showIf;
    if (!key) return true;
    var earlier = form.querySelector('.form-field[data-field="' + key + '"]');
    if (earlier && !shown(form, earlier)) return false;
    var wanted = JSON.parse(box.dataset.showValues || "[]");
    return answers(form, key).some(function (v) { return wanted.indexOf(v) !== -1; });
  }
  function applyShowIf(form) {
    // In form order, so a question hidden above hides those that depend on it.
    $all(".form-field", form).forEach(function (box) {
      var visible = shown(form, box);
      box.hidden = !visible;
      $all("input, select, textarea, fieldset", box).forEach(function (el) { el.disabled = !visible; });
    });
  }

  // ---- a long pick-list (a taxonomy) gets a box that narrows its options -----------------
  function searchable(form) {
    $all("select[data-searchable]", form).forEach(function (select) {
      if (select.dataset.searchReady || select.options.length < 9) return;
      select.dataset.searchReady = "1";
      var label = form.querySelector('label[for="' + select.id + '"]');
      var box = document.createElement("input");
      box.type = "search";
      box.className = "option-search";
      box.setAttribute("aria-label", "Search " + (label ? label.textContent.trim() : "the options"));
      box.placeholder = "Type to narrow the list";
      box.addEventListener("input", function (e) {
        e.stopPropagation();  // not an answer: no draft, no autosave
        var words = box.value.toLowerCase();
        Array.prototype.forEach.call(select.options, function (o) {
          o.hidden = o.value !== "" && words !== "" && o.text.toLowerCase().indexOf(words) === -1;
        });
      });
      box.addEventListener("change", function (e) { e.stopPropagation(); });
      select.parentNode.insertBefore(box, select);
    });
  }

  // ---- unsaved answers survive a redraw ---------------------------------------------------
  // What was typed since the last save answered, per form id; put back into the form with
  // the same id when the pane is redrawn, with the focus and the caret.
  var drafts = {}, typedSince = {}, focus = null;
  var KEPT = "form[data-form-fill], form[data-keep-typed]";
  var FIELDS = "input[name^='f-'], select[name^='f-'], textarea[name^='f-'], [data-keep-typed]";
  function kept(node) { return node && node.closest ? node.closest(KEPT) : null; }
  function snapshot(form) {
    var values = {};
    $all(FIELDS, form).forEach(function (el) {
      if (el.tagName === "FORM") return;
      var list = values[el.name] || (values[el.name] = []);
      if (el.type === "radio" || el.type === "checkbox") { if (el.checked) list.push(el.value); }
      else list.push(el.value);
    });
    return values;
  }
  function restore(form, values) {
    $all(FIELDS, form).forEach(function (el) {
      if (el.tagName === "FORM") return;
      var list = values[el.name];
      if (!list) return;
      if (el.type === "radio" || el.type === "checkbox") el.checked = list.indexOf(el.value) !== -1;
      else el.value = list[0] || "";
    });
    if (form.matches("form[data-form-fill]")) applyShowIf(form);
  }
  function typed(e) {
    var form = kept(e.target);
    if (!form || !form.id) return;
    drafts[form.id] = snapshot(form);
    typedSince[form.id] = (typedSince[form.id] || 0) + 1;
    if (e.type === "change" && form.matches("form[data-form-fill]")) applyShowIf(form);
  }
  document.addEventListener("input", typed);
  document.addEventListener("change", typed);
  document.addEventListener("focusin", function (e) {
    var form = kept(e.target);
    focus = form && e.target.id ? { form: form.id, id: e.target.id } : null;
  });

  // A save answered with nothing typed since it was sent: the server has it all.
  var sentAt = {};
  document.addEventListener("htmx:beforeRequest", function (e) {
    var form = kept(e.detail.elt);
    if (form) sentAt[form.id] = typedSince[form.id] || 0;
  });
  document.addEventListener("htmx:afterRequest", function (e) {
    var form = kept(e.detail.elt);
    var status = e.detail.xhr ? e.detail.xhr.status : 0;
    if (form && status >= 200 && status < 300 && sentAt[form.id] === (typedSince[form.id] || 0)) {
      delete drafts[form.id];
    }
  });

  function arrived(form) {
    var values = drafts[form.id];
    var filled = form.matches("form[data-form-fill]");
    if (values) restore(form, values); else if (filled) applyShowIf(form);
    if (filled) searchable(form);
    var lost = document.activeElement === document.body || !document.activeElement;
    if (focus && focus.form === form.id && lost) {
      var el = document.getElementById(focus.id);
      if (el && !el.disabled) {
        el.focus();
        if (typeof el.setSelectionRange === "function" && el.type !== "number" && el.type !== "date") {
          try { el.setSelectionRange(el.value.length, el.value.length); } catch (err) { /* not text */ }
        }
      }
    }
  }
  function scan(node) {
    if (node.nodeType !== 1) return;
    if (node.matches(KEPT)) arrived(node);
    $all(KEPT, node).forEach(arrived);
  }
  new MutationObserver(function (records) {
    records.forEach(function (r) { Array.prototype.forEach.call(r.addedNodes, scan); });
  }).observe(document.documentElement, { childList: true, subtree: true });
  document.addEventListener("DOMContentLoaded", function () { $all("form[data-form-fill]").forEach(function (f) { applyShowIf(f); searchable(f); }); });
})();
