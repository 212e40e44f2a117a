// The dashboard's chart: registrations and resolutions per day, one line per prefix and kind.
(function () {
  var holder = document.getElementById("chart");
  var data = JSON.parse(document.getElementById("chart-data").textContent);
  if (!holder || typeof echarts === "undefined") return;
  var series = [];
  data.prefixes.forEach(function (p) {
    ["registrations", "resolutions"].forEach(function (kind) {
      series.push({ name: p + " " + data.labels[kind], type: "line", data: data[kind][p] || [] });
    });
  });
  var chart = echarts.init(holder, null, { renderer: "svg" });
  chart.setOption({
    animation: false,
    tooltip: { trigger: "axis" },
    legend: { top: 0 },
    grid: { top: 40, left: 50, right: 20, bottom: 30 },
    xAxis: { type: "category", data: data.days },
    yAxis: { type: "value", minInterval: 1 },
    series: series
  });
  window.addEventListener("resize", function () { chart.resize(); });
})();
