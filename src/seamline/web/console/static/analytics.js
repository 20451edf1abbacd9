/* The Analytics area (templates/analytics/): draws each [data-chart] element (an ECharts option as JSON,
   made on the server by web/reports/charts.py) once its section arrives (HTMX), and resizes the charts
   with the window. No build step: echarts.min.js is vendored beside this file. */
(function () {
  "use strict";
  var charts = [];

  function draw(root) {
    if (!window.echarts) return;
    (root || document).querySelectorAll("[data-chart]:not([data-drawn])").forEach(function (el) {
      var option;
      try { option = JSON.parse(el.getAttribute("data-chart")); } catch (e) { return; }
      el.setAttribute("data-drawn", "1");
      var chart = window.echarts.init(el, null, { renderer: "svg" });
      chart.setOption(option);
      charts.push(chart);
    });
    charts = charts.filter(function (c) { return !c.isDisposed() && document.body.contains(c.getDom()); });
  }

  var pending = null;
  window.addEventListener("resize", function () {
    clearTimeout(pending);
    pending = setTimeout(function () { charts.forEach(function (c) { if (!c.isDisposed()) c.resize(); }); }, 120);
  });
  document.addEventListener("htmx:beforeSwap", function (event) {
    // a section replaced (its options changed): free the charts it held
    var target = event.detail.target;
    if (!target || !window.echarts) return;
    target.querySelectorAll("[data-drawn]").forEach(function (el) {
      var chart = window.echarts.getInstanceByDom(el);
      if (chart) chart.dispose();
    });
  });
  document.addEventListener("htmx:afterSettle", function () { draw(document); });
  document.addEventListener("DOMContentLoaded", function () { draw(document); });
  window.slDrawCharts = draw;
})();
