/* A voice broadcast's text, read aloud by the browser's own voice (where it has one), so
   whoever sends it can hear about how it sounds. */
(function () {
  "use strict";

  function init() {
    if (!("speechSynthesis" in window)) { return; }
    document.querySelectorAll(".voice-listen").forEach(function (box) {
      var button = box.querySelector("[data-listen]");
      box.hidden = false;
      button.addEventListener("click", function () {
        if (window.speechSynthesis.speaking) {
          window.speechSynthesis.cancel();
          return;
        }
        var utterance = new SpeechSynthesisUtterance(box.dataset.say);
        utterance.lang = box.dataset.language;
        var done = function () { button.textContent = "Listen"; };
        utterance.addEventListener("end", done);
        utterance.addEventListener("error", done); // cancelled, or no voice for the language
        button.textContent = "Stop";
        window.speechSynthesis.speak(utterance);
      });
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
