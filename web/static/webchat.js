// complaintdesk web chat: plain JS, no build step. The dialog itself lives on the server;
// this page only shows messages, sends what the person types, presses or uploads, and keeps
// a random session id, a copy of the transcript and the complaints filed or found here
// ("my complaints": number and access code) in localStorage. Page texts come from the server
// in the page's language (the #texts JSON block).
(function () {
  "use strict";

  var SESSION_KEY = "complaintdesk.session";
  var TRANSCRIPT_KEY = "complaintdesk.transcript";
  var MINE_KEY = "complaintdesk.mine";
  var DRAFT_KEY = "complaintdesk.drafting";
  var TRANSCRIPT_MAX = 200;
  var POLL_MS = 20000; // the fallback when the event stream is down
  var NAV_SECONDARY = { back: true, cancel: true, skip: true };
  var PRIMARY = { confirm: true, done: true };
  var EDIT_PREFIX = "edit:";

  var T = {};
  try { T = JSON.parse(document.getElementById("texts").textContent || "{}"); } catch (e) { }
  function t(key, fallback) { return T[key] || fallback || key; }

  var log = document.getElementById("log");
  var form = document.getElementById("composer");
  var input = document.getElementById("text");
  var sendButton = document.getElementById("send");
  var fileInput = document.getElementById("file");
  var restartButton = document.getElementById("restart");
  var mineButton = document.getElementById("mine");
  var confirmDialog = document.getElementById("confirm");
  var minePanel = document.getElementById("mine-panel");
  var busy = false;
  var streamOpen = false;
  // The choices the dialog is waiting on: offered again when a message did not get through.
  var lastChoices = [];
  var lastAsk = null;

  function randomId() {
    if (window.crypto && typeof window.crypto.randomUUID === "function") {
      return window.crypto.randomUUID();
    }
    // randomUUID needs a secure context; plain http on a LAN address still has this.
    var bytes = new Uint8Array(16);
    window.crypto.getRandomValues(bytes);
    return Array.prototype.map.call(bytes, function (b) {
      return ("0" + b.toString(16)).slice(-2);
    }).join("");
  }

  function storageGet(key) {
    try { return window.localStorage.getItem(key); } catch (e) { return null; }
  }
  function storageSet(key, value) {
    try { window.localStorage.setItem(key, value); } catch (e) { /* private mode: no memory */ }
  }
  function storageJson(key, fallback) {
    try { return JSON.parse(storageGet(key) || "null") || fallback; } catch (e) { return fallback; }
  }

  var sessionId = storageGet(SESSION_KEY);
  if (!sessionId || !/^[A-Za-z0-9_-]{8,64}$/.test(sessionId)) {
    sessionId = randomId();
    storageSet(SESSION_KEY, sessionId);
  }
  var transcript = storageJson(TRANSCRIPT_KEY, []);
  var drafting = storageGet(DRAFT_KEY) === "1";

  function remember(entry) {
    transcript.push(entry);
    if (transcript.length > TRANSCRIPT_MAX) transcript = transcript.slice(-TRANSCRIPT_MAX);
    storageSet(TRANSCRIPT_KEY, JSON.stringify(transcript));
  }

  function setDrafting(value) {
    drafting = !!value;
    storageSet(DRAFT_KEY, drafting ? "1" : "0");
  }

  // ------------------------------------------------------------------ my complaints (local)

  function mineLocal() { return storageJson(MINE_KEY, []); }
  function rememberComplaint(number, code) {
    var list = mineLocal().filter(function (item) { return item.number !== number; });
    list.unshift({ number: number, code: code || null });
    storageSet(MINE_KEY, JSON.stringify(list.slice(0, 50)));
  }
  function codeOf(number) {
    var found = mineLocal().filter(function (item) { return item.number === number; })[0];
    return found ? found.code : null;
  }
  function progressLink(number) {
    var code = codeOf(number);
    return "/c/" + encodeURIComponent(number) + "?k=" + (code ? encodeURIComponent(code) : "none");
  }

  // ------------------------------------------------------------------ rendering text

  // Numbers, dates, times, phone numbers and codes are kept whole (never broken mid-token);
  // links become links. Everything goes in with textContent: the text may contain anything.
  // A complaint number, by the server's rule (models/numbering.py: every shipped format).
  var NUMBER = document.body.dataset.number || "(?!)";  // none given: none match
  var TOKEN = new RegExp([
    "(?:https?:\\/\\/[^\\s，。]+|\\/c\\/" + NUMBER + "\\?k=[A-Za-z0-9-]+)",
    "\\d{4}年\\d{1,2}月\\d{1,2}日(?:\\s?\\d{1,2}:\\d{2})?",
    "\\d{1,2}月\\d{1,2}日(?:\\s?\\d{1,2}:\\d{2})?",
    "\\d{4}-\\d{2}-\\d{2}(?:\\s\\d{2}:\\d{2})?",
    "[A-Z][a-z]{2} \\d{1,2}, \\d{4}(?:, \\d{1,2}:\\d{2})?",
    NUMBER,
    "[A-Z0-9]{4}-[A-Z0-9]{4}",
    "\\+?\\d[\\d\\- ]{5,}\\d",
    "\\d{1,2}:\\d{2}",
  ].join("|"), "g");

  function appendRich(parent, text) {
    var at = 0;
    var match;
    TOKEN.lastIndex = 0;
    while ((match = TOKEN.exec(text)) !== null) {
      if (match.index > at) parent.appendChild(document.createTextNode(text.slice(at, match.index)));
      var token = match[0];
      var node;
      if (/^(https?:\/\/|\/c\/)/.test(token)) {
        node = document.createElement("a");
        node.href = token;
        node.target = "_blank";
        node.rel = "noopener";
      } else {
        node = document.createElement("span");
      }
      node.className = "num";
      node.textContent = token;
      parent.appendChild(node);
      at = match.index + token.length;
    }
    if (at < text.length) parent.appendChild(document.createTextNode(text.slice(at)));
  }

  function scrollDown() { log.scrollTop = log.scrollHeight; }

  function disableOldChoices() {
    // Upload and location buttons belong to the question that asked: gone once it is answered.
    var actions = log.querySelectorAll(".choices button.upload, .choices button.locate");
    for (var k = 0; k < actions.length; k++) actions[k].parentElement.removeChild(actions[k]);
    var buttons = log.querySelectorAll(".choices button");
    for (var i = 0; i < buttons.length; i++) buttons[i].disabled = true;
    var menus = log.querySelectorAll(".edit-menu");
    for (var j = 0; j < menus.length; j++) menus[j].hidden = true;
  }

  var RECEIPT = new RegExp("\\/c\\/(" + NUMBER + ")\\?k=([A-Za-z0-9]{8}|none)");

  function receiptCard(number, code) {
    var card = document.createElement("div");
    card.className = "receipt";
    var label = document.createElement("div");
    label.className = "receipt-label";
    label.textContent = t("number");
    var big = document.createElement("div");
    big.className = "receipt-number num";
    big.textContent = number;
    var row = document.createElement("div");
    row.className = "receipt-actions";
    var copy = document.createElement("button");
    copy.type = "button";
    copy.className = "secondary copy";
    copy.textContent = t("copy");
    copy.addEventListener("click", function () {
      copyText(number).then(function () { copy.textContent = t("copied"); });
    });
    var view = document.createElement("a");
    view.className = "primary button-link";
    view.href = "/c/" + number + "?k=" + (code || "none");
    view.target = "_blank";
    view.rel = "noopener";
    view.textContent = t("view_progress");
    row.appendChild(copy);
    row.appendChild(view);
    card.appendChild(label);
    card.appendChild(big);
    card.appendChild(row);
    if (code && code !== "none") {
      var qr = document.createElement("img");
      qr.className = "receipt-qr";
      qr.alt = t("scan");
      qr.src = "/c/" + number + "/qr.svg?k=" + code;
      var caption = document.createElement("div");
      caption.className = "muted";
      caption.textContent = t("scan");
      card.appendChild(qr);
      card.appendChild(caption);
    }
    return card;
  }

  function copyText(text) {
    if (navigator.clipboard && navigator.clipboard.writeText) {
      return navigator.clipboard.writeText(text).catch(function () { legacyCopy(text); });
    }
    legacyCopy(text);
    return Promise.resolve();
  }
  function legacyCopy(text) {
    var area = document.createElement("textarea");
    area.value = text;
    document.body.appendChild(area);
    area.select();
    try { document.execCommand("copy"); } catch (e) { }
    document.body.removeChild(area);
  }

  function bubble(who, text, imageUrl) {
    var div = document.createElement("div");
    div.className = "msg " + who;
    if (imageUrl) {
      var img = document.createElement("img");
      img.src = imageUrl;
      img.alt = text;
      div.appendChild(img);
    } else if (who === "bot") {
      appendRich(div, text);
      var receipt = RECEIPT.exec(text);
      if (receipt) {
        var code = receipt[2] === "none" ? null : receipt[2];
        div.appendChild(receiptCard(receipt[1], code));
      }
    } else {
      div.textContent = text;
    }
    log.appendChild(div);
    return div;
  }

  function choiceButton(choice, active, kind) {
    var button = document.createElement("button");
    button.type = "button";
    button.textContent = choice.label;
    button.className = kind;
    button.dataset.choice = choice.id;
    button.disabled = !active;
    button.addEventListener("click", function () {
      if (busy) return;
      if (choice.id === "cancel" && drafting) {
        ask(t("confirm_cancel"), t("yes_cancel"), function () { choose(choice); });
        return;
      }
      choose(choice);
    });
    return button;
  }

  function choose(choice) {
    say(choice.label);
    post("/webchat/api/message", { choice: choice.id });
  }

  function showChoices(choices, active, askKind) {
    var wantsPhoto = active && askKind === "photo";
    var wantsPlace = active && askKind === "location" && !!navigator.geolocation;
    if ((!choices || !choices.length) && !wantsPhoto && !wantsPlace) return;
    var row = document.createElement("div");
    row.className = "choices";
    var edits = [];
    var tail = [];
    if (wantsPhoto) row.appendChild(actionButton(t("upload_photo"), "primary upload",
      function () { fileInput.click(); }));
    if (wantsPlace) row.appendChild(actionButton(t("send_location"), "primary locate",
      sendLocation));
    (choices || []).forEach(function (choice) {
      if (choice.id.indexOf(EDIT_PREFIX) === 0) { edits.push(choice); return; }
      var kind = NAV_SECONDARY[choice.id] ? "secondary" : PRIMARY[choice.id] ? "primary" : "option";
      var button = choiceButton(choice, active, kind);
      if (kind === "secondary") tail.push(button); else row.appendChild(button);
    });
    if (edits.length) {
      // The summary's many "change X" answers as one menu.
      var menu = document.createElement("div");
      menu.className = "edit-menu";
      menu.hidden = true;
      edits.forEach(function (choice) { menu.appendChild(choiceButton(choice, active, "option")); });
      var toggle = actionButton(t("edit_menu"), "option edit-toggle", function () {
        menu.hidden = !menu.hidden;
        toggle.setAttribute("aria-expanded", String(!menu.hidden));
        if (!menu.hidden) menu.scrollIntoView({ block: "nearest" });
      });
      toggle.setAttribute("aria-expanded", "false");
      toggle.disabled = !active;
      row.appendChild(toggle);
      tail.forEach(function (button) { row.appendChild(button); });
      log.appendChild(row);
      log.appendChild(menu);
      return;
    }
    tail.forEach(function (button) { row.appendChild(button); });
    log.appendChild(row);
  }

  function actionButton(label, kind, onClick) {
    var button = document.createElement("button");
    button.type = "button";
    button.className = kind;
    button.textContent = label;
    button.addEventListener("click", function () { if (!busy) onClick(); });
    return button;
  }

  function showReplies(messages) {
    disableOldChoices();
    messages.forEach(function (message, index) {
      var last = index === messages.length - 1;
      bubble("bot", message.text);
      showChoices(message.choices, last, last ? message.ask : null);
      remember({
        who: "bot", text: message.text, choices: last ? message.choices : [],
        ask: last ? message.ask : null,
      });
      var receipt = RECEIPT.exec(message.text);
      if (receipt) rememberComplaint(receipt[1], receipt[2] === "none" ? null : receipt[2]);
    });
    if (messages.length) {
      lastChoices = messages[messages.length - 1].choices || [];
      lastAsk = messages[messages.length - 1].ask || null;
    }
    scrollDown();
  }

  // Notifications (e.g. "your complaint was accepted") arrive between dialog messages: they
  // must not take away the choices the dialog is waiting on.
  function showNotices(messages) {
    messages.forEach(function (message) {
      bubble("bot", message.text);
      showChoices(message.choices, true, null);
      remember({ who: "bot", text: message.text, choices: message.choices || [], notice: true });
    });
    if (messages.length) scrollDown();
  }

  function poll() {
    if (streamOpen || busy || document.visibilityState === "hidden") return;
    fetch("/webchat/api/updates", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ session_id: sessionId }),
    }).then(function (response) {
      return response.ok ? response.json() : { messages: [] };
    }).then(function (body) {
      if (body.messages && body.messages.length) showNotices(body.messages);
    }).catch(function () { /* offline for now: the next poll asks again */ });
  }

  function listen() {
    if (!window.EventSource) return;
    var stream = new EventSource("/webchat/api/events?session_id=" + encodeURIComponent(sessionId));
    stream.onopen = function () { streamOpen = true; };
    stream.onerror = function () { streamOpen = false; /* the browser reconnects by itself */ };
    stream.onmessage = function (event) {
      try {
        var body = JSON.parse(event.data);
        if (body.messages && body.messages.length) showNotices(body.messages);
      } catch (e) { /* a malformed event: ignore it */ }
    };
  }

  function note(text) {
    bubble("note", text);
    scrollDown();
  }

  // After a refused or failed request the dialog still waits where it was.
  function failed(text) {
    note(text);
    showChoices(lastChoices, true, lastAsk);
    scrollDown();
  }

  function say(text, imageUrl) {
    disableOldChoices();
    bubble("me", text, imageUrl);
    remember({ who: "me", text: text });
    scrollDown();
  }

  function setBusy(value) {
    busy = value;
    sendButton.disabled = value;
  }

  function handleResponse(response) {
    return response.json().catch(function () { return {}; }).then(function (body) {
      var answered = body.messages && body.messages.length;
      if (typeof body.drafting === "boolean") setDrafting(body.drafting);
      if (answered) showReplies(body.messages);
      if (!response.ok && body.detail) failed("⚠ " + body.detail);
      else if (!response.ok && !answered) failed("⚠ " + t("failed"));
    });
  }

  function post(path, fields) {
    var body = { session_id: sessionId, message_id: randomId() };
    Object.keys(fields).forEach(function (key) { body[key] = fields[key]; });
    setBusy(true);
    return fetch(path, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    }).then(handleResponse).catch(function () {
      failed("⚠ " + t("network_error"));
    }).then(function () { setBusy(false); });
  }

  function upload(file) {
    var data = new FormData();
    data.append("session_id", sessionId);
    data.append("message_id", randomId());
    data.append("file", file, file.name);
    var isImage = /^image\//.test(file.type);
    say("📎 " + file.name, isImage ? URL.createObjectURL(file) : null);
    setBusy(true);
    return fetch("/webchat/api/upload", { method: "POST", body: data })
      .then(handleResponse)
      .catch(function () { failed("⚠ " + t("upload_failed")); })
      .then(function () { setBusy(false); });
  }

  function sendLocation() {
    navigator.geolocation.getCurrentPosition(function (position) {
      say("📍 " + position.coords.latitude.toFixed(5) + ", " +
        position.coords.longitude.toFixed(5));
      post("/webchat/api/message", {
        location: { latitude: position.coords.latitude, longitude: position.coords.longitude },
      });
    }, function () { note("⚠ " + t("no_location")); });
  }

  // A question with two answers in a <dialog>: big buttons, the safe one first.
  function ask(text, yesLabel, onYes) {
    document.getElementById("confirm-text").textContent = text;
    document.getElementById("confirm-yes").textContent = yesLabel;
    confirmDialog.returnValue = "";
    confirmDialog.onclose = function () {
      if (confirmDialog.returnValue === "yes") onYes();
    };
    confirmDialog.showModal();
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var text = input.value;
    if (busy || !text.trim()) return;
    input.value = "";
    resize();
    say(text);
    post("/webchat/api/message", { text: text });
  });

  input.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      form.requestSubmit ? form.requestSubmit() : form.dispatchEvent(new Event("submit"));
    }
  });

  function resize() {
    input.style.height = "auto";
    input.style.height = Math.min(input.scrollHeight, 120) + "px";
  }
  input.addEventListener("input", resize);

  fileInput.addEventListener("change", function () {
    var file = fileInput.files && fileInput.files[0];
    fileInput.value = "";
    if (file && !busy) upload(file);
  });

  // New chat: asks first; a draft is discarded on the server, filed complaints stay listed
  // under "my complaints" (this browser keeps its session id, so they stay its own).
  restartButton.addEventListener("click", function () {
    if (busy) return;
    ask(t("confirm_new"), t("yes_new"), function () {
      transcript = [];
      lastChoices = [];
      lastAsk = null;
      storageSet(TRANSCRIPT_KEY, "[]");
      log.textContent = "";
      if (drafting) post("/webchat/api/message", { text: "/cancel" });
      else post("/webchat/api/hello", {});
    });
  });

  // ------------------------------------------------------------------ my complaints panel

  var mineList = document.getElementById("mine-list");
  var mineEmpty = document.getElementById("mine-empty");
  var findForm = document.getElementById("find-form");
  var findProblem = document.getElementById("find-problem");

  function renderMine(complaints) {
    mineList.textContent = "";
    var seen = {};
    complaints.forEach(function (item) { seen[item.number] = true; });
    mineLocal().forEach(function (item) {
      if (!seen[item.number]) complaints.push({ number: item.number, stages: [], state_label: "" });
    });
    mineEmpty.hidden = complaints.length > 0;
    complaints.forEach(function (item) {
      var li = document.createElement("li");
      li.className = "mine-item";
      var head = document.createElement("div");
      head.className = "mine-head";
      var number = document.createElement("span");
      number.className = "num mine-number";
      number.textContent = item.number;
      var state = document.createElement("span");
      state.className = "mine-state";
      state.textContent = item.state_label || "";
      head.appendChild(number);
      head.appendChild(state);
      li.appendChild(head);
      (item.stages || []).forEach(function (line) {
        var p = document.createElement("div");
        p.className = "muted";
        appendRich(p, line);
        li.appendChild(p);
      });
      var link = document.createElement("a");
      link.className = "secondary button-link";
      link.href = progressLink(item.number);
      link.target = "_blank";
      link.rel = "noopener";
      link.textContent = t("view_progress");
      li.appendChild(link);
      mineList.appendChild(li);
    });
  }

  function loadMine() {
    return fetch("/webchat/api/mine", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ session_id: sessionId }),
    }).then(function (response) { return response.ok ? response.json() : { complaints: [] }; })
      .then(function (body) { renderMine(body.complaints || []); })
      .catch(function () { renderMine([]); });
  }

  mineButton.addEventListener("click", function () {
    findProblem.hidden = true;
    loadMine();
    minePanel.showModal();
  });
  document.getElementById("mine-close").addEventListener("click", function () {
    minePanel.close();
  });

  findForm.addEventListener("submit", function (event) {
    event.preventDefault();
    var number = document.getElementById("find-number").value.trim();
    var proof = document.getElementById("find-proof").value.trim();
    findProblem.hidden = true;
    fetch("/webchat/api/find", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ session_id: sessionId, number: number, proof: proof }),
    }).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (body) {
        if (response.ok && body.complaint) {
          var code = /^[A-Za-z0-9]{4}-?[A-Za-z0-9]{4}$/.test(proof) ?
            proof.replace("-", "").toUpperCase() : codeOf(body.complaint.number);
          rememberComplaint(body.complaint.number, code);
          document.getElementById("find-proof").value = "";
          return loadMine();
        }
        findProblem.textContent = body.detail || t("failed");
        findProblem.hidden = false;
      });
    }).catch(function () {
      findProblem.textContent = t("network_error");
      findProblem.hidden = false;
    });
  });

  // ------------------------------------------------------------------ start

  // Show what was said before (this browser's copy); the server knows where the dialog is.
  var lastBot = -1;
  transcript.forEach(function (entry, index) {
    if (entry.who === "bot" && !entry.notice) lastBot = index;
  });
  transcript.forEach(function (entry, index) {
    bubble(entry.who, entry.text);
    if (entry.who === "bot") {
      var live = index === lastBot || !!entry.notice;
      showChoices(entry.choices, live, index === lastBot ? entry.ask : null);
    }
  });
  if (lastBot >= 0) {
    lastChoices = transcript[lastBot].choices || [];
    lastAsk = transcript[lastBot].ask || null;
  }
  scrollDown();
  // A link or QR code such as /webchat?start=window3 starts filing with that code, as Telegram's
  // /start deep links do; the parameter is dropped so a reload does not start again.
  var startCode = null;
  var search = window.location && window.location.search;
  if (search) {
    var match = /[?&]start=([A-Za-z0-9_-]{1,64})(?:&|$)/.exec(search);
    if (match) startCode = match[1];
    if (match && window.history && window.history.replaceState) {
      window.history.replaceState(null, "", window.location.pathname);
    }
  }
  if (startCode) post("/webchat/api/message", { text: "/start " + startCode });
  else if (!transcript.length) post("/webchat/api/hello", {});
  else poll();
  listen();
  setInterval(poll, POLL_MS);
})();
