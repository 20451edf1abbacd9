/* console.js: live updates for the staff console. One WebSocket (/console/ws, the sign-in cookie)
 * carries the inbox's notices; each becomes a DOM event on <body> ("sl:message", "sl:assignment",
 * "sl:status", "sl:call.ringing", ...) that HTMX elements refresh on (hx-trigger="sl:message from:body").
 * A conversation page asks to watch its conversation. The incoming-call screen pop is drawn here. */
(function () {
  "use strict";
  let socket = null, retry = 1000;
  const watching = new Set();

  function watch(id) {
    watching.add(id);
    if (socket && socket.readyState === 1) socket.send(JSON.stringify({ type: "watch", conversation_id: id }));
  }
  window.seamlineConsole = { watch };

  function connect() {
    // Only pages that show the inbox's live notices ask for the socket (data-live-socket): not
    // the login page, not a role without the inbox.
    const path = document.body.dataset.liveSocket;
    if (!path) return;
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    socket = new WebSocket(`${scheme}://${location.host}${path}`);
    socket.onopen = () => { retry = 1000; watching.forEach((id) => socket.send(JSON.stringify({ type: "watch", conversation_id: id }))); };
    socket.onmessage = (e) => {
      let notice;
      try { notice = JSON.parse(e.data); } catch (err) { return; }
      if (notice.type === "ready") {
        // Connected (or reconnected): what changed while the socket was down is fetched once.
        const first = document.body.dataset.live === undefined;
        document.body.dataset.live = "1";
        if (!first) document.body.dispatchEvent(new CustomEvent("sl:ready"));
        return;
      }
      document.body.dispatchEvent(new CustomEvent(`sl:${notice.type}`, { detail: notice }));
      if (notice.type === "call.ringing") screenPop(notice);
      if (notice.type === "call.answered" || notice.type === "call.ended") {
        const pop = document.getElementById("screen-pop"); if (pop) pop.innerHTML = "";
      }
    };
    socket.onclose = (e) => {
      document.body.dataset.live = "0";
      // 4401: refused (signed out, or no inbox for this role): trying again would be refused again.
      if (e.code === 4401) return;
      setTimeout(connect, retry); retry = Math.min(retry * 2, 30000);
    };
  }

  const T = {
    ru: { calling: "Входящий звонок", open: "Открыть профиль", fresh: "Новый клиент", create: "Создать клиента", dismiss: "Скрыть" },
    en: { calling: "Incoming call", open: "Open the profile", fresh: "New customer", create: "Create the customer", dismiss: "Dismiss" },
  };
  function el(tag, attrs, text) {
    const node = document.createElement(tag);
    Object.entries(attrs || {}).forEach(([k, v]) => node.setAttribute(k, v));
    if (text) node.textContent = text;
    return node;
  }
  function screenPop(notice) {
    const t = T[document.body.dataset.locale] || T.en, pop = document.getElementById("screen-pop");
    if (!pop) return;
    const box = el("aside", { class: "pop card", "data-test": "screen-pop", role: "alertdialog", "aria-label": t.calling });
    box.append(el("strong", {}, `${t.calling}: ${notice.call.phone}`));
    if (notice.customer) {
      const c = notice.customer;
      box.append(el("p", {}, c.name || c.first_name || c.phone));
      (c.conversations || []).slice(0, 3).forEach((conv) => {
        const row = el("p", { class: "small" });
        row.append(el("a", { href: `/console/inbox/${conv.id}` }, `#${conv.id} ${conv.subject || ""}`), ` · ${conv.status}`);
        box.append(row);
      });
      box.append(el("a", { href: `/console/customers/${c.id}`, class: "button primary" }, t.open));
    } else {
      box.append(el("p", {}, t.fresh));
      box.append(el("a", { href: `/console/customers?q=${encodeURIComponent(notice.new_customer.phone)}`, class: "button" }, t.create));
    }
    const close = el("button", { class: "link" }, t.dismiss);
    close.onclick = () => { pop.innerHTML = ""; };
    box.append(close);
    pop.replaceChildren(box);
  }

  document.addEventListener("DOMContentLoaded", () => {
    // A refused action answers 422 with the form and its message: swap it like a success.
    if (window.htmx) htmx.config.responseHandling = [
      { code: "204", swap: false }, { code: "[23]..", swap: true }, { code: "422", swap: true },
      { code: "[45]..", swap: false, error: true },
    ];
    connect();
    document.querySelectorAll("[data-watch]").forEach((n) => watch(Number(n.dataset.watch)));
    document.body.addEventListener("htmx:afterSwap", (e) => {
      e.detail.target.querySelectorAll && e.detail.target.querySelectorAll("[data-watch]").forEach((n) => watch(Number(n.dataset.watch)));
    });
  });
})();
