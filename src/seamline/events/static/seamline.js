/* seamline.js: the Seamline browser tracker (Segment-spec messages to the HTTP Tracking API).
 * Plain ES2017, no dependencies, no build step. Usage: docs/tracker.md. */
(function () {
  "use strict";
  const VERSION = "0.1.0";
  const AID = "sl_aid", UID = "sl_uid", UHASH = "sl_uhash", QUEUE = "sl_queue";
  const BATCH_SIZE = 20, FLUSH_DELAY = 1000, MAX_QUEUE = 1000, MAX_BODY = 60000, TIMEOUT = 10000;
  const RETRY_MIN = 1000, RETRY_MAX = 60000;
  const YEAR = 365 * 24 * 3600;

  const previous = window.seamline;
  if (previous && previous.VERSION) return; // the script was included twice
  const script = document.currentScript;
  const scriptOrigin = script && script.src ? new URL(script.src, location.href).origin : location.origin;

  // Storage: localStorage, or memory where it is unavailable (private modes, quota, disabled).
  const memory = {};
  const store = {
    get(key) {
      try { return key in memory ? memory[key] : localStorage.getItem(key); } catch (e) { return null; }
    },
    set(key, value) {
      try { localStorage.setItem(key, value); delete memory[key]; } catch (e) { memory[key] = value; }
    },
    remove(key) {
      delete memory[key];
      try { localStorage.removeItem(key); } catch (e) { /* nothing stored there */ }
    },
  };

  function uuid() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID(); // secure contexts only
    const b = new Uint8Array(16);
    if (window.crypto && crypto.getRandomValues) crypto.getRandomValues(b);
    else for (let i = 0; i < 16; i++) b[i] = Math.floor(Math.random() * 256);
    b[6] = (b[6] & 0x0f) | 0x40; // version 4
    b[8] = (b[8] & 0x3f) | 0x80; // variant 10
    const h = Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
  }

  const options = { host: scriptOrigin, cookieDomain: null };
  let writeKey = null;

  function readCookie(name) {
    for (const part of document.cookie.split(";")) {
      const i = part.indexOf("=");
      if (i > 0 && part.slice(0, i).trim() === name) {
        try { return decodeURIComponent(part.slice(i + 1).trim()); } catch (e) { return null; }
      }
    }
    return null;
  }

  function writeCookie(name, value) {
    let cookie = `${name}=${encodeURIComponent(value)}; path=/; max-age=${YEAR}; SameSite=Lax`;
    if (options.cookieDomain) cookie += `; domain=${options.cookieDomain}`;
    if (location.protocol === "https:") cookie += "; Secure";
    document.cookie = cookie;
  }

  // The anonymous id: cookie first, then localStorage, else a new one; both are kept in sync.
  function setAnonymousId(id) {
    writeCookie(AID, String(id));
    store.set(AID, String(id));
    return String(id);
  }
  function loadAnonymousId() { // read again each time: another tab may have reset it
    return setAnonymousId(readCookie(AID) || store.get(AID) || uuid());
  }
  loadAnonymousId();

  function pageFields() {
    const canonical = document.querySelector("link[rel='canonical']");
    let url = location.href.split("#")[0], path = location.pathname;
    if (canonical && canonical.href) {
      const c = new URL(canonical.href, location.href);
      url = c.search ? c.href.split("#")[0] : c.origin + c.pathname + location.search;
      path = c.pathname;
    }
    return { path, referrer: document.referrer, search: location.search, title: document.title, url };
  }

  function campaign() {
    const params = new URLSearchParams(location.search), result = {};
    for (const key of ["source", "medium", "campaign", "term", "content"]) {
      const value = params.get(`utm_${key}`);
      if (value !== null) result[key === "campaign" ? "name" : key] = value;
    }
    return Object.keys(result).length ? result : null;
  }

  function context() {
    const c = {
      library: { name: "seamline.js", version: VERSION },
      page: pageFields(),
      userAgent: navigator.userAgent,
      locale: navigator.language,
    };
    try { c.timezone = Intl.DateTimeFormat().resolvedOptions().timeZone; } catch (e) { /* old browser */ }
    const utm = campaign();
    if (utm) c.campaign = utm;
    // The site's signature of the user id (identify's options.userHash): the user id is then a
    // fact, not a claim, for Seamline's identity graph.
    const signed = store.get(UHASH);
    if (signed && store.get(UID)) c.userHash = signed;
    return c;
  }

  // The queue: every message not yet acknowledged, persisted so that a reload keeps it.
  function readQueue() {
    try {
      const q = JSON.parse(store.get(QUEUE) || "[]");
      return Array.isArray(q) ? q.filter((m) => m && typeof m === "object" && m.messageId) : [];
    } catch (e) { return []; }
  }
  function writeQueue(q) {
    if (q.length) store.set(QUEUE, JSON.stringify(q)); else store.remove(QUEUE);
  }
  function bytes(text) {
    return window.TextEncoder ? new TextEncoder().encode(text).length : text.length * 3;
  }
  function removeFromQueue(ids) {
    writeQueue(readQueue().filter((m) => !ids.has(m.messageId)));
  }

  let flushTimer = null, retryTimer = null, failures = 0, draining = null;
  const inFlight = new Set();

  function enqueue(message) {
    const q = readQueue();
    q.push(message);
    if (q.length > MAX_QUEUE) console.warn(`seamline: queue full, ${q.length - MAX_QUEUE} oldest messages dropped`);
    writeQueue(q.slice(-MAX_QUEUE));
    if (!writeKey || retryTimer) return; // sent after load(), or when the retry is due
    if (q.length >= BATCH_SIZE) flush();
    else if (!flushTimer) flushTimer = setTimeout(flush, FLUSH_DELAY);
  }

  // Splits messages into batches of at most BATCH_SIZE messages and (unless alone) MAX_BODY bytes.
  function batches(messages) {
    const result = [];
    let size = 0;
    for (const m of messages) {
      const length = bytes(JSON.stringify(m)), last = result[result.length - 1];
      if (last && last.length < BATCH_SIZE && size + length <= MAX_BODY) last.push(m);
      else { result.push([m]); size = 0; }
      size += length;
    }
    return result;
  }

  function body(batch) {
    return JSON.stringify({ batch, sentAt: new Date().toISOString(), writeKey });
  }

  // One POST: "ok" (stored), "drop" (refused for good: 4xx other than 429) or "retry".
  async function send(batch) {
    const payload = body(batch);
    const controller = window.AbortController ? new AbortController() : null;
    const timer = controller && setTimeout(() => controller.abort(), TIMEOUT);
    try {
      const response = await fetch(`${options.host}/v1/batch`, {
        method: "POST",
        headers: { "Content-Type": "text/plain" }, // a "simple" request: no CORS preflight
        body: payload,
        keepalive: bytes(payload) < MAX_BODY, // keepalive bodies are limited to 64 KiB
        credentials: "omit",
        signal: controller ? controller.signal : undefined,
      });
      if (response.ok) return "ok";
      if (response.status === 429 || response.status >= 500) return "retry";
      const text = await response.text().catch(() => "");
      console.error(`seamline: ${batch.length} messages refused (HTTP ${response.status}) and dropped: ${text}`);
      return "drop";
    } catch (e) {
      return "retry"; // network error, timeout, CORS failure
    } finally {
      if (timer) clearTimeout(timer);
    }
  }

  async function drain() {
    for (;;) {
      const batch = batches(readQueue())[0];
      if (!batch) return true;
      const ids = new Set(batch.map((m) => m.messageId));
      ids.forEach((id) => inFlight.add(id));
      const result = await send(batch);
      ids.forEach((id) => inFlight.delete(id));
      if (result === "retry") {
        if (flushTimer) { clearTimeout(flushTimer); flushTimer = null; } // wait for the retry
        failures += 1;
        const delay = Math.min(RETRY_MAX, RETRY_MIN * 2 ** (failures - 1)) * (0.75 + Math.random() * 0.5);
        retryTimer = setTimeout(() => { retryTimer = null; flush(); }, delay);
        return false;
      }
      failures = 0;
      removeFromQueue(ids);
    }
  }

  // Sends every queued message now; resolves to true once the queue is empty, false if a retry waits.
  function flush() {
    if (flushTimer) { clearTimeout(flushTimer); flushTimer = null; }
    if (!writeKey) return Promise.resolve(false);
    if (!draining) {
      if (retryTimer) { clearTimeout(retryTimer); retryTimer = null; }
      draining = drain().finally(() => { draining = null; });
    }
    return draining;
  }

  // The page is going away (or hidden, maybe for good): hand what is left to sendBeacon. The
  // messages stay queued until a fetch is acknowledged; the server drops the duplicates.
  function beacon() {
    if (!writeKey || !navigator.sendBeacon) return;
    for (const batch of batches(readQueue().filter((m) => !inFlight.has(m.messageId)))) {
      if (!navigator.sendBeacon(`${options.host}/v1/batch`, body(batch))) return; // budget spent
    }
  }
  window.addEventListener("pagehide", beacon);
  document.addEventListener("visibilitychange", () => { if (document.visibilityState === "hidden") beacon(); });

  const isObject = (value) => value !== null && typeof value === "object" && !Array.isArray(value);

  // Builds a Segment-spec message and queues it; returns its messageId (null if it cannot be sent).
  function message(type, fields) {
    const userId = store.get(UID);
    const m = { type, messageId: uuid(), anonymousId: loadAnonymousId() };
    if (userId) m.userId = userId;
    Object.assign(m, fields);
    m.timestamp = new Date().toISOString();
    m.context = context();
    try {
      JSON.stringify(m); // circular structures or BigInts must not break the site's code
    } catch (e) {
      console.error(`seamline: ${type} call dropped, its data is not JSON:`, e);
      return null;
    }
    enqueue(m);
    return m.messageId;
  }

  const api = {
    VERSION,
    load(key, opts) {
      if (writeKey) return console.warn("seamline: load() was already called");
      if (!key) return console.error("seamline: load() needs a write key");
      Object.assign(options, opts || {});
      options.host = String(options.host || scriptOrigin).replace(/\/+$/, "");
      if (options.cookieDomain) loadAnonymousId();
      writeKey = key;
      flush(); // messages queued before load, or left by an earlier page
    },
    page(name, properties) {
      if (isObject(name)) { properties = name; name = undefined; }
      const props = Object.assign(pageFields(), name ? { name } : {}, properties || {});
      return message("page", Object.assign(name ? { name } : {}, { properties: props }));
    },
    track(event, properties) {
      if (!event) return console.error("seamline: track() needs an event name");
      return message("track", { event: String(event), properties: properties || {} });
    },
    identify(userId, traits, opts) {
      if (isObject(userId)) { opts = traits; traits = userId; userId = undefined; }
      if (userId !== undefined && userId !== null && userId !== "") {
        if (String(userId) !== store.get(UID)) store.remove(UHASH); // a signature is for one user id
        store.set(UID, String(userId));
      }
      if (opts && opts.userHash) store.set(UHASH, String(opts.userHash));
      return message("identify", { traits: traits || {} });
    },
    alias(userId, previousId) {
      if (!userId) return console.error("seamline: alias() needs a userId");
      const previous = previousId || store.get(UID) || loadAnonymousId();
      return message("alias", { userId: String(userId), previousId: String(previous) });
    },
    group(groupId, traits) {
      if (!groupId) return console.error("seamline: group() needs a groupId");
      return message("group", { groupId: String(groupId), traits: traits || {} });
    },
    reset() { store.remove(UID); store.remove(UHASH); setAnonymousId(uuid()); },
    anonymousId(id) { return id ? setAnonymousId(id) : loadAnonymousId(); },
    userId() { return store.get(UID); },
    ready(callback) {
      try { callback(api); } catch (e) { console.error("seamline: ready() callback failed:", e); }
    },
    flush,
  };

  window.seamline = api;
  // Replay the calls the snippet queued before this script arrived.
  if (Array.isArray(previous)) {
    for (const call of previous) {
      if (!Array.isArray(call) || typeof api[call[0]] !== "function") continue;
      try { api[call[0]].apply(api, call.slice(1)); } catch (e) { console.error("seamline:", e); }
    }
  }
})();
