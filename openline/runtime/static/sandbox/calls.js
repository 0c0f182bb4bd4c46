/* The phone simulator's calls: a call the sandbox places to the phone shown rings here
   ("Incoming call from ..."). Answer plays the recording (an <audio> element) or reads the
   text with the browser's voice where it has one, always showing the words; then the
   "press 9" prompt, and a few seconds for a key, as a real call's script waits, before it
   hangs up. Keys, hanging up and declining go to the simulator's endpoints, which report
   them through the sandbox carrier's callbacks. */
(function () {
  "use strict";

  var POLL_MS = 1000;
  var WAIT_FOR_KEY_MS = 5000; // after the prompt, like a real call's <Gather timeout="5">

  var config = JSON.parse(document.getElementById("sandbox-config").textContent);
  var el = {};
  var state = { call: null, script: null, phase: "idle", token: 0, answeredAt: 0, timers: [] };
  var polling = false;

  function $(id) { return document.getElementById(id); }

  function show(phase) {
    state.phase = phase;
    var onCall = phase !== "idle";
    el.phone.classList.toggle("on-call", onCall);
    el.call.hidden = !onCall;
    el.incoming.hidden = phase !== "ringing";
    el.active.hidden = phase !== "active";
    el.ended.hidden = phase !== "ended";
    if (phase !== "active") { fail(""); }
  }

  function fail(text) {
    el.error.textContent = text;
    el.error.hidden = !text;
  }

  function later(fn, ms) {
    var token = state.token;
    state.timers.push(window.setTimeout(function () {
      if (token === state.token) { fn(); }
    }, ms));
  }

  // Everything the last call started (sounds, timers) stops.
  function silence() {
    state.token += 1;
    state.timers.forEach(window.clearTimeout);
    state.timers = [];
    el.audio.pause();
    el.audio.removeAttribute("src");
    if ("speechSynthesis" in window) { window.speechSynthesis.cancel(); }
  }

  function post(url, fields) {
    var body = new URLSearchParams(fields || {});
    return fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "X-CSRFToken": config.csrfToken },
      body: body,
    }).then(function (response) {
      return response.text().then(function (text) {
        var data = {};
        try { data = JSON.parse(text); } catch (e) { /* an HTML error page */ }
        if (!response.ok) {
          var reason = data.error || (response.status === 403 ? "this page has expired; reload it" : "the server refused it");
          throw new Error(reason);
        }
        return data;
      });
    });
  }

  // Resolves when the words have been said, or when they would have been (no voice here,
  // or a voice that never says it finished).
  function speak(text, language, seconds) {
    return new Promise(function (resolve) {
      var fallback = window.setTimeout(resolve, (seconds + 1.5) * 1000);
      if (!text || !("speechSynthesis" in window)) { return; }
      var utterance = new SpeechSynthesisUtterance(text);
      utterance.lang = language || "en-US";
      var done = function () { window.clearTimeout(fallback); resolve(); };
      utterance.addEventListener("end", done);
      utterance.addEventListener("error", done);
      window.speechSynthesis.speak(utterance);
    });
  }

  function wordsSeconds(text) {
    return Math.ceil(text.split(/\s+/).filter(Boolean).length / 2.5);
  }

  function play(url, seconds) {
    return new Promise(function (resolve) {
      var fallback = window.setTimeout(resolve, (seconds + 2) * 1000);
      var done = function () { window.clearTimeout(fallback); resolve(); };
      el.audio.addEventListener("ended", done, { once: true });
      el.audio.addEventListener("error", done, { once: true });
      el.audio.src = url;
      el.audio.play().catch(done);
    });
  }

  function tick() {
    if (state.phase !== "active") { return; }
    var s = Math.floor((Date.now() - state.answeredAt) / 1000);
    el.clock.textContent = Math.floor(s / 60) + ":" + String(s % 60).padStart(2, "0");
    later(tick, 500);
  }

  function ring(call) {
    state.call = call;
    document.querySelectorAll(".call-from").forEach(function (span) {
      span.textContent = call.fromDisplay;
    });
    show("ringing");
  }

  function answer() {
    var call = state.call;
    el.answer.disabled = true;
    post(call.urls.answer, { call: call.id }).then(function (script) {
      if (script.hangup) { return end(script.say || ""); }
      state.answeredAt = Date.now();
      state.script = script;
      show("active");
      playScript();
    }).catch(function (error) {
      end("", "Could not answer");
      fail(error.message);
    }).finally(function () { el.answer.disabled = false; });
  }

  // The message, then the prompt, then a few seconds for a key before hanging up; all
  // within the carrier's time limit for the call (counted from answering).
  function playScript() {
    var script = state.script;
    silence();
    var token = state.token;
    el.prompt.hidden = true;
    el.prompt.textContent = script.opt_out_prompt || "";
    el.text.textContent = script.play_url ? "Playing the recorded message…" : script.say;
    var left = (script.time_limit || 120) * 1000 - (Date.now() - state.answeredAt);
    later(hangUp, Math.max(left, 0));
    tick();
    var message = script.play_url
      ? play(script.play_url, script.seconds || 10)
      : speak(script.say, script.language, wordsSeconds(script.say));
    message.then(function () {
      if (token !== state.token || !script.opt_out_prompt) { return null; }
      el.prompt.hidden = false;
      return speak(script.opt_out_prompt, script.language, wordsSeconds(script.opt_out_prompt));
    }).then(function () {
      if (token === state.token) { later(hangUp, WAIT_FOR_KEY_MS); }
    });
  }

  function press(key) {
    if (state.phase !== "active") { return; }
    post(state.call.urls.keypress, { call: state.call.id, digits: key }).then(function (reply) {
      if (reply.hangup) {
        end(reply.say || "");
      } else if (reply.replay && state.script) {
        playScript();
      }
    }).catch(function (error) { fail("Key not sent: " + error.message); });
  }

  function end(goodbye, title) {
    silence();
    el.goodbye.textContent = goodbye;
    el.goodbye.hidden = !goodbye;
    el.endedTitle.textContent = title || "Call ended";
    show("ended");
    if (goodbye) { speak(goodbye, "en-US", wordsSeconds(goodbye)); }
  }

  function hangUp() {
    if (state.phase !== "active") { return; }
    silence();
    post(state.call.urls.hangup, { call: state.call.id }).then(function () { end(""); }).catch(function () { end(""); });
  }

  function decline() {
    el.decline.disabled = true;
    post(state.call.urls.decline, { call: state.call.id }).then(function () { end(""); }).catch(function () { end(""); })
      .finally(function () { el.decline.disabled = false; });
  }

  function poll() {
    if (polling || document.hidden) { return; }
    polling = true;
    var url = config.callsUrl + "?phone=" + encodeURIComponent($("my-phone").value.trim());
    fetch(url, { credentials: "same-origin", cache: "no-store" })
      .then(function (response) { return response.ok ? response.json() : { calls: [] }; })
      .then(function (data) {
        var calls = data.calls || [];
        if (state.phase === "idle") {
          var ringing = calls.filter(function (c) { return c.status === "ringing"; })[0];
          var answered = calls.filter(function (c) { return c.status === "in-progress"; })[0];
          if (ringing) {
            ring(ringing);
          } else if (answered) { // answered before this page was (re)loaded: it can hang up
            ring(answered);
            state.answeredAt = Date.now();
            el.text.textContent = "A call answered earlier is still going on.";
            show("active");
            tick();
          }
        } else if (state.phase === "ringing") {
          var still = calls.some(function (c) { return c.id === state.call.id && c.status === "ringing"; });
          if (!still) { end("", "Missed call"); } // the caller gave up
        }
      })
      .catch(function () { /* the texting side says when the server is unreachable */ })
      .finally(function () { polling = false; });
  }

  function init() {
    el = {
      phone: document.querySelector("main.phone"),
      call: $("call"),
      incoming: $("call-incoming"),
      active: $("call-active"),
      ended: $("call-ended"),
      error: $("call-error"),
      text: $("call-text"),
      prompt: $("call-prompt"),
      goodbye: $("call-goodbye"),
      endedTitle: $("call-ended-title"),
      audio: $("call-audio"),
      clock: $("call-clock"),
      answer: $("call-answer"),
      decline: $("call-decline"),
    };
    el.answer.addEventListener("click", answer);
    el.decline.addEventListener("click", decline);
    $("call-hangup").addEventListener("click", hangUp);
    $("call-close").addEventListener("click", function () { state.call = null; show("idle"); });
    document.querySelectorAll(".keypad [data-key]").forEach(function (button) {
      button.addEventListener("click", function () { press(button.dataset.key); });
    });
    poll();
    window.setInterval(poll, POLL_MS);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
