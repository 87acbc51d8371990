// Odin dashboard: draws the job page's charts with uPlot and redraws them
// whenever htmx swaps in fresh data (#chart-data, a JSON script element).
(function () {
  "use strict";
  var charts = {};

  function width(host) {
    return Math.max(280, (host.clientWidth || 400) - 24);
  }

  function seconds(v) {
    if (v == null) { return "--"; }
    return Math.abs(v) < 1 ? (v * 1000).toPrecision(3) + " ms" : v.toPrecision(3) + " s";
  }

  function options(label, color, timed) {
    var format = timed ? seconds : function (v) { return v == null ? "--" : String(+v.toPrecision(6)); };
    return {
      width: 400, height: 200,
      scales: { x: { time: true } },
      series: [{}, { label: label, stroke: color, width: 2, points: { show: true, size: 5 },
                     value: function (u, v) { return format(v); } }],
      axes: [{}, { size: 70, values: function (u, vals) { return vals.map(format); } }],
      legend: { show: true },
    };
  }

  function draw(id, host, x, y, label, color, timed) {
    host.dataset.points = String(x.length);
    var empty = host.querySelector(".empty-chart");
    if (empty) { empty.hidden = x.length > 0; }
    var plot = host.querySelector(".plot");
    plot.hidden = x.length === 0;
    if (x.length === 0) { return; }
    var data = [x, y];
    if (!charts[id]) {
      var opts = options(label, color, timed);
      opts.width = width(host);
      charts[id] = new uPlot(opts, data, plot);
    } else {
      charts[id].setData(data);
    }
  }

  function watchHost(name, index) {
    var id = "watch-" + index;
    var host = document.getElementById(id);
    if (!host) {
      host = document.createElement("div");
      host.className = "chart card";
      host.id = id;
      host.dataset.series = name;
      var h = document.createElement("h3");
      h.textContent = name;
      host.appendChild(h);
      var plot = document.createElement("div");
      plot.className = "plot";
      host.appendChild(plot);
      document.getElementById("watch-charts").appendChild(host);
    }
    return host;
  }

  function refresh() {
    var source = document.getElementById("chart-data");
    if (!source || typeof uPlot === "undefined") { return; }
    var data = JSON.parse(source.textContent);
    draw("duration", document.getElementById("chart-duration"), data.runs.x, data.runs.duration, "duration", "#2f6fdf", true);
    draw("lag", document.getElementById("chart-lag"), data.runs.x, data.runs.lag, "lag", "#d9822b", true);
    var names = Object.keys(data.watch);
    names.forEach(function (name, i) {
      var series = data.watch[name];
      draw("watch:" + name, watchHost(name, i), series.x, series.y, name, "#2e9e6b", false);
    });
    var none = document.getElementById("no-watch");
    if (none) { none.hidden = names.length > 0; }
  }

  document.addEventListener("DOMContentLoaded", refresh);
  document.addEventListener("htmx:afterSettle", refresh);
  document.addEventListener("htmx:oobAfterSwap", refresh);
  window.addEventListener("resize", function () {
    Object.keys(charts).forEach(function (id) {
      var host = charts[id].root.closest(".chart");
      charts[id].setSize({ width: width(host), height: 200 });
    });
  });
  refresh();
})();
