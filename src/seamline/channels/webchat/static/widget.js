/* widget.js: the Seamline web chat widget (a launcher and a panel in a Shadow DOM) for any website:
 *   <script src="https://SEAMLINE/webchat/widget.js" data-write-key="WRITE_KEY" async></script>
 * Optional: data-lang="ru|en" (default: the browser's language), data-title. The host page gets
 * window.seamlineChat = {open(), close(), send(text)}. Plain ES2017, no dependencies, no build step.
 * The anonymous id and the user id are seamline.js's (the tracker), so chats join the same profile. */
(function () {
  "use strict";
  if (window.seamlineChat) return; // the script was included twice
  const AID = "sl_aid", UID = "sl_uid", TOKEN = "sl_chat_token", OPEN = "sl_chat_open";
  const YEAR = 365 * 24 * 3600, TIMEOUT = 15000, RETRY_MIN = 1000, RETRY_MAX = 30000;
  const TYPING_EVERY = 3000, TYPING_IDLE = 4000, TYPING_SHOWN = 15000;

  const script = document.currentScript;
  const attr = (name) => (script && script.getAttribute(name)) || null;
  const origin = script && script.src ? new URL(script.src, location.href).origin : location.origin;
  const writeKey = attr("data-write-key");
  if (!writeKey) return console.error("seamline chat: the script tag needs data-write-key");
  const lang = /^ru/i.test(attr("data-lang") || navigator.language || "") ? "ru" : "en";
  const T = {
    en: {
      title: "Chat with us", placeholder: "Write a message…", send: "Send", attach: "Attach a file", open: "Open chat",
      close: "Close chat", queue: "You are number {n} in the queue", typing: "Agent is typing…",
      offline: "No one is online right now — leave your email and we'll answer there", emailSave: "Save",
      emailNote: "We'll reply to {email} by email", survey: "How did we do?", comment: "Comment (optional)",
      thanks: "Thank you for your feedback!", failed: "Not sent. Click to retry.", error: "Something went wrong, please try again",
      empty: "Ask us anything — we usually answer within minutes.", bot: "Bot",
    },
    ru: {
      title: "Напишите нам", placeholder: "Напишите сообщение…", send: "Отправить", attach: "Прикрепить файл",
      open: "Открыть чат", close: "Закрыть чат", queue: "Вы {n}-й в очереди", typing: "Оператор печатает…",
      offline: "Сейчас никого нет в сети — оставьте email, и мы ответим туда", emailSave: "Сохранить",
      emailNote: "Мы ответим на {email} по почте", survey: "Как мы справились?", comment: "Комментарий (необязательно)",
      thanks: "Спасибо за отзыв!", failed: "Не отправлено. Нажмите, чтобы повторить.", error: "Что-то пошло не так, попробуйте ещё раз",
      empty: "Спросите нас о чём угодно — обычно отвечаем за пару минут.", bot: "Бот",
    },
  }[lang];
  const fmt = (text, values) => text.replace(/\{(\w+)\}/g, (_, k) => values[k]);

  // Storage: localStorage, or memory where it is unavailable (as in seamline.js).
  const memory = {};
  const store = {
    get(key) { try { return key in memory ? memory[key] : localStorage.getItem(key); } catch (e) { return null; } },
    set(key, value) { try { localStorage.setItem(key, value); delete memory[key]; } catch (e) { memory[key] = value; } },
  };

  function uuid() {
    if (crypto.randomUUID) return crypto.randomUUID(); // secure contexts only
    const b = crypto.getRandomValues(new Uint8Array(16));
    b[6] = (b[6] & 0x0f) | 0x40; // version 4
    b[8] = (b[8] & 0x3f) | 0x80; // variant 10
    const h = Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
  }

  function readCookie(name) {
    const found = document.cookie.match(new RegExp(`(?:^|;)\\s*${name}=([^;]*)`));
    try { return found ? decodeURIComponent(found[1].trim()) : null; } catch (e) { return null; }
  }

  // The tracker's anonymous id (cookie, then localStorage). A new one is stored the way the tracker
  // stores it, so that the tracker adopts it; an existing one is left to the tracker to keep in sync.
  function anonymousId() {
    const known = readCookie(AID) || store.get(AID);
    if (known) return known;
    const id = uuid();
    const secure = location.protocol === "https:" ? "; Secure" : "";
    document.cookie = `${AID}=${encodeURIComponent(id)}; path=/; max-age=${YEAR}; SameSite=Lax${secure}`;
    store.set(AID, id);
    return id;
  }
  const identity = () => `${anonymousId()} ${store.get(UID) || ""}`; // a session is for one identity

  const state = {
    started: false, agentsOnline: true, queuePosition: null, email: null,
    typing: false, survey: null, error: null, unread: 0, open: false,
  };
  const messages = new Map(); // id -> the server's Message; pending ones under "local:<clientMessageId>"
  let token = null, sessionIdentity = null, starting = null;
  let socket = null, socketFailures = 0, reconnectTimer = null, typingTimer = null, typingShownTimer = null, typingSentAt = 0;

  // --- HTTP -------------------------------------------------------------------------------------
  // An error to show: the server's message, and the status (0: no answer, a network error or timeout).
  const httpError = (status, data) => Object.assign(new Error((data && data.error && data.error.message) || T.error), { status });

  async function call(method, path, body, auth = true, retried = false) {
    if (auth && (!token || identity() !== sessionIdentity)) await startSession();
    const form = body instanceof FormData, headers = {};
    if (body !== undefined && !form) headers["Content-Type"] = "application/json";
    if (auth) headers.Authorization = `Bearer ${token}`;
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), form ? 4 * TIMEOUT : TIMEOUT);
    let response;
    try {
      response = await fetch(origin + path, {
        method, headers, body: form || body === undefined ? body : JSON.stringify(body), credentials: "omit",
        signal: controller.signal,
      });
    } catch (e) {
      throw httpError(0, null);
    } finally {
      clearTimeout(timer);
    }
    const data = await response.json().catch(() => null);
    if (response.status === 401 && auth && !retried) { // the token expired or was revoked: a new session
      token = null;
      return call(method, path, body, auth, true);
    }
    if (!response.ok) throw httpError(response.status, data);
    return data;
  }

  // POST /v1/webchat/sessions: a token, and the visitor's conversation as it stands. Made on open
  // (on load when a token is stored), again on a 401 and when the user id changed (after a login).
  function startSession() {
    if (!starting) {
      starting = (async () => {
        const userId = store.get(UID), current = identity();
        const body = { writeKey, anonymousId: anonymousId() };
        if (userId) body.userId = userId;
        // The site's backend may vouch for the user id (HMAC, see docs/inbox.md): then the whole
        // history of that customer is shown, not only this browser's chats.
        const userHash = attr("data-user-hash") || window.seamlineChatUserHash;
        if (userId && userHash) body.userHash = userHash;
        const stored = store.get(TOKEN);
        if (stored) body.token = stored; // resume the same session instead of opening another
        const s = await call("POST", "/v1/webchat/sessions", body, false);
        token = s.token;
        sessionIdentity = current;
        store.set(TOKEN, token);
        Object.assign(state, {
          started: true, agentsOnline: s.agentsOnline !== false, queuePosition: s.queuePosition == null ? null : s.queuePosition,
          email: s.email || null,
        });
        for (const [id, m] of messages) if (!m.pending) messages.delete(id); // the server's history replaces ours
        (s.messages || []).forEach(add);
        pending(s.pendingSurvey);
        render();
        connect();
      })().finally(() => { starting = null; });
    }
    return starting;
  }

  // --- messages ---------------------------------------------------------------------------------
  function sorted() {
    return [...messages.values()].sort((a, b) => {
      if (!!a.pending !== !!b.pending) return a.pending ? 1 : -1; // not stored yet: last
      const x = a.createdAt || "", y = b.createdAt || "";
      return x < y ? -1 : x > y ? 1 : (Number(a.id) || 0) - (Number(b.id) || 0);
    });
  }
  function lastId() {
    const stored = sorted().filter((m) => !m.pending);
    return stored.length ? stored[stored.length - 1].id : null;
  }
  function add(m) { // de-duplicated by id; true if new
    if (!m || m.id == null || messages.has(String(m.id))) return false;
    messages.set(String(m.id), m);
    return true;
  }
  function arrived(m) { // a new message in real time: counted while the panel is closed
    if (!add(m)) return false;
    if (!state.open && m.direction === "out" && m.kind !== "event") state.unread += 1;
    if (m.direction === "in") { // the stored copy of one still pending here (the socket can beat the POST's answer)
      const key = m.clientMessageId ? `local:${m.clientMessageId}` : null;
      for (const [id, p] of messages) {
        if (p.pending && !p.failed && (key ? id === key : p.text === m.text)) { messages.delete(id); break; }
      }
    }
    return true;
  }

  async function catchUp() { // GET /v1/webchat/messages?after=<last id>: what came while disconnected
    const after = lastId();
    const data = await call("GET", `/v1/webchat/messages${after == null ? "" : `?after=${encodeURIComponent(after)}`}`);
    const asked = pending(data.pendingSurvey);
    if ((data.items || []).filter(arrived).length || asked) render();
  }
  // The survey still waiting for an answer, as the server knows it (a page loaded after it was
  // asked, or a socket that missed the frame); one answered meanwhile elsewhere goes away.
  function pending(p) {
    const s = state.survey;
    if (p && (!s || s.id !== p.id)) {
      state.survey = { id: p.id, kind: p.kind, question: p.question, done: false };
      return true;
    }
    if (!p && s && !s.done) { state.survey = null; return true; }
    return false;
  }

  // Sends one message, retrying network failures and 5xx with the same clientMessageId: the server
  // answers a retry with the message it stored the first time.
  async function send(text, attachmentIds) {
    text = String(text || "").trim();
    attachmentIds = attachmentIds || [];
    if (!text && !attachmentIds.length) return null;
    const clientMessageId = uuid(), key = `local:${clientMessageId}`;
    const pending = { id: key, pending: true, direction: "in", kind: "message", text, attachments: [] };
    messages.set(key, pending);
    render();
    setTyping(false);
    for (let failures = 0; ; failures++) {
      try {
        const body = { text, clientMessageId, attachmentIds, page: location.href.slice(0, 2000) };
        const stored = await call("POST", "/v1/webchat/messages", body);
        messages.delete(key);
        add(stored);
        render();
        return stored;
      } catch (e) {
        if (e.status && e.status < 500 && e.status !== 429) {
          Object.assign(pending, { failed: true, retry: () => { messages.delete(key); send(text, attachmentIds); } });
          state.error = e.message;
          render();
          throw e;
        }
        await new Promise((done) => setTimeout(done, Math.min(RETRY_MAX, RETRY_MIN * 2 ** failures)));
      }
    }
  }

  async function upload(file) { // POST /v1/webchat/attachments (multipart "file"), then a message with it
    state.error = null;
    const form = new FormData();
    form.append("file", file, file.name);
    try {
      const attachment = await call("POST", "/v1/webchat/attachments", form);
      await send("", [attachment.id]);
    } catch (e) {
      state.error = e.message; // a 413 says {"error": {"code": "attachment_too_large", "message": ...}}
      render();
    }
  }

  // --- real time: WebSocket /v1/webchat/ws?token=... ---------------------------------------------
  function connect() {
    if (socket && socket.token === token && socket.readyState <= WebSocket.OPEN) return;
    if (socket) { socket.onclose = null; socket.close(); }
    clearTimeout(reconnectTimer);
    const ws = new WebSocket(`${origin.replace(/^http/, "ws")}/v1/webchat/ws?token=${encodeURIComponent(token)}`);
    ws.token = token;
    socket = ws;
    ws.onopen = () => { socketFailures = 0; catchUp().catch(() => {}); };
    ws.onmessage = (event) => {
      try { onFrame(JSON.parse(event.data)); } catch (e) { console.error("seamline chat: bad frame", e); }
    };
    ws.onclose = () => { if (socket === ws) { socket = null; reconnect(); } };
  }

  // With backoff. The catch-up checks the token first (a 401 starts a new session, which connects).
  function reconnect() {
    const delay = Math.min(RETRY_MAX, RETRY_MIN * 2 ** socketFailures++) * (0.75 + Math.random() * 0.5);
    clearTimeout(reconnectTimer);
    reconnectTimer = setTimeout(() => catchUp().then(connect, () => { if (!socket) reconnect(); }), delay);
  }

  function onFrame(frame) {
    if (frame.type === "message") {
      if (arrived(frame.message) && frame.message.direction === "out") state.typing = false;
    } else if (frame.type === "typing") {
      state.typing = !!frame.typing;
      clearTimeout(typingShownTimer);
      if (state.typing) typingShownTimer = setTimeout(() => { state.typing = false; render(); }, TYPING_SHOWN);
    } else if (frame.type === "queue") {
      state.queuePosition = frame.position == null ? null : frame.position;
      state.agentsOnline = frame.agentsOnline !== false;
    } else if (frame.type === "status") {
      if (frame.status !== "open") state.queuePosition = null; // only open conversations wait
    } else if (frame.type === "survey") {
      state.survey = { id: frame.surveyId, kind: frame.kind, question: frame.question, done: false };
    } else return;
    render();
  }

  // Typing frames: one on the first keystroke and then every few seconds; "false" once idle or sent.
  function setTyping(typing) {
    clearTimeout(typingTimer);
    if (!socket || socket.readyState !== WebSocket.OPEN) return;
    const frame = (on) => socket.send(JSON.stringify({ type: "typing", typing: on }));
    if (typing && Date.now() - typingSentAt > TYPING_EVERY) { frame(true); typingSentAt = Date.now(); }
    else if (!typing && typingSentAt) { frame(false); typingSentAt = 0; }
    if (typing) typingTimer = setTimeout(() => setTyping(false), TYPING_IDLE);
  }

  // --- UI ---------------------------------------------------------------------------------------
  const CSS = `
    :host { all: initial; } [hidden] { display: none !important; }
    * { box-sizing: border-box; font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
    button { cursor: pointer; font: inherit; border: 0; } input, textarea { font: inherit; border: 1px solid #cbd5e1; border-radius: 6px; }
    .launcher, .panel { position: fixed; right: 20px; z-index: 2147483000; box-shadow: 0 6px 24px rgba(0,0,0,.25); }
    .launcher { bottom: 20px; width: 56px; height: 56px; border-radius: 50%; background: #2563eb; color: #fff; }
    .badge { position: absolute; top: -2px; right: -2px; padding: 2px 6px; border-radius: 10px; background: #dc2626; font-size: 12px; }
    .panel { bottom: 88px; width: 360px; max-width: calc(100vw - 24px); height: 520px; max-height: calc(100vh - 110px);
      display: flex; flex-direction: column; background: #fff; color: #111827; border-radius: 12px; overflow: hidden; font-size: 14px; }
    header { display: flex; align-items: center; padding: 12px 14px; background: #2563eb; color: #fff; font-weight: 600; }
    header span { flex: 1; } header button { background: none; color: #fff; padding: 0; display: flex; }
    .notice { padding: 8px 14px; background: #eff6ff; color: #1e3a8a; font-size: 13px; }
    .notice form { display: flex; gap: 6px; margin-top: 6px; } .notice input { flex: 1; padding: 6px 8px; }
    .log { flex: 1; overflow-y: auto; padding: 12px; display: flex; flex-direction: column; gap: 6px; }
    .msg { max-width: 80%; padding: 8px 10px; border-radius: 12px; white-space: pre-wrap; overflow-wrap: anywhere; }
    .msg.in { align-self: flex-end; background: #2563eb; color: #fff; } .msg.out { align-self: flex-start; background: #f1f5f9; }
    .msg.pending { opacity: .6; } .msg.failed { background: #fee2e2; color: #991b1b; cursor: pointer; }
    .msg.event { align-self: center; background: none; color: #6b7280; font-size: 12px; padding: 2px; }
    .who { display: block; font-size: 11px; color: #6b7280; } .msg a { display: block; color: inherit; }
    .empty { color: #6b7280; text-align: center; margin: auto 0; }
    .line { padding: 4px 14px; font-size: 12px; color: #6b7280; } .error { color: #b91c1c; }
    .survey { padding: 8px 14px; border-top: 1px solid #e5e7eb; } .survey input { width: 100%; padding: 6px 8px; }
    .scores { display: flex; flex-wrap: wrap; gap: 4px; margin: 6px 0; }
    .scores button { min-width: 28px; padding: 4px; border: 1px solid #cbd5e1; border-radius: 6px; background: #fff; }
    .composer { display: flex; align-items: flex-end; gap: 6px; padding: 8px; border-top: 1px solid #e5e7eb; }
    .composer textarea { flex: 1; resize: none; height: 38px; padding: 8px; border-radius: 8px; }
    .composer button { height: 38px; padding: 0 10px; border-radius: 8px; background: #2563eb; color: #fff; }
    .composer .clip { background: none; color: #475569; padding: 0 4px; }`;
  const svg = (d) => `<svg viewBox="0 0 24 24" width="22" height="22" fill="none" stroke="currentColor" stroke-width="2"
    stroke-linecap="round" stroke-linejoin="round" aria-hidden="true"><path d="${d}"/></svg>`;
  const ICONS = {
    chat: svg("M4 4h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H8l-4 4V6a2 2 0 0 1 2-2z"),
    clip: svg("M21 11l-9 9a5 5 0 0 1-7-7l9-9a3.5 3.5 0 0 1 5 5l-9 9a2 2 0 0 1-3-3l8-8"),
    close: svg("M6 6l12 12M18 6L6 18"),
  };

  function el(tag, props, children) { // props: sl (data-sl), on<event>, DOM properties, else attributes
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(props || {})) {
      if (k === "sl") node.setAttribute("data-sl", v);
      else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else if (k in node) node[k] = v;
      else node.setAttribute(k, v);
    }
    for (const child of [].concat(children == null ? [] : children)) node.append(child);
    return node;
  }

  let ui = null;
  function build() {
    const title = attr("data-title") || T.title;
    const input = el("textarea", {
      sl: "input", placeholder: T.placeholder, rows: 1, "aria-label": T.placeholder,
      oninput: () => setTyping(!!input.value.trim()),
      onkeydown: (e) => { if (e.key === "Enter" && !e.shiftKey && !e.isComposing) { e.preventDefault(); submit(); } },
    });
    const file = el("input", { sl: "file", type: "file", hidden: true,
      onchange: () => { const chosen = file.files[0]; file.value = ""; if (chosen) upload(chosen); } });
    ui = {
      input, file,
      emailInput: el("input", { sl: "email-input", type: "email", required: true, placeholder: "you@example.com" }),
      launcher: el("button", { sl: "launcher", className: "launcher", "aria-label": T.open, innerHTML: ICONS.chat,
        onclick: () => (state.open ? api.close() : api.open()) }),
      badge: el("span", { sl: "unread", className: "badge", hidden: true }),
      queue: el("div", { sl: "queue", className: "notice", hidden: true }),
      offline: el("div", { sl: "offline", className: "notice", hidden: true }),
      emailError: el("div", { sl: "email-error", className: "error", hidden: true }),
      emailNote: el("div", { sl: "email-note", className: "notice", hidden: true }),
      log: el("div", { sl: "messages", className: "log", role: "log", "aria-live": "polite" }),
      typing: el("div", { sl: "typing", className: "line", hidden: true }, T.typing),
      error: el("div", { sl: "error", className: "line error", role: "alert", hidden: true }),
      survey: el("div", { sl: "survey", className: "survey", hidden: true }),
    };
    ui.launcher.append(ui.badge);
    ui.offline.append(el("div", {}, T.offline), el("form", { sl: "email-form", onsubmit: (e) => { e.preventDefault(); saveEmail(); } },
      [ui.emailInput, el("button", { sl: "email-submit", type: "submit" }, T.emailSave)]), ui.emailError);
    ui.panel = el("div", { sl: "panel", className: "panel", role: "dialog", "aria-label": title, hidden: true }, [
      el("header", {}, [el("span", {}, title),
        el("button", { sl: "close", "aria-label": T.close, innerHTML: ICONS.close, onclick: () => api.close() })]),
      ui.queue, ui.offline, ui.emailNote, ui.log, ui.typing, ui.survey, ui.error,
      el("div", { className: "composer" }, [
        el("button", { sl: "attach", className: "clip", title: T.attach, "aria-label": T.attach, innerHTML: ICONS.clip,
          onclick: () => file.click() }),
        file, input, el("button", { sl: "send", onclick: submit }, T.send)]),
    ]);
    const host = el("div", { sl: "host" });
    host.attachShadow({ mode: "open" }).append(el("style", {}, CSS), ui.launcher, ui.panel);
    document.body.append(host);
  }

  function submit() {
    const text = ui.input.value;
    if (!text.trim()) return;
    ui.input.value = "";
    state.error = null;
    send(text).catch(() => {}); // the message shows its failure
  }

  async function saveEmail() { // POST /v1/webchat/email: replies go there while no one is online
    ui.emailError.hidden = true;
    try {
      state.email = (await call("POST", "/v1/webchat/email", { email: ui.emailInput.value.trim() })).email;
      render();
    } catch (e) {
      ui.emailError.textContent = e.message; // a 422 says what is wrong with the address
      ui.emailError.hidden = false;
    }
  }

  async function answerSurvey(score) { // POST /v1/webchat/surveys/{id}
    const survey = state.survey, comment = ui.survey.querySelector("input").value.trim();
    try {
      await call("POST", `/v1/webchat/surveys/${survey.id}`, comment ? { score, comment } : { score });
      survey.done = true;
    } catch (e) { state.error = e.message; }
    render();
  }

  function renderMessage(m) {
    const side = m.kind === "event" ? "event" : m.direction === "in" ? "in" : "out";
    const node = el("div", {
      sl: "message", className: `msg ${side}${m.pending ? " pending" : ""}${m.failed ? " failed" : ""}`,
      "data-id": m.id, "data-direction": m.direction, "data-kind": m.kind || "message",
      title: m.failed ? T.failed : m.createdAt ? new Date(m.createdAt).toLocaleString(lang) : "",
    });
    if (m.failed) node.addEventListener("click", m.retry);
    if (side === "out" && m.author && m.author.name) node.append(el("span", { className: "who" }, m.author.name));
    else if (side === "out" && m.bot) node.append(el("span", { className: "who" }, T.bot));
    if (m.text) node.append(m.text);
    for (const a of m.attachments || []) {
      const url = new URL(a.url, origin); // a link cannot send the Bearer header: the token goes in the query
      if (url.origin === origin && token) url.searchParams.set("token", token);
      node.append(el("a", { sl: "attachment", href: /^https?:$/.test(url.protocol) ? url.href : "#", target: "_blank",
        rel: "noopener", "data-id": a.id }, `${a.filename} (${Math.max(1, Math.round(a.size / 1024))} KB)`));
    }
    return node;
  }

  function render() {
    if (!ui) return;
    const list = sorted(), log = ui.log;
    const atBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 40;
    log.replaceChildren(...(list.length ? list.map(renderMessage) : [el("div", { className: "empty" }, T.empty)]));
    if (atBottom || (list.length && list[list.length - 1].direction === "in")) log.scrollTop = log.scrollHeight;
    ui.queue.hidden = state.queuePosition == null;
    ui.queue.textContent = fmt(T.queue, { n: state.queuePosition });
    ui.offline.hidden = !state.started || state.agentsOnline || !!state.email;
    ui.emailNote.hidden = !state.email || state.agentsOnline;
    ui.emailNote.textContent = fmt(T.emailNote, { email: state.email });
    ui.typing.hidden = !state.typing;
    ui.error.hidden = !state.error;
    ui.error.textContent = state.error || "";
    ui.badge.hidden = !state.unread;
    ui.badge.textContent = state.unread;
    const s = state.survey;
    ui.survey.hidden = !s;
    if (s && ui.survey.dataset.shown !== `${s.id}:${s.done}`) { // once per change: keeps the comment typed
      ui.survey.dataset.shown = `${s.id}:${s.done}`;
      const scores = s.kind === "nps" ? [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10] : [1, 2, 3, 4, 5];
      ui.survey.replaceChildren(...(s.done ? [el("div", { sl: "survey-thanks" }, T.thanks)] : [
        el("div", {}, [...messages.values()].some((m) => m.text === s.question) ? T.survey : s.question || T.survey),
        el("div", { className: "scores" }, scores.map((n) =>
          el("button", { sl: "score", "data-score": n, onclick: () => answerSurvey(n) }, String(n)))),
        el("input", { sl: "survey-comment", placeholder: T.comment, "aria-label": T.comment }),
      ]));
    }
  }

  const api = {
    open(focus = true) {
      if (!ui) return void ready.then(() => api.open(focus));
      Object.assign(state, { open: true, unread: 0 });
      remember(true);
      ui.panel.hidden = false;
      render();
      if (focus) ui.input.focus();
      if (!state.started || identity() !== sessionIdentity) {
        startSession().catch((e) => { state.error = e.message; render(); });
      }
    },
    close() {
      state.open = false;
      remember(false);
      if (ui) ui.panel.hidden = true;
    },
    send(text) { return send(text); }, // a promise of the stored message
  };
  window.seamlineChat = api;
  function remember(open) { // the panel stays open across this tab's pages
    try { if (open) sessionStorage.setItem(OPEN, "1"); else sessionStorage.removeItem(OPEN); } catch (e) { /* unavailable */ }
  }

  const ready = new Promise((resolve) => {
    const go = () => {
      build();
      render();
      let reopen = false;
      try { reopen = sessionStorage.getItem(OPEN) === "1"; } catch (e) { /* unavailable */ }
      if (reopen) api.open(false); // without focus: no keyboard popping up on every page
      else if (store.get(TOKEN)) startSession().catch(() => {}); // a conversation to restore
      resolve();
    };
    if (document.body) go(); else document.addEventListener("DOMContentLoaded", go);
  });
})();
