// Drives web/static/webchat.js in Node against a running server, with a minimal stand-in for
// the browser's DOM (elements, events, localStorage). Usage: node webchat_page_check.js BASE_URL
// Exits 0 and prints "ok" when the page behaved; throws (exit 1) with the failed check otherwise.
"use strict";

const assert = require("node:assert/strict");
const fs = require("node:fs");
const path = require("node:path");

const BASE = process.argv[2];
const SOURCE = fs.readFileSync(
  path.join(__dirname, "..", "web", "static", "webchat.js"), "utf8");

class Element {
  constructor(tag) {
    this.tagName = tag.toUpperCase();
    this.children = [];
    this.parentElement = null;
    this.listeners = {};
    this.className = "";
    this.disabled = false;
    this.hidden = false;
    this.style = {};
    this.value = "";
    this.scrollHeight = 20;
    this.files = null;
    this._text = "";
    const self = this;
    this.classList = {
      toggle(name, force) {
        const names = new Set(self.className.split(" ").filter(Boolean));
        const on = force === undefined ? !names.has(name) : force;
        if (on) names.add(name); else names.delete(name);
        self.className = [...names].join(" ");
      },
      contains(name) { return self.className.split(" ").includes(name); },
    };
  }
  get textContent() {
    return this._text + this.children.map((c) => c.textContent).join("");
  }
  set textContent(value) {
    this._text = String(value);
    this.children = [];
  }
  appendChild(child) {
    child.parentElement = this;
    this.children.push(child);
    return child;
  }
  addEventListener(type, listener) {
    (this.listeners[type] = this.listeners[type] || []).push(listener);
  }
  dispatchEvent(event) {
    (this.listeners[event.type] || []).forEach((listener) => listener(event));
  }
  requestSubmit() { this.dispatchEvent(new Event("submit")); }
  descendants() {
    return this.children.flatMap((c) => [c, ...c.descendants()]);
  }
  querySelectorAll(selector) {
    assert.equal(selector, ".choices button", "the stand-in DOM knows one selector");
    return this.descendants().filter(
      (e) => e.tagName === "BUTTON" && e.parentElement.classList.contains("choices"));
  }
}

class Event {
  constructor(type) { this.type = type; }
  preventDefault() { this.defaultPrevented = true; }
}

const storage = new Map();
let inFlight = 0;
let requests = [];

function loadPage(extraWindow = {}) {
  const ids = {};
  for (const id of ["log", "composer", "text", "send", "locate", "restart"]) {
    ids[id] = new Element(id === "text" ? "textarea" : id === "log" ? "main" : "button");
  }
  const label = new Element("label");
  ids.file = label.appendChild(new Element("input"));
  globalThis.document = {
    getElementById: (id) => ids[id],
    createElement: (tag) => new Element(tag),
  };
  globalThis.window = {
    crypto: globalThis.crypto,
    localStorage: {
      getItem: (key) => (storage.has(key) ? storage.get(key) : null),
      setItem: (key, value) => storage.set(key, String(value)),
    },
    ...extraWindow,
  };
  Object.defineProperty(globalThis, "navigator", { value: {}, configurable: true });
  globalThis.URL.createObjectURL = () => "blob:preview";
  globalThis.Event = Event;
  new Function(SOURCE)();
  return ids;
}

const realFetch = globalThis.fetch;
globalThis.fetch = (url, options) => {
  inFlight += 1;
  requests.push({ url, options });
  return realFetch(BASE + url, options).finally(() => { inFlight -= 1; });
};

async function settled() {
  for (let i = 0; i < 500; i += 1) {
    await new Promise((resolve) => setTimeout(resolve, 10));
    if (inFlight === 0) {
      await new Promise((resolve) => setTimeout(resolve, 10));
      if (inFlight === 0) return;
    }
  }
  throw new Error("requests never finished");
}

function bubbles(log, who) {
  return log.children.filter((e) => e.className === "msg " + who).map((e) => e.textContent);
}

function activeButtons(log) {
  return log.querySelectorAll(".choices button").filter((b) => !b.disabled);
}

