/* The demo shop's service worker (served as /shop/sw.js and /app/sw.js, scope: that look).
 * Shows the notifications Seamline sends by web push, whose payload is the JSON
 * {title, body, url, icon, tag}, and opens the notification's url when it is clicked. */
"use strict";

self.addEventListener("install", function () { self.skipWaiting(); });
self.addEventListener("activate", function (event) { event.waitUntil(self.clients.claim()); });

self.addEventListener("push", function (event) {
  var note = {};
  if (event.data) {
    try { note = event.data.json(); } catch (e) { note = {body: event.data.text()}; }
  }
  var options = {body: note.body || "", data: {url: note.url || null}};
  if (note.icon) options.icon = note.icon;
  if (note.tag) { options.tag = note.tag; options.renotify = true; }
  event.waitUntil(self.registration.showNotification(note.title || "Seamline", options));
});

self.addEventListener("notificationclick", function (event) {
  event.notification.close();
  var url = event.notification.data && event.notification.data.url;
  if (!url) return;
  var target = new URL(url, self.registration.scope);  // a path opens on the shop
  if (target.protocol !== "https:" && target.protocol !== "http:") return;
  event.waitUntil(self.clients.matchAll({type: "window", includeUncontrolled: true}).then(function (windows) {
    for (var i = 0; i < windows.length; i++) {
      if (windows[i].url === target.href && "focus" in windows[i]) return windows[i].focus();
    }
    return self.clients.openWindow(target.href);
  }));
});
