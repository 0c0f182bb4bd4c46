/* The compose page: "Text message" or "Voice call", and a call's message: recorded here
   with the microphone (converted to WAV in the browser: phones play only WAV or MP3) or an
   uploaded file, both sent to the recordings endpoint, which answers with the recording's
   id for the form; or a text read aloud, with its length. */
(function () {
  "use strict";

  var SAMPLE_RATE = 8000; // telephone audio: 8 kHz, 16-bit, mono

  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.content : "";
  }

  function showChannel(form) {
    var checked = form.querySelector('input[name="channel"]:checked');
    var channel = checked ? checked.value : "sms";
    form.querySelectorAll("[data-channel]").forEach(function (part) {
      part.hidden = part.dataset.channel !== channel;
    });
  }

  function clock(seconds) {
    var s = Math.floor(seconds);
    return Math.floor(s / 60) + ":" + String(s % 60).padStart(2, "0");
  }

  function Voice(box) {
    this.box = box;
    this.field = document.getElementById("id_recording_id");
    this.say = document.getElementById("id_say");
    this.sayLength = document.getElementById("say-length");
    this.error = document.getElementById("recording-error");
    this.ready = document.getElementById("recording-ready");
    this.status = document.getElementById("recording-status");
    this.player = document.getElementById("recording-player");
    this.start = document.getElementById("record-start");
    this.stop = document.getElementById("record-stop");
    this.clock = document.getElementById("record-clock");
    this.file = document.getElementById("recording-file");
    this.maxSeconds = Number(box.dataset.maxSeconds) || 300;
    this.recorder = null;
    this.timer = null;
    this.bind();
    this.sync();
  }

  Voice.prototype.bind = function () {
    var self = this;
    this.start.addEventListener("click", function () { self.record(); });
    this.stop.addEventListener("click", function () { self.finish(); });
    this.file.addEventListener("change", function () {
      if (self.file.files.length) { self.upload(self.file.files[0], self.file.files[0].name); }
    });
    document.getElementById("recording-clear").addEventListener("click", function () {
      self.clear();
    });
    this.say.addEventListener("input", function () { self.showLength(); });
    if (!(navigator.mediaDevices && window.MediaRecorder)) {
      this.start.disabled = true;
      this.start.title = "This browser cannot record: upload a file instead.";
    }
  };

  // A call plays the recording or reads the text, never both.
  Voice.prototype.sync = function () {
    var has = Boolean(this.field.value);
    this.ready.hidden = !has;
    this.say.disabled = has;
    this.showLength();
  };

  Voice.prototype.showLength = function () {
    if (this.field.value) { this.sayLength.textContent = ""; return; }
    var words = this.say.value.trim().split(/\s+/).filter(Boolean).length;
    if (!words) { this.sayLength.textContent = ""; return; }
    var rate = Number(this.box.dataset.wordsPerSecond) || 2.5;
    var promptWords = (this.box.dataset.prompt || "").split(/\s+/).filter(Boolean).length;
    var seconds = Math.ceil((words + promptWords) / rate) + (Number(this.box.dataset.promptSeconds) || 0);
    this.sayLength.textContent = "About " + seconds + " seconds read aloud, with the “press 9” line.";
  };

  Voice.prototype.fail = function (text) {
    this.error.textContent = text;
    this.error.hidden = !text;
  };

  Voice.prototype.record = function () {
    var self = this;
    this.fail("");
    navigator.mediaDevices.getUserMedia({ audio: true }).then(function (stream) {
      var chunks = [];
      var recorder = new MediaRecorder(stream);
      self.recorder = recorder;
      recorder.addEventListener("dataavailable", function (event) {
        if (event.data.size) { chunks.push(event.data); }
      });
      recorder.addEventListener("stop", function () {
        stream.getTracks().forEach(function (track) { track.stop(); });
        self.convert(new Blob(chunks, { type: recorder.mimeType }));
      });
      recorder.start();
      var began = Date.now();
      self.start.hidden = true;
      self.stop.hidden = false;
      self.clock.hidden = false;
      self.clock.textContent = "0:00";
      self.timer = window.setInterval(function () {
        var seconds = (Date.now() - began) / 1000;
        self.clock.textContent = clock(seconds);
        if (seconds >= self.maxSeconds) { self.finish(); }
      }, 250);
    }).catch(function (error) {
      self.fail("The microphone could not be used (" + error.name + "). Allow it, or upload a file.");
    });
  };

  Voice.prototype.finish = function () {
    window.clearInterval(this.timer);
    this.start.hidden = false;
    this.stop.hidden = true;
    if (this.recorder && this.recorder.state !== "inactive") { this.recorder.stop(); }
    this.recorder = null;
  };

  // The browser records in its own format (WebM/Opus, MP4/AAC): decode it, then write the
  // samples as a WAV file at the telephone rate.
  Voice.prototype.convert = function (blob) {
    var self = this;
    this.status.textContent = "";
    blob.arrayBuffer().then(function (data) {
      var context;
      try {
        context = new AudioContext({ sampleRate: SAMPLE_RATE });
      } catch (e) {
        context = new AudioContext();
      }
      return context.decodeAudioData(data).then(function (audio) {
        context.close();
        return audio;
      });
    }).then(function (audio) {
      var wav = new window.wavefile.WaveFile();
      wav.fromScratch(1, audio.sampleRate, "32f", mono(audio));
      wav.toBitDepth("16");
      if (audio.sampleRate !== SAMPLE_RATE) { wav.toSampleRate(SAMPLE_RATE); }
      var file = new Blob([wav.toBuffer()], { type: "audio/wav" });
      var name = document.getElementById("id_name").value.trim() || "Recording";
      self.upload(file, name + ".wav");
    }).catch(function () {
      self.fail("The recording could not be converted to WAV. Try again, or upload a file.");
    });
  };

  function mono(audio) {
    var mixed = new Float32Array(audio.length);
    for (var c = 0; c < audio.numberOfChannels; c++) {
      var samples = audio.getChannelData(c);
      for (var i = 0; i < samples.length; i++) { mixed[i] += samples[i] / audio.numberOfChannels; }
    }
    return mixed;
  }

  Voice.prototype.upload = function (file, name) {
    var self = this;
    var fields = new FormData();
    fields.append("audio", file, name);
    fields.append("name", name.replace(/\.(wav|mp3)$/i, ""));
    this.fail("");
    this.status.textContent = "Saving the recording…";
    this.ready.hidden = false;
    fetch(this.box.dataset.uploadUrl, {
      method: "POST",
      credentials: "same-origin",
      headers: { "X-CSRFToken": csrfToken() },
      body: fields,
    }).then(function (response) {
      return response.text().then(function (text) {
        var data = {};
        try { data = JSON.parse(text); } catch (e) { /* a proxy's page */ }
        if (!response.ok) { throw new Error(data.error || "The server refused it (" + response.status + ")."); }
        return data;
      });
    }).then(function (data) {
      self.field.value = String(data.id);
      self.say.value = "";
      self.status.textContent = "Recording ready: “" + data.name + "”, " + data.seconds +
        " second" + (data.seconds === 1 ? "" : "s") + ".";
      self.player.src = data.url;
      self.sync();
    }).catch(function (error) {
      self.field.value = "";
      self.sync();
      var offline = error instanceof TypeError; // fetch's own failure: no answer at all
      self.fail(offline ? "The server could not be reached." : error.message);
    }).finally(function () {
      self.file.value = "";
    });
  };

  Voice.prototype.clear = function () {
    this.field.value = "";
    this.player.removeAttribute("src");
    this.status.textContent = "";
    this.sync();
  };

  function init() {
    var form = document.getElementById("broadcast-form");
    if (!form) { return; }
    form.addEventListener("change", function (event) {
      if (event.target.name === "channel") { showChannel(form); }
    });
    showChannel(form);
    var box = document.getElementById("voice-message");
    if (box) { new Voice(box); }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
