// Small behaviours htmx does not cover: keep the thread scrolled to the newest message,
// and Ctrl/Cmd+Enter to send from a message box.
(function () {
  "use strict";

  var stickToBottom = true;

  function scroller() {
    return document.getElementById("thread-scroll");
  }

  function nearBottom(box) {
    return box.scrollHeight - box.scrollTop - box.clientHeight < 80;
  }

  function toBottom() {
    var box = scroller();
    if (box) box.scrollTop = box.scrollHeight;
  }

  document.addEventListener("DOMContentLoaded", toBottom);

  // Before any swap, remember whether the reader was at the newest message; a reader
  // who scrolled up to read history is not yanked back down.
  function remember() {
    var box = scroller();
    stickToBottom = !box || nearBottom(box);
  }
  document.addEventListener("htmx:beforeSwap", remember);
  document.addEventListener("htmx:oobBeforeSwap", remember);

  document.addEventListener("htmx:afterSettle", function () {
    if (stickToBottom) toBottom();
  });

  // Sending your own reply always shows it.
  document.addEventListener("htmx:afterRequest", function (event) {
    var form = event.detail.elt;
    if (form && form.closest && form.closest("#reply-box") && form.tagName === "FORM") {
      stickToBottom = true;
      var body = document.getElementById("reply-body");
      if (event.detail.successful && body) body.focus();
    }
  });

  document.addEventListener("keydown", function (event) {
    var target = event.target;
    if (event.key !== "Enter" || !(event.ctrlKey || event.metaKey)) return;
    if (!target || !target.hasAttribute || !target.hasAttribute("data-send-shortcut")) return;
    if (target.form) {
      event.preventDefault();
      target.form.requestSubmit();
    }
  });
})();
