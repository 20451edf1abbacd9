/* The Marketing area (templates/marketing/): the RU / EN tabs of a template's form, and picking a
   customer found for the preview. Without this script both languages are shown one under the other. */
(function () {
  "use strict";

  function tabs(root) {
    const buttons = Array.from(root.querySelectorAll('[role="tab"]'));
    function show(button) {
      buttons.forEach(function (b) {
        const on = b === button;
        b.setAttribute("aria-selected", on ? "true" : "false");
        b.tabIndex = on ? 0 : -1;
        document.getElementById(b.getAttribute("aria-controls")).hidden = !on;
      });
    }
    buttons.forEach(function (b, i) {
      b.addEventListener("click", function () { show(b); });
      b.addEventListener("keydown", function (e) {
        if (e.key !== "ArrowRight" && e.key !== "ArrowLeft") return;
        const next = buttons[(i + (e.key === "ArrowRight" ? 1 : buttons.length - 1)) % buttons.length];
        show(next); next.focus();
      });
    });
    root.classList.add("mk-tabbed");
    show(buttons.find(function (b) { return b.getAttribute("aria-selected") === "true"; }) || buttons[0]);
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-tabs]").forEach(tabs);
  });
  document.addEventListener("click", function (e) {
    const pick = e.target.closest && e.target.closest("[data-pick]");
    if (!pick) return;
    const form = pick.closest("form");
    form.elements.customer_id.value = pick.dataset.pick;
    form.requestSubmit();
    const list = pick.closest("[data-test=customer-pick]");
    if (list) list.remove();  // chosen: the preview below says for whom
  });
})();
