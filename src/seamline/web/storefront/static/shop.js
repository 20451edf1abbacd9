/* The demo storefront's page script: starts the tracker with the event source's write key and
 * sends what the server asked for this page (identify after login, page, e-commerce events in
 * the Segment spec's names), and shows only the chosen fulfilment's fields at checkout. */
(function () {
  "use strict";
  var cfgNode = document.getElementById("shop-tracking");
  var cfg = {};
  try { cfg = JSON.parse(cfgNode ? cfgNode.textContent : "{}"); } catch (e) { cfg = {}; }
  var s = window.seamline;
  if (s && cfg.writeKey) {
    s.load(cfg.writeKey);
    if (cfg.reset) { // logged out: forget the user id; keep the anonymous id the server minted
      s.reset();
      if (cfg.anonymousId) s.anonymousId(cfg.anonymousId);
    }
    (cfg.calls || []).forEach(function (call) {
      if (call[0] === "identify") {
        // call[3]: the shop's signature of the user id (userHash), so the identify is a fact
        if (call[1]) s.identify(call[1], call[2] || {}, call[3] || {}); else s.identify(call[2] || {});
      }
    });
    s.page(document.title, cfg.page || {});
    (cfg.calls || []).forEach(function (call) {
      if (call[0] === "track") s.track(call[1], call[2] || {});
    });
  }

  // Checkout: show the fields of the chosen way to get the order.
  var radios = document.querySelectorAll("input[name=fulfilment]");
  function sync() {
    var chosen = document.querySelector("input[name=fulfilment]:checked");
    document.querySelectorAll(".sub[data-for]").forEach(function (box) {
      var on = chosen && box.getAttribute("data-for") === chosen.value;
      box.hidden = !on;
      box.querySelectorAll("input, select").forEach(function (field) { field.disabled = !on; });
    });
  }
  radios.forEach(function (r) { r.addEventListener("change", sync); });
  if (radios.length) sync();

  // A double click on "Place order" sends one request (the nonce would make it one order anyway).
  document.querySelectorAll("form.checkout").forEach(function (form) {
    form.addEventListener("submit", function () {
      var button = form.querySelector("[data-test=place-order]");
      if (button) setTimeout(function () { button.disabled = true; }, 0);
    });
  });
})();
