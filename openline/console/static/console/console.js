// The console's behaviour beyond plain htmx: the live socket (events carry ids only; what
// is shown is fetched over HTTP, where access is checked again), the workspace tabs,
// notifications, saved replies and keyboard shortcuts.
(function () {
  "use strict";

  var body = document.body;
  var userId = body && body.dataset.userId;
  var STORE = "openline.panes." + userId;

  // ---- helpers ---------------------------------------------------------------------
  function $(selector, root) { return (root || document).querySelector(selector); }
  function $all(selector, root) { return Array.prototype.slice.call((root || document).querySelectorAll(selector)); }
  function csrf() { var m = $('meta[name="csrf-token"]'); return m ? m.content : ""; }
  function debounce(fn, ms) {
    var timer = null;
    return function () { clearTimeout(timer); timer = setTimeout(fn, ms); };
  }
  function flag(name) { return body.dataset[name] === "1"; }

  // ---- idle sign-out ---------------------------------------------------------------------
  // Only what the person does keeps the session alive: a request made within a few seconds
  // of their own key press or click says so. Live refreshes and polls do not, so an
  // unattended console is signed out after the organization's idle timeout.
  var lastInput = 0;
  ["keydown", "pointerdown"].forEach(function (type) {
    document.addEventListener(type, function (e) { if (e.isTrusted) lastInput = Date.now(); }, true);
  });
  function activity(headers) {
    if (Date.now() - lastInput < 5000) headers["X-OpenLine-Activity"] = "1";
    return headers;
  }
  document.addEventListener("htmx:configRequest", function (e) { activity(e.detail.headers); });

  // ---- thread scrolling --------------------------------------------------------------
  var stick = {};
  function scrollerFor(el) { return el && el.closest ? el.closest(".thread-scroll") : null; }
  function toBottom(box) { if (box) box.scrollTop = box.scrollHeight; }
  function nearBottom(box) { return box.scrollHeight - box.scrollTop - box.clientHeight < 80; }
  document.addEventListener("htmx:beforeSwap", function (e) {
    var box = scrollerFor(e.detail.target);
    if (box) stick[box.id] = nearBottom(box);
  });
  document.addEventListener("htmx:afterSettle", function (e) {
    var box = scrollerFor(e.detail.target) || (e.detail.target && $(".thread-scroll", e.detail.target));
    if (box && stick[box.id] !== false) toBottom(box);
  });
  document.addEventListener("DOMContentLoaded", function () { $all(".thread-scroll").forEach(toBottom); });

  // ---- toasts, desktop notifications, sound --------------------------------------------
  function toast(text, kind, href) {
    var area = $("#toasts");
    if (!area) return;
    var item = document.createElement("p");
    item.className = "toast" + (kind ? " toast-" + kind : "");
    if (href) {
      var link = document.createElement("a");
      link.href = href;
      link.textContent = text;
      link.style.color = "inherit"; // the toast is dark; CSSOM styles pass the CSP
      item.appendChild(link);
    } else {
      item.textContent = text;
    }
    area.appendChild(item);
    setTimeout(function () { item.remove(); }, href ? 15000 : 6000);
  }
  var audio = null;
  function beep() {
    if (!flag("notifySound")) return;
    try {
      audio = audio || new (window.AudioContext || window.webkitAudioContext)();
      var osc = audio.createOscillator(), gain = audio.createGain();
      osc.frequency.value = 880; gain.gain.value = 0.08;
      osc.connect(gain); gain.connect(audio.destination);
      osc.start(); osc.stop(audio.currentTime + 0.18);
    } catch (err) { /* no audio device: the toast is enough */ }
  }
  function desktop(title, text, conversationId, onclick) {
    if (!flag("notifyDesktop") || !("Notification" in window)) return;
    // Only when the console is not what the person is looking at.
    if (Notification.permission !== "granted" || (!document.hidden && document.hasFocus())) return;
    var n = new Notification(title, { body: text, tag: "openline-" + conversationId });
    n.onclick = function () { window.focus(); (onclick || function () { openPane(conversationId); })(); n.close(); };
  }
  document.addEventListener("click", function (e) {
    var button = e.target.closest && e.target.closest("[data-enable-desktop]");
    if (button && "Notification" in window) Notification.requestPermission();
  });
  // Who and which inbox only: never what they wrote (shared screens).
  function notify(event, why) {
    fetch("/conversations/" + event.conversation_id + "/notice", { headers: { "HX-Request": "true" } })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (info) {
        if (!info) return;
        var text = why === "waiting" ? info.label + " is waiting · " + info.inbox
                                     : "New message from " + info.label + " · " + info.inbox;
        toast(text, why);
        desktop(why === "waiting" ? "Someone is waiting" : "New message", info.label + " · " + info.inbox, info.conversation_id);
        beep();
      });
  }

  // A patient cancelled by text: the member chosen in the reminder settings is told (the
  // event names the appointment's patient, never what they wrote).
  function appointmentCancelled(event) {
    var url = "/appointments/" + encodeURIComponent(event.appointment_id) + "/";
    toast(event.label, "cancelled", url); // "Ann Lee cancelled Tue Dec 10 at 3:00 PM (Main St)"
    desktop("Appointment cancelled", event.label, "appointment-" + event.appointment_id,
            function () { window.location.href = url; });
    beep();
  }

  // A counselor started the imminent-risk checklist: supervisors and admins are told at
  // once, whatever their other settings. The inbox only, never who or what they wrote.
  function rescueStarted(event) {
    var url = "/conversations/" + encodeURIComponent(event.conversation_id) + "/";
    fetch(url + "notice", { headers: { "HX-Request": "true" } })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (info) {
        var text = "Imminent risk: rescue checklist started" + (info ? " · " + info.inbox : "");
        toast(text, "error", url);
        desktop("Imminent risk", text, event.conversation_id);
        beep();
      });
  }

  // ---- the queue ---------------------------------------------------------------------
  // The filter form is the one source of what the list shows (view, page, inbox, search,
  // unread): every change and every live update reloads the list from it, one request at
  // a time, so an older answer never replaces a newer choice.
  function setQueue(name, value) {
    var input = $('#queue-filters [name="' + name + '"]');
    if (input) input.value = value;
  }
  function queueParams() {
    var form = $("#queue-filters");
    return new URLSearchParams(form ? new FormData(form) : undefined).toString();
  }
  // One refresh at a time per target; events that arrive meanwhile fold into one more
  // refresh after it, so the last state always lands and bursts cost two requests.
  // Each refresh has its own htmx source element: htmx keeps one request lock per source
  // (the body when none is named) and drops all but the last queued request, so a shared
  // lock would let a list refresh swallow a thread refresh. The source is a hidden element
  // that is never swapped out: htmx also drops requests whose source left the page.
  var locks = {};
  function lockFor(key) {
    if (!locks[key] || !locks[key].isConnected) {
      locks[key] = document.createElement("span");
      locks[key].hidden = true;
      locks[key].dataset.refreshLock = key;
      document.body.appendChild(locks[key]);
    }
    return locks[key];
  }
  var running = {}, again = {};
  function coalesced(key, run) {
    if (running[key]) { again[key] = true; return; }
    running[key] = true;
    Promise.resolve(run()).catch(function () {}).then(function () {
      running[key] = false;
      if (again[key]) { again[key] = false; coalesced(key, run); }
    });
  }
  function reloadQueue() {
    if (!$("#queue") || !window.htmx) return;
    coalesced("queue", function () {
      return htmx.ajax("GET", "/queue?" + queueParams(), { source: lockFor("queue"), target: "#queue", swap: "outerHTML" });
    });
  }
  var refreshQueue = debounce(reloadQueue, 60);
  document.body.addEventListener("ol:queue-changed", refreshQueue);
  document.addEventListener("click", function (e) {
    var view = e.target.closest && e.target.closest("#queue nav a[data-view]");
    var page = e.target.closest && e.target.closest("#queue .pagination a[data-page]");
    if (!view && !page) return;
    e.preventDefault();
    if (view) { setQueue("view", view.dataset.view); setQueue("page", "1"); }
    if (page) setQueue("page", page.dataset.page);
    reloadQueue();
  });
  var searchChanged = debounce(reloadQueue, 250);
  document.addEventListener("input", function (e) {
    if (e.target.id === "id_q") { setQueue("page", "1"); searchChanged(); }
  });
  document.addEventListener("change", function (e) {
    if (e.target.form && e.target.form.id === "queue-filters" && e.target.id !== "id_q") {
      setQueue("page", "1"); reloadQueue();
    }
  });
  document.addEventListener("submit", function (e) {
    if (e.target.id === "queue-filters") { e.preventDefault(); setQueue("page", "1"); reloadQueue(); }
  });

  // ---- workspace tabs ------------------------------------------------------------------
  function workspace() { return $("#pane-area"); }
  function savedPanes() {
    try { return JSON.parse(localStorage.getItem(STORE) || "[]"); } catch (err) { return []; }
  }
  function savePanes() {
    var ids = $all(".pane-tabs [data-tab]").map(function (t) { return t.dataset.tab; });
    try { localStorage.setItem(STORE, JSON.stringify(ids)); } catch (err) { /* private mode */ }
  }
  function tabFor(id) { return $('.pane-tabs [data-tab="' + id + '"]'); }
  function activate(id) {
    $all(".pane-tabs [data-tab]").forEach(function (t) {
      var on = t.dataset.tab === String(id);
      t.setAttribute("aria-selected", on ? "true" : "false");
      t.tabIndex = on ? 0 : -1;
    });
    $all("#pane-area > .pane-slot").forEach(function (slot) { slot.hidden = slot.dataset.slot !== String(id); });
    var empty = $("#pane-empty");
    if (empty) empty.hidden = !!id;
    body.classList.toggle("pane-open", !!id);
    var slot = $('#pane-area > [data-slot="' + id + '"]');
    if (slot) toBottom($(".thread-scroll", slot));
  }
  function activeId() {
    var t = $('.pane-tabs [aria-selected="true"]');
    return t ? t.dataset.tab : null;
  }
  function closePane(id) {
    var tab = tabFor(id), slot = $('#pane-area > [data-slot="' + id + '"]');
    if (tab) tab.parentNode.remove();
    if (slot) slot.remove();
    var next = $(".pane-tabs [data-tab]");
    activate(next ? next.dataset.tab : null);
    savePanes();
  }
  function openPane(id, html, quiet) {
    id = String(id);
    if (!workspace()) { window.location = "/conversations/" + id + "/"; return; }
    if (!tabFor(id)) {
      var li = document.createElement("span");
      li.className = "pane-tab";
      li.innerHTML = '<button type="button" role="tab" data-tab="' + id + '" aria-controls="slot-' + id + '">…</button>' +
                     '<button type="button" class="tab-close" data-close-tab="' + id + '" aria-label="Close tab">×</button>';
      $("#pane-tabs").appendChild(li);
      var slot = document.createElement("div");
      slot.className = "pane-slot"; slot.dataset.slot = id; slot.id = "slot-" + id; slot.setAttribute("role", "tabpanel");
      workspace().appendChild(slot);
      // A tab restored after a reload is not a new read: it stays unread if it was.
      if (html) { fillSlot(slot, html); } else { loadPane(id, quiet ? "restore" : false); }
      savePanes();
    }
    if (!quiet) activate(id);
  }
  function fillSlot(slot, html) {
    slot.innerHTML = html;
    if (window.htmx) htmx.process(slot);
    var pane = $(".pane", slot), tab = tabFor(slot.dataset.slot);
    if (pane && tab) tab.textContent = pane.dataset.label;
    toBottom($(".thread-scroll", slot));
  }
  function loadPane(id, refresh) {
    var slot = $('#pane-area > [data-slot="' + id + '"]');
    if (!slot) return;
    var visible = refresh === true && !slot.hidden && !document.hidden;
    var url = "/conversations/" + id + "/pane" + (refresh ? "?refresh=1" + (visible ? "&read=1" : "") : "");
    return fetch(url, { headers: activity({ "HX-Request": "true" }) }).then(function (r) {
      if (r.status === 403 || r.status === 404) { closePane(id); if (refresh) toast("That conversation moved out of your views."); return null; }
      if (r.headers.get("HX-Trigger") === "ol:queue-changed") refreshQueue();
      return r.text();
    }).then(function (html) {
      if (html == null) return;
      var draft = $(".reply-body", slot), text = draft ? draft.value : "";
      var focused = draft && document.activeElement === draft;
      fillSlot(slot, html);
      var fresh = $(".reply-body", slot);
      if (fresh && text && !fresh.disabled) { fresh.value = text; htmx.trigger(fresh, "ol:count"); }
      if (fresh && focused) fresh.focus();
    });
  }
  // A conversation's pane and thread refreshes share one queue, so an older answer can
  // never land after a newer one; a whole-pane refresh covers a pending thread refresh.
  // A catch-up refresh (quiet) does not count as reading: after a reload, the socket's
  // first open must not undo a "mark unread".
  var wantPane = {}, quietly = {};
  function refreshConversation(id, whole, quiet) {
    if (whole) wantPane[id] = true;
    if (quiet) quietly[id] = true;
    coalesced("conversation-" + id, function () {
      var pane = wantPane[id] && tabFor(id), noRead = quietly[id];
      wantPane[id] = false; quietly[id] = false;
      if (pane) return loadPane(id, noRead ? "restore" : true);
      var thread = $("#thread-" + id);
      if (!thread || !window.htmx) return null;
      var slot = thread.closest(".pane-slot");
      var read = !noRead && (!slot || !slot.hidden) && !document.hidden ? "&read=1" : "";
      return htmx.ajax("GET", "/conversations/" + id + "/thread?v=" + thread.dataset.version + "&s=" + thread.dataset.state + read,
                       { source: lockFor("conversation-" + id), target: thread, swap: "outerHTML" });
    });
  }
  function refreshPane(id) { refreshConversation(id, true); }
  function refreshThread(id) { refreshConversation(id, false); }
  document.body.addEventListener("ol:pane-gone", function (e) {
    var pane = e.target.closest && e.target.closest(".pane");
    if (!workspace()) { window.location = "/"; return; }
    if (pane) closePane(pane.dataset.conversationId);
    toast("Done. The conversation left your views.");
    refreshQueue();
  });

  document.addEventListener("click", function (e) {
    var link = e.target.closest && e.target.closest("[data-open-conversation]");
    if (link && workspace() && !e.ctrlKey && !e.metaKey && !e.shiftKey) {
      e.preventDefault();
      openPane(link.dataset.openConversation);
      return;
    }
    var tab = e.target.closest && e.target.closest("[data-tab]");
    if (tab) { activate(tab.dataset.tab); return; }
    var close = e.target.closest && e.target.closest("[data-close-tab]");
    if (close) { closePane(close.dataset.closeTab); return; }
    if (e.target.closest && e.target.closest("[data-pane-back]") && workspace()) { activate(null); }
  });

  // Mark unread: by fetch, because a live list refresh may replace the button meanwhile.
  document.addEventListener("submit", function (e) {
    var form = e.target;
    if (!form.dataset || !form.dataset.markUnread) return;
    e.preventDefault();
    fetch(form.action, { method: "POST", headers: { "HX-Request": "true", "X-CSRFToken": csrf() } })
      .then(function (r) { if (r.ok) toast("Marked unread."); refreshQueue(); });
  });

  // Assume from the list: exactly one of several people wins; the others are told who.
  // Take next is the same, for whichever conversation the server chose (its id comes back
  // in a header; none when nobody is waiting).
  document.addEventListener("submit", function (e) {
    var form = e.target;
    var next = form.dataset && form.dataset.takeNext !== undefined;
    if (!form.dataset || !(form.dataset.assume || next) || !workspace()) return;
    e.preventDefault();
    fetch(form.action, { method: "POST", body: new FormData(form), headers: { "HX-Request": "true", "X-CSRFToken": csrf() } })
      .then(function (r) { return r.text().then(function (html) { return { ok: r.ok, status: r.status, html: html, id: r.headers.get("X-Conversation-Id") }; }); })
      .then(function (res) {
        var id = next ? res.id : form.dataset.assume;
        if (res.ok && next && !id) {
          var note = document.createElement("div"); note.innerHTML = res.html;
          toast(note.textContent.trim() || "Nobody is waiting right now.");
        } else if (res.ok) { openPane(id, res.html); } else {
          var box = document.createElement("div"); box.innerHTML = res.html;
          var err = $(".form-error", box);
          toast(err ? err.textContent : "Could not assume it.", "error");
        }
        refreshQueue();
      });
  });

  // ---- the live socket ------------------------------------------------------------------
  var socket = null, retry = 0, everConnected = false;
  function handle(event) {
    var id = event.conversation_id;
    var kind = event.type;
    if (kind.indexOf("conversation.") === 0 || kind === "message.created") refreshQueue();
    if (id && tabFor(id)) {
      if (kind === "message.created" || kind === "message.status") refreshThread(id);
      else refreshPane(id);
    } else if (id && $("#pane-" + id) && !workspace()) {
      // the conversation's own page
      if (kind === "message.created" || kind === "message.status") refreshThread(id);
      else if (kind.indexOf("conversation.") === 0) refreshThread(id);
    }
    if (kind === "consent.changed" || kind === "contact.updated") {
      $all(".pane").forEach(function (pane) {
        if (pane.dataset.phone === event.phone || pane.dataset.contactId === String(event.contact_id)) {
          if (workspace()) refreshPane(pane.dataset.conversationId);
          else refreshThread(pane.dataset.conversationId);
        }
      });
    }
    if (kind === "inbox.availability") inboxState(event.number_id, event.online);
    if (kind === "appointment.cancelled" && event.notify_user_id != null && String(event.notify_user_id) === userId) appointmentCancelled(event);
    if (kind === "conversation.rescue" && event.action === "start" && flag("canManage") && String(event.user_id) !== userId) rescueStarted(event);
    if (kind === "broadcast.progress") body.dispatchEvent(new CustomEvent("ol:broadcast-progress", { detail: event }));
    // A conversation held for its survey reaches the queue when released: new to the queue.
    if ((kind === "conversation.created" || kind === "conversation.released") && event.status === "waiting" && flag("notifyNew")) notify(event, "waiting");
    if (kind === "conversation.assigned" && event.status === "waiting" && event.previous_assigned_to_id && flag("notifyNew")) notify(event, "waiting");
    if (kind === "message.created" && event.direction === "in" && String(event.assigned_to_id) === userId && flag("notifyMessage")) notify(event, "message");
  }
  // An inbox went online or offline (a shift started or ended, or its switch moved).
  function inboxState(numberId, online) {
    $all('[data-inbox-badge="' + numberId + '"]').forEach(function (badge) {
      var was = badge.dataset.online === "1";
      badge.dataset.online = online ? "1" : "0";
      badge.classList.toggle("badge-active", online);
      badge.classList.toggle("badge-closed", !online);
      $(".inbox-state-word", badge).textContent = online ? "online" : "offline";
      if (was !== online) toast(badge.dataset.label + " is " + (online ? "online" : "offline") + " now.");
    });
    var states = $("#inbox-states"), focus = document.activeElement;
    if (states && window.htmx && !(focus && focus.closest && focus.closest("#inbox-states"))) {
      htmx.ajax("GET", states.getAttribute("hx-get"), { target: states, swap: "innerHTML" });
    }
  }
  function catchUp() {
    // Whatever happened while the socket was down: reload what is on screen. Lists and
    // threads are re-rendered from the server, so nothing shows twice.
    refreshQueue();
    $all(".pane").forEach(function (pane) {
      refreshConversation(pane.dataset.conversationId, !!workspace(), true);
    });
  }
  function connect() {
    if (!body.dataset.live || !("WebSocket" in window)) return;
    var scheme = location.protocol === "https:" ? "wss://" : "ws://";
    socket = new WebSocket(scheme + location.host + body.dataset.live);
    socket.onopen = function () {
      var status = $("#live-status"); if (status) status.hidden = true;
      body.dataset.liveState = "open";
      // Also on the first open: whatever happened between rendering the page and now.
      catchUp();
      everConnected = true; retry = 0;
    };
    socket.onmessage = function (m) {
      var frame; try { frame = JSON.parse(m.data); } catch (err) { return; }
      (frame.events || []).forEach(handle);
    };
    socket.onclose = function (e) {
      body.dataset.liveState = "closed";
      if (e.code === 4401) { signedOut(); return; }
      if (e.code === 4403) return; // removed from the organization: do not hammer
      var status = $("#live-status"); if (status && everConnected) status.hidden = false;
      if (paused) return;
      retry = Math.min(retry + 1, 6);
      setTimeout(function () { if (!paused) connect(); }, 250 * Math.pow(2, retry - 1) + Math.random() * 250);
    };
  }
  setInterval(function () { if (socket && socket.readyState === 1) socket.send("ping"); }, 25000);
  // The sign-in ended (idle timeout, 12 hours, signed out elsewhere): ask the server, which
  // answers a signed-out request with where to go, so nothing stays on screen.
  function signedOut() {
    fetch(location.href, { headers: { "HX-Request": "true", "HX-Current-URL": location.href } }).then(function (r) {
      var go = r.headers.get("HX-Redirect");
      if (go) window.location = go;
    });
  }
  // Drop the connection and hold off reconnecting until resumed: how tests (and anyone
  // curious) see the catch-up after a network blip.
  var paused = false;
  window.OpenLine = {
    dropConnection: function (hold) { paused = hold !== false; if (socket) socket.close(); },
    resumeConnection: function () { paused = false; connect(); }
  };

  // One click replaces a character that forces UCS-2 with the GSM-7 look-alike, everywhere
  // in the draft the counter describes.
  document.addEventListener("click", function (e) {
    var fix = e.target.closest && e.target.closest(".seg-fix");
    if (!fix) return;
    var counter = fix.closest(".segment-counter");
    var area = counter && document.querySelector('textarea[aria-describedby~="' + counter.id + '"]');
    if (!area) return;
    area.value = area.value.split(fix.dataset.char).join(fix.dataset.with);
    area.focus();
    area.dispatchEvent(new Event("input", { bubbles: true }));
    if (window.htmx) htmx.trigger(area, "ol:count");
  });

  // ---- saved replies and sending ----------------------------------------------------------
  function insertText(area, text, replaceFrom) {
    var start = replaceFrom != null ? replaceFrom : area.selectionStart;
    area.value = area.value.slice(0, start) + text + area.value.slice(area.selectionEnd);
    area.selectionStart = area.selectionEnd = start + text.length;
    area.focus();
    if (window.htmx) htmx.trigger(area, "ol:count");
  }
  document.addEventListener("change", function (e) {
    var select = e.target;
    if (!select.classList || !select.classList.contains("saved-replies") || !select.value) return;
    var area = document.getElementById(select.dataset.insertInto);
    if (area) insertText(area, select.value);
    select.value = "";
  });
  document.addEventListener("keydown", function (e) {
    var target = e.target;
    if (target && target.hasAttribute && target.hasAttribute("data-send-shortcut")) {
      if (e.key === "Enter" && (e.ctrlKey || e.metaKey) && target.form) {
        e.preventDefault(); target.form.requestSubmit(); return;
      }
      if (e.key === "Tab" && !e.shiftKey) {
        // "/shortcut" before the caret becomes the saved reply
        var before = target.value.slice(0, target.selectionStart);
        var m = before.match(/(^|\s)\/([\w-]+)$/);
        var list = m && document.getElementById(target.dataset.savedReplies);
        if (list) {
          var option = $all("option", list).filter(function (o) { return o.dataset.shortcut === m[2]; })[0];
          if (option) { e.preventDefault(); insertText(target, option.value, target.selectionStart - m[2].length - 1); }
        }
      }
      return;
    }
    var typing = target && (target.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName));
    if (e.altKey && /^[1-9]$/.test(e.key)) {
      var tabs = $all(".pane-tabs [data-tab]"), tab = tabs[Number(e.key) - 1];
      if (tab) { e.preventDefault(); activate(tab.dataset.tab); tab.focus(); }
      return;
    }
    if (typing || e.ctrlKey || e.metaKey || e.altKey) return;
    if (e.key === "/" && $("#id_q")) { e.preventDefault(); $("#id_q").focus(); return; }
    if (e.key === "j" || e.key === "k") {
      var links = $all("#queue [data-open-conversation]");
      if (!links.length) return;
      var at = links.indexOf(document.activeElement);
      var next = e.key === "j" ? Math.min(at + 1, links.length - 1) : Math.max(at - 1, 0);
      links[at === -1 ? 0 : next].focus();
      e.preventDefault();
    }
  });

  // Typing in a web chat's reply box: the visitor sees "typing…" (at most every 3 s).
  var typingSent = {};
  document.addEventListener("input", function (e) {
    var pane = e.target.closest && e.target.classList.contains("reply-body") && e.target.closest(".pane");
    if (!pane || pane.dataset.channel !== "chat") return;
    var id = pane.dataset.conversationId, now = Date.now();
    if (typingSent[id] && now - typingSent[id] < 3000) return;
    typingSent[id] = now;
    fetch("/conversations/" + id + "/typing", { method: "POST", headers: { "X-CSRFToken": csrf() } });
  });

  // The shifts page's inbox states, every 30 s unless focus is inside them (here rather than
  // an hx-trigger filter: the Content-Security-Policy allows no eval).
  setInterval(function () {
    var states = $("#inbox-states"), focus = document.activeElement;
    if (states && window.htmx && !(focus && focus.closest && focus.closest("#inbox-states"))) {
      htmx.trigger(states, "ol:inbox-poll");
    }
  }, 30000);

  // A slow safety net besides the socket, through the same per-conversation queue.
  setInterval(function () {
    $all(".thread[id^='thread-']").forEach(function (t) { refreshThread(t.id.slice(7)); });
  }, 30000);

  // Your own reply always shows, and the box is ready for the next one.
  document.addEventListener("htmx:afterRequest", function (e) {
    var form = e.detail.elt;
    if (form && form.closest && form.tagName === "FORM" && form.closest(".reply-box") && e.detail.successful) {
      var pane = form.closest(".pane");
      // The answer carried the thread; one more queued refresh makes sure nothing that was
      // already in flight lands on top of it.
      if (pane) refreshThread(pane.dataset.conversationId);
      if (pane) stick["thread-scroll-" + pane.dataset.conversationId] = true;
      setTimeout(function () {
        var area = pane && $(".reply-body", pane);
        if (area) area.focus();
      }, 0);
    }
  });

  document.addEventListener("DOMContentLoaded", function () {
    if (workspace()) {
      savedPanes().forEach(function (id) { openPane(id, null, true); });
      var first = $(".pane-tabs [data-tab]");
      activate(first ? first.dataset.tab : null);
    }
    connect();
  });
})();
