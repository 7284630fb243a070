// The instance page's usage graphs (templates/compute/partials/usage.html): CPU, disk and network over the chosen
// range, drawn with uPlot from the API (GET /api/v1/instances/{id}/metrics/?range=…). Times are shown in UTC, as
// everywhere on the site; gaps (the machine was off) stay gaps.
(function () {
  "use strict";

  var COLOURS = { first: "#2d5bff", second: "#13a37a" };
  var BYTE_UNITS = ["B/s", "KiB/s", "MiB/s", "GiB/s"];

  function bytesPerSecond(value) {
    if (value === null || value === undefined) {
      return "–";
    }
    var unit = 0;
    while (Math.abs(value) >= 1024 && unit < BYTE_UNITS.length - 1) {
      value /= 1024;
      unit += 1;
    }
    return (value >= 100 || unit === 0 ? value.toFixed(0) : value.toFixed(1)) + " " + BYTE_UNITS[unit];
  }

  function percent(value) {
    return value === null || value === undefined ? "–" : value.toFixed(1) + " %";
  }

  function percentTick(value) {
    return value.toFixed(0) + " %";
  }

  function bytesTick(value) {
    return bytesPerSecond(value).replace(".0 ", " ");
  }

  // Tick steps of 1, 2 and 5 times a power of 1024 and of ten: round figures in KiB/s and MiB/s.
  var BYTE_INCREMENTS = [];
  [1, 1024, 1048576, 1073741824].forEach(function (unit) {
    [1, 2, 5, 10, 20, 50, 100, 200, 500].forEach(function (step) { BYTE_INCREMENTS.push(step * unit); });
  });

  var dayLabel = null; // uPlot's date formatters, made once uPlot has loaded
  var timeLabel = null;

  function timeTicks(u, splits, axisIndex, space, increment) {
    return splits.map(function (seconds, index) {
      var date = utc(seconds);
      if (increment >= 86400) {
        return dayLabel(date);
      }
      var midnight = date.getHours() === 0 && date.getMinutes() === 0;
      return timeLabel(date) + (index === 0 || midnight ? "\n" + dayLabel(date) : "");
    });
  }

  function utc(seconds) {
    return uPlot.tzDate(new Date(seconds * 1000), "Etc/UTC");
  }

  function series(label, colour, format) {
    return { label: label, stroke: colour, width: 1.6, fill: colour + "14", spanGaps: false, value: function (u, v) { return format(v); } };
  }

  var CHARTS = {
    cpu: {
      fields: ["cpu_percent"],
      series: [series("CPU", COLOURS.first, percent)],
      tick: percentTick,
      range: [0, 100]
    },
    disk: {
      fields: ["disk_read_bps", "disk_write_bps"],
      series: [series("Read", COLOURS.first, bytesPerSecond), series("Write", COLOURS.second, bytesPerSecond)],
      tick: bytesTick,
      increments: BYTE_INCREMENTS
    },
    net: {
      fields: ["net_in_bps", "net_out_bps"],
      series: [series("In", COLOURS.first, bytesPerSecond), series("Out", COLOURS.second, bytesPerSecond)],
      tick: bytesTick,
      increments: BYTE_INCREMENTS
    }
  };

  function setUp(card) {
    var plots = {};
    var buttons = card.querySelectorAll("[data-usage-range]");
    var empty = card.querySelector("[data-usage-empty]");

    function width(element) {
      return Math.max(element.clientWidth, 240);
    }

    function draw(data) {
      var hasData = data.cpu_percent.some(function (value) { return value !== null; });
      empty.hidden = hasData;
      Object.keys(CHARTS).forEach(function (name) {
        var chart = CHARTS[name];
        var holder = card.querySelector('[data-usage-chart="' + name + '"] .usage-plot');
        var columns = [data.timestamps].concat(chart.fields.map(function (field) { return data[field]; }));
        if (plots[name]) {
          plots[name].destroy();
        }
        plots[name] = new uPlot(
          {
            width: width(holder),
            height: 180,
            tzDate: utc,
            cursor: { drag: { x: false, y: false } },
            legend: { live: false },
            scales: { x: { time: true }, y: chart.range ? { range: chart.range } : { range: function (u, min, max) { return [0, Math.max(max || 0, 1) * 1.1]; } } },
            axes: [
              {
                stroke: "#657089",
                grid: { stroke: "#eef1f6" },
                ticks: { stroke: "#e2e6ee" },
                font: "11px Inter, system-ui, sans-serif",
                values: timeTicks
              },
              {
                stroke: "#657089",
                grid: { stroke: "#eef1f6" },
                ticks: { stroke: "#e2e6ee" },
                font: "11px Inter, system-ui, sans-serif",
                size: 76,
                incrs: chart.increments,
                values: function (u, values) { return values.map(chart.tick); }
              }
            ],
            series: [{ value: "{YYYY}-{MM}-{DD} {HH}:{mm} UTC" }].concat(chart.series)
          },
          columns,
          holder
        );
      });
    }

    function load(range) {
      Array.prototype.forEach.call(buttons, function (button) {
        var active = button.getAttribute("data-usage-range") === range;
        button.classList.toggle("active", active);
        button.setAttribute("aria-pressed", active ? "true" : "false");
      });
      var url = card.getAttribute("data-usage-url") + "?range=" + encodeURIComponent(range);
      fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (response) {
          if (!response.ok) {
            throw new Error("HTTP " + response.status);
          }
          return response.json();
        })
        .then(draw)
        .catch(function (error) {
          empty.hidden = false;
          empty.textContent = "The usage cannot be shown right now (" + error.message + ").";
        });
    }

    Array.prototype.forEach.call(buttons, function (button) {
      button.addEventListener("click", function () { load(button.getAttribute("data-usage-range")); });
    });
    window.addEventListener("resize", function () {
      Object.keys(plots).forEach(function (name) {
        var holder = card.querySelector('[data-usage-chart="' + name + '"] .usage-plot');
        plots[name].setSize({ width: width(holder), height: 180 });
      });
    });
    load("24h");
  }

  // uPlot is fetched when the graphs come near the screen, not with the page: most visits never scroll to them.
  function start() {
    var card = document.getElementById("instance-usage");
    if (!card) {
      return;
    }
    var begin = function () {
      window.Hangar.load([card.getAttribute("data-uplot-js")], [card.getAttribute("data-uplot-css")]).then(function () {
        dayLabel = uPlot.fmtDate("{D} {MMM}");
        timeLabel = uPlot.fmtDate("{HH}:{mm}");
        setUp(card);
      });
    };
    if (!("IntersectionObserver" in window)) {
      begin();
      return;
    }
    var observer = new IntersectionObserver(
      function (entries) {
        if (entries.some(function (entry) { return entry.isIntersecting; })) {
          observer.disconnect();
          begin();
        }
      },
      { rootMargin: "400px" }
    );
    observer.observe(card);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
