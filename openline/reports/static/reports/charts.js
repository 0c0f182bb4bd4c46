// The reports page: draws each report's chart with Chart.js from its json_script block
// (<canvas data-chart="id-of-the-block">). The table under each chart says the same.
(function () {
  "use strict";
  var COLOURS = ["#2563eb", "#dc2626", "#16a34a", "#d97706", "#7c3aed", "#0891b2", "#6b7280"];

  function config(data) {
    var round = data.kind === "doughnut";
    var datasets = data.series.map(function (series, i) {
      return {
        label: series.name,
        data: series.values,
        backgroundColor: round ? COLOURS : COLOURS[i % COLOURS.length],
        borderColor: round ? "#fff" : COLOURS[i % COLOURS.length],
        fill: false,
      };
    });
    var options = { responsive: true, maintainAspectRatio: false, animation: false };
    if (!round) {
      options.scales = {
        x: { stacked: data.stacked },
        y: { stacked: data.stacked, beginAtZero: true },
      };
    }
    return { type: data.kind, data: { labels: data.labels, datasets: datasets }, options: options };
  }

  function draw() {
    if (typeof window.Chart === "undefined") return;
    document.querySelectorAll("canvas[data-chart]").forEach(function (canvas) {
      var block = document.getElementById(canvas.dataset.chart);
      if (!block || canvas.dataset.drawn) return;
      new window.Chart(canvas, config(JSON.parse(block.textContent)));
      canvas.dataset.drawn = "1";
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", draw);
  } else {
    draw();
  }
})();
