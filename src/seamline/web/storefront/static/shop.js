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

  // "Notify me" (templates/_notify.html): push notifications on this device for the logged-in
  // customer. A browser subscribes with the server's VAPID key and the subscription goes to the
  // shop's backend, which registers it for the customer of its login cookie; in the app look, a
  // native shell that offers its FCM token (window.SeamlineNative.pushToken() -> {token,
  // platform}) registers that instead.
  var notify = document.querySelector("[data-test=push-notify]");
  if (notify) setUpNotify(notify);

  function setUpNotify(box) {
    var button = box.querySelector("[data-test=push-enable]");
    var status = box.querySelector("[data-test=push-status]");
    var remembered = "seamline.push"; // "<customer>|<endpoint>" last registered from this browser
    function say(key) {
      status.textContent = box.getAttribute("data-text-" + key) || "";
      status.className = "notify-status " + key;
    }
    function on() { say("on"); button.hidden = true; box.setAttribute("data-state", "on"); }
    function failed(key) { button.disabled = false; say(key || "failed"); }
    function post(url, body) {
      return fetch(url, {method: "POST", credentials: "same-origin", headers: {"Content-Type": "application/json"},
                         body: JSON.stringify(body)})
        .then(function (response) { if (!response.ok) throw new Error("HTTP " + response.status); return response.json(); });
    }
    var offers = box.querySelector("[data-test=push-offers]");
    function withOffers(body) {  // the customer's own tick: marketing consent for this push channel
      if (offers && offers.checked) body.offers = true;
      return body;
    }
    function register(subscription) {
      return post(box.getAttribute("data-post"), withOffers(subscription.toJSON())).then(function () {
        try { localStorage.setItem(remembered, box.getAttribute("data-customer") + "|" + subscription.endpoint); } catch (e) { /* private mode */ }
        on();
      });
    }

    var native = window.SeamlineNative;
    if (native && typeof native.pushToken === "function") {
      button.addEventListener("click", function () {
        button.disabled = true; say("working");
        Promise.resolve(native.pushToken()).then(function (device) {
          return post(box.getAttribute("data-device"), withOffers({token: device.token, platform: device.platform}));
        }).then(on, function () { failed(); });
      });
      return;
    }
    if (!("serviceWorker" in navigator) || !("PushManager" in window) || !("Notification" in window)) {
      button.disabled = true; say("unsupported"); return;
    }
    var ready = navigator.serviceWorker.register(box.getAttribute("data-sw"), {scope: box.getAttribute("data-scope")});
    // Subscribed before: keep the server in step (once per customer and subscription).
    ready.then(function (registration) { return registration.pushManager.getSubscription(); }).then(function (subscription) {
      if (!subscription || Notification.permission !== "granted") return;
      var known = null;
      try { known = localStorage.getItem(remembered); } catch (e) { /* private mode */ }
      if (known === box.getAttribute("data-customer") + "|" + subscription.endpoint) { on(); return; }
      return register(subscription);
    }).catch(function () { /* the button still works */ });
    if (Notification.permission === "denied") say("blocked");
    button.addEventListener("click", function () {
      button.disabled = true; say("working");
      Notification.requestPermission().then(function (permission) {
        if (permission !== "granted") { failed(permission === "denied" ? "blocked" : "failed"); return; }
        return ready.then(function (registration) {
          return registration.pushManager.subscribe({userVisibleOnly: true, applicationServerKey: bytes(box.getAttribute("data-key"))});
        }).then(register);
      }).catch(function () { failed(); });
    });
  }

  function bytes(base64url) {
    var text = base64url.replace(/-/g, "+").replace(/_/g, "/");
    var raw = atob(text + "===".slice((text.length + 3) % 4));
    var out = new Uint8Array(raw.length);
    for (var i = 0; i < raw.length; i++) out[i] = raw.charCodeAt(i);
    return out;
  }

  // Logging out ends this browser's notifications too: the subscription is dropped (the push
  // service then answers 410 and Seamline revokes it), before the form goes.
  document.querySelectorAll("form[data-logout]").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      if (!("serviceWorker" in navigator) || form.getAttribute("data-unsubscribed")) return;
      event.preventDefault();
      form.setAttribute("data-unsubscribed", "1");
      var done = function () { try { localStorage.removeItem("seamline.push"); } catch (e) { /* private mode */ } form.submit(); };
      var unsubscribe = navigator.serviceWorker.getRegistration(form.getAttribute("data-scope")).then(function (registration) {
        return registration && registration.pushManager.getSubscription();
      }).then(function (subscription) { return subscription && subscription.unsubscribe(); });
      Promise.race([unsubscribe, new Promise(function (resolve) { setTimeout(resolve, 1500); })]).then(done, done);
    });
  });

  // A double click on "Place order" sends one request (the nonce would make it one order anyway).
  document.querySelectorAll("form.checkout").forEach(function (form) {
    form.addEventListener("submit", function () {
      var button = form.querySelector("[data-test=place-order]");
      if (button) setTimeout(function () { button.disabled = true; }, 0);
    });
  });
})();
