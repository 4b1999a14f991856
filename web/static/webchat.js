// complaintdesk web chat: plain JS, no build step. The dialog itself lives on the server;
// this page only shows messages, sends what the person types, presses or uploads, and keeps
// a random session id (and a copy of the transcript) in localStorage.
(function () {
  "use strict";

  var SESSION_KEY = "complaintdesk.session";
  var TRANSCRIPT_KEY = "complaintdesk.transcript";
  var TRANSCRIPT_MAX = 200;
  var POLL_MS = 20000; // how often to ask for notifications (the web has no push)

  var log = document.getElementById("log");
  var form = document.getElementById("composer");
  var input = document.getElementById("text");
  var sendButton = document.getElementById("send");
  var fileInput = document.getElementById("file");
  var attachLabel = fileInput.parentElement;
  var locateButton = document.getElementById("locate");
  var restartButton = document.getElementById("restart");
  var busy = false;
  // The choices the dialog is waiting on: offered again when a message did not get through.
  var lastChoices = [];

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

  var sessionId = storageGet(SESSION_KEY);
  if (!sessionId || !/^[A-Za-z0-9_-]{8,64}$/.test(sessionId)) {
    sessionId = randomId();
    storageSet(SESSION_KEY, sessionId);
  }

  var transcript = [];
  try { transcript = JSON.parse(storageGet(TRANSCRIPT_KEY) || "[]") || []; } catch (e) { }

  function remember(entry) {
    transcript.push(entry);
    if (transcript.length > TRANSCRIPT_MAX) transcript = transcript.slice(-TRANSCRIPT_MAX);
    storageSet(TRANSCRIPT_KEY, JSON.stringify(transcript));
  }

  function scrollDown() { log.scrollTop = log.scrollHeight; }

  function disableOldChoices() {
    var buttons = log.querySelectorAll(".choices button");
    for (var i = 0; i < buttons.length; i++) buttons[i].disabled = true;
  }

  function bubble(who, text, imageUrl) {
    var div = document.createElement("div");
    div.className = "msg " + who;
    if (imageUrl) {
      var img = document.createElement("img");
      img.src = imageUrl;
      img.alt = text;
      div.appendChild(img);
    } else {
      div.textContent = text; // never innerHTML: the text may contain anything
    }
    log.appendChild(div);
    return div;
  }

  function showChoices(choices, active) {
    if (!choices || !choices.length) return;
    var row = document.createElement("div");
    row.className = "choices";
    choices.forEach(function (choice) {
      var button = document.createElement("button");
      button.type = "button";
      button.textContent = choice.label;
      button.disabled = !active;
      button.addEventListener("click", function () {
        if (busy) return;
        say(choice.label);
        post("/webchat/api/message", { choice: choice.id });
      });
      row.appendChild(button);
    });
    log.appendChild(row);
  }

  function setAsk(ask) {
    attachLabel.classList.toggle("wanted", ask === "photo");
    locateButton.hidden = ask !== "location" || !navigator.geolocation;
  }

  function showReplies(messages) {
    disableOldChoices();
    messages.forEach(function (message, index) {
      var last = index === messages.length - 1;
      bubble("bot", message.text);
      showChoices(message.choices, last);
      remember({ who: "bot", text: message.text, choices: last ? message.choices : [] });
    });
    if (messages.length) {
      lastChoices = messages[messages.length - 1].choices || [];
      setAsk(messages[messages.length - 1].ask);
    }
    scrollDown();
  }

  // Notifications (e.g. "your complaint was accepted") arrive between dialog messages: they
  // must not take away the choices the dialog is waiting on.
  function showNotices(messages) {
    messages.forEach(function (message) {
      bubble("bot", message.text);
      showChoices(message.choices, true);
      remember({ who: "bot", text: message.text, choices: message.choices || [] });
    });
    if (messages.length) scrollDown();
  }

  function poll() {
    if (busy || document.visibilityState === "hidden") return;
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

  function note(text) {
    bubble("note", text);
    scrollDown();
  }

  // After a refused or failed request the dialog still waits where it was.
  function failed(text) {
    note(text);
    showChoices(lastChoices, true);
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
      if (answered) showReplies(body.messages);
      if (!response.ok && body.detail) failed("⚠ " + body.detail);
      else if (!response.ok && !answered) {
        failed("⚠ 出错了，请重试。 Something went wrong, please try again.");
      }
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
      failed("⚠ 网络错误，请重试。 Network error, please try again.");
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
      .catch(function () { failed("⚠ 上传失败，请重试。 Upload failed, please try again."); })
      .then(function () { setBusy(false); });
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

  locateButton.addEventListener("click", function () {
    if (busy) return;
    navigator.geolocation.getCurrentPosition(function (position) {
      say("📍 " + position.coords.latitude.toFixed(5) + ", " +
        position.coords.longitude.toFixed(5));
      post("/webchat/api/message", {
        location: { latitude: position.coords.latitude, longitude: position.coords.longitude },
      });
    }, function () {
      note("⚠ 无法获取位置，请输入地址。 Location unavailable, please type the address.");
    });
  });

  restartButton.addEventListener("click", function () {
    if (busy) return;
    sessionId = randomId();
    storageSet(SESSION_KEY, sessionId);
    transcript = [];
    lastChoices = [];
    storageSet(TRANSCRIPT_KEY, "[]");
    log.textContent = "";
    setAsk(null);
    post("/webchat/api/hello", {});
  });

  // Show what was said before (this browser's copy); the server knows where the dialog is.
  var lastBot = -1;
  transcript.forEach(function (entry, index) { if (entry.who === "bot") lastBot = index; });
  transcript.forEach(function (entry, index) {
    bubble(entry.who, entry.text);
    if (entry.who === "bot") showChoices(entry.choices, index === lastBot);
  });
  if (lastBot >= 0) lastChoices = transcript[lastBot].choices || [];
  scrollDown();
  // A link or QR code such as /webchat?start=window3 starts filing with that code, as Telegram's
  // /start deep links do; the parameter is dropped so a reload does not start again.
  var startCode = null;
  var search = window.location && window.location.search;
  if (search) {
    var match = /[?&]start=([A-Za-z0-9_-]{1,64})(?:&|$)/.exec(search);
    if (match) startCode = match[1];
    if (window.history && window.history.replaceState) {
      window.history.replaceState(null, "", window.location.pathname);
    }
  }
  if (startCode) post("/webchat/api/message", { text: "/start " + startCode });
  else if (!transcript.length) post("/webchat/api/hello", {});
  else poll();
  setInterval(poll, POLL_MS);
})();
