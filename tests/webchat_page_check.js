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
    this.dataset = {};
    this.attributes = {};
    this.open = false;
    this.returnValue = "";
    this.onclose = null;
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
  removeChild(child) {
    this.children = this.children.filter((c) => c !== child);
    return child;
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
  setAttribute(name, value) { this.attributes[name] = String(value); }
  scrollIntoView() { }
  showModal() { this.open = true; }
  close() {
    this.open = false;
    if (this.onclose) this.onclose();
  }
  descendants() {
    return this.children.flatMap((c) => [c, ...c.descendants()]);
  }
  querySelectorAll(selector) {
    if (selector === ".choices button.upload, .choices button.locate") {
      return this.descendants().filter((e) => e.tagName === "BUTTON" &&
        (e.classList.contains("upload") || e.classList.contains("locate")));
    }
    if (selector === ".edit-menu") {
      return this.descendants().filter((e) => e.classList.contains("edit-menu"));
    }
    assert.equal(selector, ".choices button", "the stand-in DOM knows two selectors");
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
  const tags = { text: "textarea", log: "main", file: "input", composer: "form" };
  const element = (id) => {
    if (!ids[id]) ids[id] = new Element(tags[id] || "div");
    return ids[id];
  };
  element("texts").textContent = JSON.stringify({ confirm_new: "开始新会话？" });
  globalThis.document = {
    getElementById: element,
    createElement: (tag) => new Element(tag),
    createTextNode: (text) => Object.assign(new Element("#text"), { _text: String(text) }),
    body: new Element("body"),
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

  // "New chat" asks first; then the draft goes, the session (and its complaints) stays.
  const session = storage.get("complaintdesk.session");
  const beforeRestart = requests.length;
  page.restart.dispatchEvent(new Event("click"));
  await settled();
  assert.ok(page.confirm.open, "new chat asks first");
  assert.equal(page["confirm-text"].textContent, "开始新会话？");
  assert.equal(requests.length, beforeRestart, "nothing is sent before the answer");
  page.confirm.returnValue = "yes";
  page.confirm.close();
  await settled();
  assert.equal(storage.get("complaintdesk.session"), session);
  assert.equal(JSON.parse(requests.at(-1).options.body).text, "/cancel");
  assert.match(bubbles(page.log, "bot").at(-1), /请问您要办理什么？/);
  assert.equal(bubbles(page.log, "me").length, 0, "the old transcript is cleared");
  console.log("ok");
  process.exit(0); // the page's notification poll would keep Node running
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