async function main() {
  // A first visit: a session id is made and kept, and the menu is shown.
  let page = loadPage();
  await settled();
  const sessionId = storage.get("complaintdesk.session");
  assert.match(sessionId, /^[A-Za-z0-9_-]{8,64}$/);
  assert.equal(requests[0].url, "/webchat/api/hello");
  assert.deepEqual(bubbles(page.log, "bot"), ["请问您要办理什么？"]);
  const labels = activeButtons(page.log).map((b) => b.textContent);
  assert.deepEqual(labels, ["我要投诉", "我的投诉", "语言", "帮助"]);

  // Pressing a choice shows it as the person's message and sends its id.
  activeButtons(page.log).find((b) => b.textContent === "我要投诉").dispatchEvent(
    new Event("click"));
  await settled();
  const sent = JSON.parse(requests.at(-1).options.body);
  assert.equal(sent.choice, "menu:new");
  assert.equal(sent.session_id, sessionId);
  assert.ok(sent.message_id);
  assert.deepEqual(bubbles(page.log, "me"), ["我要投诉"]);
  assert.match(bubbles(page.log, "bot").at(-1), /开始之前/);
  assert.ok(activeButtons(page.log).some((b) => b.textContent === "都不是，继续投诉"),
    "the screening choices are offered");

  // Typing a command works like on Telegram; Enter sends.
  page.text.value = "/help";
  page.text.dispatchEvent(Object.assign(new Event("keydown"), { key: "Enter" }));
  await settled();
  assert.equal(JSON.parse(requests.at(-1).options.body).text, "/help");
  assert.equal(page.text.value, "");
  assert.match(bubbles(page.log, "bot").at(-1), /\/status/);

  // A photo goes up as multipart with the session id; here (screening, no photo asked for)
  // the server refuses it (409) and the page shows why.
  const photo = new Blob([Buffer.from("\xff\xd8\xff\xe0jpeg")], { type: "image/jpeg" });
  photo.name = "door.jpg";
  page.file.files = [photo];
  page.file.dispatchEvent(new Event("change"));
  await settled();
  const uploadRequest = requests.at(-1);
  assert.equal(uploadRequest.url, "/webchat/api/upload");
  assert.equal(uploadRequest.options.body.get("session_id"), sessionId);
  assert.match(bubbles(page.log, "note").at(-1), /要求发送照片时/, "the refusal is shown");

  // A server-side refusal (400) is shown as a note, not swallowed.
  const before = page.log.children.length;
  page.text.value = "x".repeat(25000);
  page.composer.dispatchEvent(new Event("submit"));
  await settled();
  assert.match(bubbles(page.log, "note").at(-1), /25000.*20000/);
  assert.ok(page.log.children.length > before);
  assert.ok(activeButtons(page.log).some((b) => b.textContent === "都不是，继续投诉"),
    "after a refusal the choices the dialog waits on are offered again");

  // A reload shows the transcript from localStorage and keeps the session: no new greeting.
  const count = requests.length;
  page = loadPage();
  await settled();
  assert.deepEqual(requests.slice(count).map((r) => r.url), ["/webchat/api/updates"],
    "a reload only asks for notifications, the dialog is not touched");
  assert.equal(storage.get("complaintdesk.session"), sessionId);
  assert.ok(bubbles(page.log, "me").includes("/help"));
  assert.ok(activeButtons(page.log).length > 0, "the last choices are usable again");

  // A deep link (a QR code at a service window) starts filing with its code, once.
  let replaced = null;
  const beforeLink = requests.length;
  page = loadPage({
    location: { search: "?start=window3", pathname: "/webchat" },
    history: { replaceState: (state, title, url) => { replaced = url; } },
  });
  await settled();
  const linked = requests.slice(beforeLink).filter((r) => r.url === "/webchat/api/message");
  assert.equal(linked.length, 1);
  assert.equal(JSON.parse(linked[0].options.body).text, "/start window3");
  assert.equal(replaced, "/webchat");

  // "New chat" starts over with a new session.
  page.restart.dispatchEvent(new Event("click"));
  await settled();
  assert.notEqual(storage.get("complaintdesk.session"), sessionId);
  assert.deepEqual(bubbles(page.log, "bot"), ["请问您要办理什么？"]);
  console.log("ok");
  process.exit(0); // the page's notification poll would keep Node running
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
