/* OpenLine web chat widget. Embed with:
 *   <script src="https://openline.example.org/widget.js" data-widget="ID" defer></script>
 * No dependencies. Everything lives in a shadow root, so the host page's styles do
 * not reach in and ours do not leak out. Visitor and counselor text is only ever set as
 * textContent, never parsed as HTML. */
(function () {
  "use strict";
  var script = document.currentScript;
  if (!script || !script.dataset.widget) return;
  var id = script.dataset.widget;
  var base = new URL(script.src, location.href).origin;
  var KEY = "openline-chat-" + id;
  var saved = {};
  try { saved = JSON.parse(sessionStorage.getItem(KEY) || "{}") || {}; } catch (e) { saved = {}; }
  function save() { try { sessionStorage.setItem(KEY, JSON.stringify(saved)); } catch (e) { /* private mode */ } }

  var host = document.createElement("div");
  host.setAttribute("data-openline-chat", id);
  var root = host.attachShadow({ mode: "open" });
  root.innerHTML =
    '<style>' +
    ':host{all:initial}[hidden]{display:none!important}' +
    '*{box-sizing:border-box;font:15px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif}' +
    '.launch{position:fixed;right:16px;bottom:16px;z-index:2147483000;border:0;border-radius:24px;padding:12px 18px;color:#fff;background:var(--c);cursor:pointer;box-shadow:0 2px 10px rgba(0,0,0,.25)}' +
    '.panel{position:fixed;right:16px;bottom:76px;z-index:2147483000;width:360px;max-width:calc(100vw - 32px);height:520px;max-height:calc(100vh - 100px);display:flex;flex-direction:column;background:#fff;color:#1b1b1b;border-radius:12px;box-shadow:0 4px 24px rgba(0,0,0,.3);overflow:hidden}' +
    '.panel[hidden]{display:none}' +
    'header{display:flex;align-items:center;gap:8px;padding:10px 12px;background:var(--c);color:#fff}' +
    'header h2{flex:1;margin:0;font-weight:600}' +
    'header button{border:1px solid rgba(255,255,255,.7);background:transparent;color:#fff;border-radius:6px;padding:4px 8px;cursor:pointer}' +
    '.exit{background:#b3261e!important;border-color:#b3261e!important}' +
    '.body{flex:1;overflow:auto;padding:12px;display:flex;flex-direction:column;gap:8px}' +
    '.log{display:flex;flex-direction:column;gap:8px}.note{color:#444;margin:0}.status{font-size:13px;color:#555;margin:0}' +
    '.msg{max-width:85%;padding:8px 10px;border-radius:10px;white-space:pre-wrap;overflow-wrap:anywhere}' +
    '.visitor{align-self:flex-end;background:#e8eefc}.counselor{align-self:flex-start;background:#f1f1f1}' +
    '.msg small{display:block;font-size:11px;color:#666;margin-top:2px}' +
    'form{display:flex;gap:6px;padding:10px;border-top:1px solid #ddd}' +
    'textarea,input,select{flex:1;border:1px solid #999;border-radius:6px;padding:6px;resize:none}' +
    'form button,.again{border:0;border-radius:6px;padding:6px 12px;color:#fff;background:var(--c);cursor:pointer}' +
    '.qs{display:flex;flex-direction:column;gap:10px;padding:0;border:0}.qs label{display:flex;flex-direction:column;gap:4px}.error{color:#b3261e;margin:0}' +
    'fieldset{border:0;margin:0;padding:0;display:flex;flex-wrap:wrap;gap:4px 12px}legend{padding:0;margin-bottom:4px}.qs fieldset label,.qs .check{flex-direction:row;align-items:center;gap:4px}' +
    '.qs input[type=radio],.qs input[type=checkbox]{flex:none;margin:0}.qs small{flex-basis:100%;color:#555;font-size:13px}.row{display:flex;gap:8px}.skip{background:#666!important}a{color:inherit}' +
    ':focus-visible{outline:3px solid #ffbf47;outline-offset:1px}' +
    '@media (max-width:480px){.panel{right:0;bottom:0;width:100vw;max-width:100vw;height:100vh;max-height:100vh;border-radius:0}}' +
    '</style>' +
    '<button class="launch" type="button" aria-haspopup="dialog" aria-expanded="false">Chat with us</button>' +
    '<section class="panel" role="dialog" aria-modal="false" aria-labelledby="ol-title" hidden>' +
    '<header><h2 id="ol-title"></h2>' +
    '<button class="exit" type="button" title="Leave this site now">Quick exit</button>' +
    '<button class="close" type="button" aria-label="Minimize chat">–</button></header>' +
    '<div class="body"><p class="note greeting" aria-live="polite"></p><p class="note opens" hidden></p>' +
    '<form class="start qs" hidden novalidate><label>Your first name (optional) <input class="name" maxlength="100" autocomplete="off"></label>' +
    '<div class="pre"></div><button type="submit" class="begin">Start chat</button></form>' +
    '<div class="log" role="log" aria-live="polite" aria-label="Messages"></div>' +
    '<form class="survey qs" hidden novalidate><p class="note">Before you go: would you answer a few questions?</p><div class="post"></div>' +
    '<div class="row"><button type="submit">Send answers</button><button type="button" class="skip">No thanks</button></div></form>' +
    '<button type="button" class="again" hidden>Start a new chat</button>' +
    '<p class="status typing" aria-live="polite"></p><p class="status" aria-live="polite"></p><p class="error" role="alert"></p></div>' +
    '<form class="compose" hidden><label hidden for="ol-text">Message</label>' +
    '<textarea id="ol-text" rows="2" maxlength="2000" placeholder="Type a message"></textarea>' +
    '<button type="submit">Send</button></form>' +
    '<form class="end-form" hidden><button type="submit" class="end">End chat</button></form>' +
    '</section>';
  function $(s) { return root.querySelector(s); }
  var panel = $(".panel"), launch = $(".launch"), log = $(".log"), text = $("#ol-text");
  // A fresh page shows the whole chat (after=0); a reconnect asks only for what it missed.
  var config = null, socket = null, retry = 0, lastId = 0;
  var outbox = saved.outbox || []; // sent but not yet confirmed: resent once on reconnect
  var shown = {};

  function setStatus(s) { $(".status:not(.typing)").textContent = s; }
  function setError(s) { $(".error").textContent = s || ""; }
  function show(el, on) { el.hidden = !on; }

  function bubble(m, pending) {
    var key = m.id ? "id-" + m.id : "c-" + m.client_id;
    var existing = shown[key] || (m.client_id && shown["c-" + m.client_id]);
    var el = existing || document.createElement("div");
    el.className = "msg " + m.from;
    el.textContent = m.body; // inert: never HTML
    var meta = document.createElement("small");
    meta.textContent = m.from === "visitor" ? (pending ? "sending…" : "sent ✓") : "";
    if (m.from === "visitor") el.appendChild(meta);
    if (!existing) log.appendChild(el);
    if (m.id) { shown["id-" + m.id] = el; lastId = Math.max(lastId, m.id); }
    if (m.client_id) shown["c-" + m.client_id] = el;
    var body = $(".body"); body.scrollTop = body.scrollHeight;
  }

  function received(m) {
    if (m.from === "visitor" && m.client_id) {
      outbox = outbox.filter(function (o) { return o.client_id !== m.client_id; });
      saved.outbox = outbox;
    }
    bubble(m, false);
    save();
    if (m.from === "counselor") $(".typing").textContent = "";
    if (m.from === "counselor" && socket && socket.readyState === 1) {
      socket.send(JSON.stringify({ type: "received", ids: [m.id] }));
    }
  }

  function ended(by) {
    show($(".compose"), false); show($(".end-form"), false);
    setStatus(by === "counselor" ? "The counselor ended the chat. Thank you for reaching out." : "You ended the chat. Thank you for reaching out.");
    saved.ended = true; save();
    if (socket) { try { socket.close(); } catch (e) { /* gone */ } }
    afterEnd();
  }

  function connect() {
    if (!saved.token || saved.ended) return;
    var url = base.replace(/^http/, "ws") + "/ws/chat/" + encodeURIComponent(id) + "/?token=" + encodeURIComponent(saved.token) + "&after=" + lastId;
    socket = new WebSocket(url);
    socket.onopen = function () { retry = 0; setStatus("Connected. Waiting for a counselor…"); };
    socket.onmessage = function (e) {
      var data = JSON.parse(e.data);
      if (data.type === "history") {
        data.messages.forEach(received);
        if (data.ended) { ended("counselor"); return; }
        outbox.forEach(function (o) { socket.send(JSON.stringify(o)); });
        var ids = data.messages.filter(function (m) { return m.from === "counselor"; }).map(function (m) { return m.id; });
        if (ids.length || log.querySelector(".counselor")) setStatus("");
        if (ids.length) socket.send(JSON.stringify({ type: "received", ids: ids }));
      } else if (data.type === "message") {
        received(data);
        if (data.from === "counselor") setStatus("");
      } else if (data.type === "queue") {
        if (data.waiting) {
          var wait = data.estimate_seconds == null ? "unknown" : "about " + Math.max(1, Math.round(data.estimate_seconds / 60)) + " min";
          setStatus("You are number " + data.position + " in line. Estimated wait: " + wait + ". You can write while you wait.");
        } else if (!log.querySelector(".counselor")) {
          setStatus("A counselor has joined.");
        }
      } else if (data.type === "typing") {
        var note = $(".typing");
        note.textContent = "The counselor is typing…";
        clearTimeout(note.timer);
        note.timer = setTimeout(function () { note.textContent = ""; }, 4000);
      } else if (data.type === "ended") {
        ended(data.by);
      } else if (data.type === "error") {
        setError(data.message);
        if (data.client_id) {
          outbox = outbox.filter(function (o) { return o.client_id !== data.client_id; });
          saved.outbox = outbox; save();
        }
      }
    };
    socket.onclose = function (e) {
      socket = null;
      if (saved.ended) return;
      if (e.code === 4401 || e.code === 4403) { setError("This chat is no longer available."); saved = {}; save(); return; }
      setStatus("Reconnecting…");
      retry = Math.min(retry + 1, 6);
      setTimeout(connect, Math.min(15000, 500 * Math.pow(2, retry - 1)));
    };
  }

  // Pre-chat and survey questions. Prompts and choices are set as text, never as HTML.
  function el(tag, attrs, txt) {
    var e = document.createElement(tag);
    for (var k in attrs) e.setAttribute(k, attrs[k]);
    if (txt != null) e.textContent = txt;
    return e;
  }
  function question(q) {
    var name = "q" + q.id, need = q.required ? " (required)" : "", box;
    if (q.kind === "text") {
      box = el("label", { "data-q": q.id }, q.prompt + need);
      box.appendChild(el("input", { name: name, maxlength: "500", autocomplete: "off" }));
      return box;
    }
    if (q.kind === "consent") {
      box = el("div", { "data-q": q.id, "class": "check-row" });
      var lab = el("label", { "class": "check" });
      lab.appendChild(el("input", { type: "checkbox", name: name, value: "yes" }));
      lab.appendChild(document.createTextNode(q.prompt + need));
      box.appendChild(lab);
      if (/^https?:\/\//.test(q.link || "")) box.appendChild(el("a", { href: q.link, target: "_blank", rel: "noopener noreferrer" }, "Read the terms"));
      return box;
    }
    box = el("fieldset", { "data-q": q.id });
    box.appendChild(el("legend", {}, q.prompt + need));
    var values = q.kind === "scale" ? ["1", "2", "3", "4", "5", "6", "7"] : q.kind === "yesno" ? ["Yes", "No"] : q.options || [];
    values.forEach(function (v) {
      var lab = el("label", {});
      lab.appendChild(el("input", { type: "radio", name: name, value: v }));
      lab.appendChild(document.createTextNode(v));
      box.appendChild(lab);
    });
    return box;
  }
  function render(list, where) {
    where.textContent = "";
    (list || []).forEach(function (q) { where.appendChild(question(q)); });
  }
  // {id: value} from a form; null (and the field focused) if a required one is empty.
  function answers(list, form) {
    var out = {};
    for (var i = 0; i < (list || []).length; i++) {
      var q = list[i], inputs = form.querySelectorAll('[name="q' + q.id + '"]'), v = "";
      inputs.forEach(function (input) {
        if (input.type === "radio" || input.type === "checkbox") { if (input.checked) v = input.value; } else v = input.value.trim();
      });
      if (!v && q.required) { setError("Please answer: " + q.prompt); inputs[0].focus(); return null; }
      if (v) out[q.id] = v;
    }
    return out;
  }

  // The survey: the inbox's form (any field kind), keyed by field key, with show-if.
  var fid = 0;
  function field(f) {
    var k = f.kind, name = "f-" + f.key, need = f.required ? " (required)" : "", box, input;
    var many = k === "multi_choice" || k === "checklist", pick = many || k === "choice" || k === "yesno" || k === "scale";
    var hid = "ol-h" + (++fid), help = f.help ? el("small", { id: hid }, f.help) : null;
    if (pick) {
      box = el("fieldset", { "data-f": f.key });
      box.appendChild(el("legend", {}, f.label + need));
      if (help) { box.setAttribute("aria-describedby", hid); box.appendChild(help); }
      f.options.forEach(function (o) {
        var lab = el("label", {});
        lab.appendChild(el("input", { type: many ? "checkbox" : "radio", name: name, value: o.value }));
        lab.appendChild(document.createTextNode(o.label));
        box.appendChild(lab);
      });
      return box;
    }
    box = el("label", { "data-f": f.key }, f.label + need);
    if (k === "long_text") input = el("textarea", { name: name, rows: "3", maxlength: "5000" });
    else if (k === "taxonomy") {
      input = el("select", { name: name });
      input.appendChild(el("option", { value: "" }, "Choose…"));
      f.options.forEach(function (o) { input.appendChild(el("option", { value: o.value }, o.label)); });
    } else {
      input = el("input", { name: name, autocomplete: "off", type: k === "number" ? "number" : k === "date" ? "date" : "text" });
      if (k === "number") { input.step = "any"; if (f.min != null) input.min = f.min; if (f.max != null) input.max = f.max; }
      if (k === "text") input.maxLength = 300;
    }
    if (help) input.setAttribute("aria-describedby", hid);
    box.appendChild(input);
    if (help) box.appendChild(help);
    return box;
  }
  function values(form, f) {
    var out = [];
    form.querySelectorAll('[name="f-' + f.key + '"]').forEach(function (i) {
      if (i.type === "radio" || i.type === "checkbox" ? i.checked : i.value.trim()) out.push(i.value.trim());
    });
    return out;
  }
  // Which fields show: a field with show-if shows when its field shows and has one of the values.
  function visible(form) {
    var on = {};
    config.survey.forEach(function (f) {
      var c = f.show_if;
      on[f.key] = !c || (on[c.field] && values(form, { key: c.field }).some(function (v) { return c.values.indexOf(v) >= 0; }));
      show(form.querySelector('[data-f="' + f.key + '"]'), on[f.key]);
    });
    return on;
  }
  // {key: value or [values]} of the shown fields; null (the field focused) if a required one is empty.
  function surveyAnswers(form) {
    var on = visible(form), out = {};
    for (var i = 0; i < config.survey.length; i++) {
      var f = config.survey[i], v = values(form, f);
      if (!on[f.key]) continue;
      if (!v.length && f.required) { setError("Please answer: " + f.label); focusField(form, f.key); return null; }
      if (v.length) out[f.key] = f.kind === "multi_choice" || f.kind === "checklist" ? v : v[0];
    }
    return out;
  }
  function focusField(form, key) {
    var f = form.querySelector('[data-f="' + key + '"]');
    f = f && f.querySelector("input,select,textarea");
    if (f) f.focus();
  }
  function post(path, data) {
    return fetch(base + "/chat/" + encodeURIComponent(id) + "/" + path, {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(data)
    }).then(function (r) { return r.json().then(function (d) { return { ok: r.ok, d: d }; }); });
  }
  function refused(res, form) {
    setError(res.d.message || "Something went wrong.");
    var f = res.d.question && form.querySelector('[data-q="' + res.d.question + '"] input');
    if (f) f.focus();
    if (res.d.field) focusField(form, res.d.field);
  }

  function start(e) {
    e.preventDefault();
    setError("");
    var pre = answers(config.prechat, $(".start"));
    if (!pre) return;
    post("start", { name: $(".name").value, answers: pre }).then(function (res) {
      if (res.d.error === "busy") { config.busy = true; return offer(config); }
      if (res.d.error === "rate_limited") return later(res.d);
      if (!res.ok) return refused(res, $(".start"));
      saved = { token: res.d.token, outbox: [] }; save();
      show($(".start"), false); show($(".compose"), true); show($(".end-form"), true);
      text.focus();
      connect();
    }).catch(function () { setError("Could not reach the chat service. Please try again."); });
  }

  function afterEnd() {
    var survey = config && config.survey && config.survey.length && !saved.surveyDone;
    show($(".survey"), !!survey);
    show($(".again"), !survey && !!(config && config.online));
    if (!survey) return;
    var post_ = $(".post");
    post_.textContent = "";
    config.survey.forEach(function (f) { post_.appendChild(field(f)); });
    visible($(".survey"));
    $(".survey").querySelector("input,select,textarea").focus();
  }
  function surveyDone(msg) {
    saved.surveyDone = true; save();
    show($(".survey"), false); setStatus(msg); afterEnd();
  }
  function sendSurvey(e) {
    e.preventDefault();
    setError("");
    var post_ = surveyAnswers($(".survey"));
    if (!post_) return;
    post("survey", { token: saved.token, answers: post_ }).then(function (res) {
      if (!res.ok && !res.d.field) return surveyDone(res.d.message || "");
      if (!res.ok) return refused(res, $(".survey"));
      surveyDone("Thank you for your answers.");
    }).catch(function () { setError("Could not send your answers. Please try again."); });
  }

  function send(e) {
    e.preventDefault();
    var body = text.value.trim();
    if (!body) return;
    var m = { type: "message", body: body, client_id: Date.now().toString(36) + Math.random().toString(36).slice(2, 10) };
    outbox.push(m); saved.outbox = outbox; save();
    bubble({ from: "visitor", body: body, client_id: m.client_id }, true);
    text.value = "";
    if (socket && socket.readyState === 1) socket.send(JSON.stringify(m));
  }

  function open(on) {
    show(panel, on);
    launch.setAttribute("aria-expanded", on ? "true" : "false");
    if (on) (saved.token && !saved.ended ? text : ($(".begin").offsetParent ? $(".begin") : $(".close"))).focus();
    else launch.focus();
  }

  // Too many chats started just now: say so calmly, and offer the button again after.
  function later(d) {
    var begin = $(".begin");
    setStatus(d.message); begin.disabled = true;
    setTimeout(function () { begin.disabled = false; setStatus(""); }, 1000 * (d.retry_after || 60));
  }

  // Offline or online now, and when it opens again (the inbox's shifts decide); or open
  // but busy (as many chats waiting as the widget allows), with the other ways to get help.
  function availability(c) {
    var offline = !c.online && !saved.token, busy = c.online && c.busy && !saved.token;
    var more = busy ? c.busy_help : offline && c.next_opening ? "We open again " + c.next_opening + "." : "";
    $(".greeting").textContent = busy ? c.busy_message : offline ? c.offline_text || "Chat is closed right now." : c.greeting;
    $(".opens").textContent = more || "";
    show($(".opens"), !!more);
  }
  function offer(c) { availability(c); show($(".start"), !!c.online && !c.busy); }
  function fetchConfig() {
    return fetch(base + "/chat/" + encodeURIComponent(id) + "/config").then(function (r) {
      if (!r.ok) throw new Error("refused");
      return r.json();
    });
  }
  // A shift may have started or ended since the page loaded: look again on opening...
  function recheck() {
    if (!config || saved.token || !$(".again").hidden) return;
    fetchConfig().then(function (c) {
      config.online = c.online; config.next_opening = c.next_opening; config.busy = c.busy;
      offer(config);
    }).catch(function () { /* keep what is shown */ });
  }

  launch.addEventListener("click", function () { if (panel.hidden) recheck(); open(panel.hidden); });
  // ...and every 30 s while the panel stays open before a chat starts.
  setInterval(function () { if (!panel.hidden) recheck(); }, 30000);
  $(".close").addEventListener("click", function () { open(false); });
  panel.addEventListener("keydown", function (e) { if (e.key === "Escape") open(false); });
  $(".exit").addEventListener("click", function () {
    try { sessionStorage.removeItem(KEY); } catch (e) { /* ignore */ }
    location.replace((config && config.quick_exit_url) || "https://www.google.com/");
  });
  $(".start").addEventListener("submit", start);
  $(".survey").addEventListener("submit", sendSurvey);
  $(".survey").addEventListener("input", function () { visible($(".survey")); });
  $(".skip").addEventListener("click", function () { surveyDone(""); });
  $(".again").addEventListener("click", function () {
    saved = {}; save(); outbox = []; log.textContent = ""; shown = {}; lastId = 0;
    setStatus(""); show($(".again"), false); show($(".start"), true); $(".name").focus();
  });
  $(".compose").addEventListener("submit", send);
  text.addEventListener("keydown", function (e) { if (e.key === "Enter" && !e.shiftKey) send(e); });
  $(".end-form").addEventListener("submit", function (e) {
    e.preventDefault();
    if (socket && socket.readyState === 1) socket.send(JSON.stringify({ type: "end" }));
  });
  window.addEventListener("online", function () { if (!socket) { retry = 0; connect(); } });

  fetchConfig().then(function (c) {
    config = c;
    host.style.setProperty("--c", /^#[0-9a-fA-F]{6}$/.test(c.color) ? c.color : "#1f5fbf");
    $("#ol-title").textContent = c.name;
    availability(c);
    if (saved.token && !saved.ended) {
      show($(".compose"), true); show($(".end-form"), true); connect();
    } else if (saved.ended) {
      setStatus("This chat has ended.");
      afterEnd();
    } else {
      show($(".start"), !!c.online && !c.busy);
    }
    render(c.prechat, $(".pre"));
    document.body.appendChild(host);
  }).catch(function () { /* not allowed here, or unreachable: show nothing */ });
})();
