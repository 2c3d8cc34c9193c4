/*
 * The charts and tables of a finished replay, drawn from its report's JSON
 * (what `replay --report FILE.json` writes, and the `report` of a replay job
 * in the control API).
 *
 * A classic script, not a module, so that the report page can inline it: it
 * defines `window.OtlpTapeReplayCharts.render(root, report)`, which empties
 * `root` and fills it. It needs the global `uPlot` (vendored in
 * assets/vendor) and nothing else: no fetch, no other script.
 *
 * Element ids (the browser tests select by them): #throughput-chart,
 * #lag-chart, #lag-distribution, #failures-chart, #counts-table,
 * #options-table, #evidence-hash; the summary is #replay-summary.
 */
(function () {
  "use strict";

  var SIGNALS = ["traces", "metrics", "logs"];
  var COLOURS = { traces: "#2563eb", metrics: "#16a34a", logs: "#d97706", failed: "#dc2626", retries: "#7c3aed", lag: "#0891b2" };
  // Past this many seconds the charts plot only the seconds that have rows
  // instead of every second from the start.
  var DENSE_LIMIT = 200000;

  function element(tag, attributes, children) {
    var node = document.createElement(tag);
    Object.keys(attributes || {}).forEach(function (name) {
      if (name === "text") {
        node.textContent = attributes[name];
      } else {
        node.setAttribute(name, attributes[name]);
      }
    });
    (children || []).forEach(function (child) {
      node.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
    });
    return node;
  }

  function text(value) {
    if (value === null || value === undefined || value === "") {
      return "—";
    }
    if (Array.isArray(value)) {
      return value.length === 0 ? "—" : value.map(text).join(", ");
    }
    if (typeof value === "object") {
      return JSON.stringify(value);
    }
    return String(value);
  }

  function number(value) {
    return typeof value === "number" ? value.toLocaleString("en-US") : text(value);
  }

  // The rows as columns: [seconds, traces, metrics, logs, failed, retries,
  // lag], each second from 0 to the last (missing seconds hold 0 items and
  // no lag), or only the seconds with rows for very long replays.
  function columns(series) {
    var rows = (series && series.rows) || [];
    var last = rows.length === 0 ? -1 : rows[rows.length - 1][0];
    var out = [[], [], [], [], [], [], []];
    if (last + 1 <= DENSE_LIMIT) {
      var next = 0;
      for (var second = 0; second <= last; second++) {
        var row = rows[next] && rows[next][0] === second ? rows[next++] : null;
        out[0].push(second);
        for (var i = 1; i <= 5; i++) {
          out[i].push(row ? row[i] : 0);
        }
        out[6].push(row && (row[1] + row[2] + row[3] > 0 || row[4] > 0) ? row[6] : null);
      }
    } else {
      rows.forEach(function (row) {
        for (var i = 0; i <= 6; i++) {
          out[i].push(row[i]);
        }
      });
    }
    return out;
  }

  function chartWidth(root) {
    var width = root.clientWidth || 800;
    return Math.max(320, Math.min(width - 16, 1100));
  }

  function chart(root, id, title, options, data) {
    var holder = element("div", { id: id, class: "replay-chart" });
    var section = element("section", { class: "replay-section" }, [element("h2", { text: title }), holder]);
    root.appendChild(section);
    if (typeof uPlot !== "function") {
      holder.appendChild(element("p", { class: "replay-note", text: "The charting library is not loaded." }));
    } else if (data[0].length === 0) {
      holder.appendChild(element("p", { class: "replay-note", text: "Nothing was sent." }));
    } else {
      options.width = chartWidth(root);
      options.height = options.height || 240;
      new uPlot(options, data, holder);
    }
    return section;
  }

  function secondsAxis() {
    return { label: "seconds since the replay started" };
  }

  function throughputChart(root, data) {
    chart(root, "throughput-chart", "Throughput (items sent per second)", {
      scales: { x: { time: false } },
      axes: [secondsAxis(), { label: "items/s", size: 60 }],
      series: [{ label: "second" }].concat(SIGNALS.map(function (signal) {
        return { label: signal, stroke: COLOURS[signal], width: 1.5 };
      })),
    }, [data[0], data[1], data[2], data[3]]);
  }

  function lagChart(root, data) {
    chart(root, "lag-chart", "Lag behind schedule (largest per second)", {
      scales: { x: { time: false } },
      axes: [secondsAxis(), { label: "ms", size: 60 }],
      series: [{ label: "second" }, { label: "lag (ms)", stroke: COLOURS.lag, width: 1.5, spanGaps: false }],
    }, [data[0], data[6]]);
  }

  function failuresChart(root, data) {
    chart(root, "failures-chart", "Failures and retries per second", {
      scales: { x: { time: false } },
      axes: [secondsAxis(), { label: "requests", size: 60 }],
      series: [
        { label: "second" },
        { label: "failed requests", stroke: COLOURS.failed, width: 1.5 },
        { label: "retries", stroke: COLOURS.retries, width: 1.5 },
      ],
    }, [data[0], data[4], data[5]]);
  }

  function lagDistribution(root, lag) {
    var bounds = (lag && lag.boundsMillis) || [];
    var counts = (lag && lag.counts) || [];
    var labels = counts.map(function (_, index) {
      return index < bounds.length ? "≤ " + bounds[index] + " ms" : "> " + (bounds[bounds.length - 1] || 0) + " ms";
    });
    var total = counts.reduce(function (sum, count) { return sum + count; }, 0);
    var data = [counts.map(function (_, index) { return index; }), counts.slice()];
    if (total === 0) {
      data = [[], []];
    }
    var options = {
      scales: { x: { time: false, range: [-0.5, Math.max(counts.length - 0.5, 0.5)] } },
      axes: [
        {
          label: "lag behind schedule",
          values: function (_, ticks) {
            return ticks.map(function (tick) { return Number.isInteger(tick) && labels[tick] !== undefined ? labels[tick] : ""; });
          },
          splits: function () { return data[0]; },
          rotate: -30,
          size: 60,
        },
        { label: "requests", size: 60 },
      ],
      legend: { show: false },
      series: [
        { label: "bucket" },
        {
          label: "requests",
          stroke: COLOURS.lag,
          fill: COLOURS.lag + "99",
          paths: uPlotBars(),
          points: { show: false },
        },
      ],
    };
    var section = chart(root, "lag-distribution", "Lag distribution (every request sent)", options, data);
    var summary = element("p", {
      class: "replay-note",
      id: "lag-percentiles",
      text: "p50 ≤ " + number(lag ? lag.p50Millis : null) + " ms, p99 ≤ " + number(lag ? lag.p99Millis : null) +
        " ms, max " + number(lag ? lag.maxMillis : null) + " ms, over " + number(total) + " requests",
    });
    section.appendChild(summary);
  }

  function uPlotBars() {
    return typeof uPlot === "function" && uPlot.paths && uPlot.paths.bars ? uPlot.paths.bars({ size: [0.7, 80] }) : undefined;
  }

  function table(id, headers, rows) {
    var head = element("thead", {}, [element("tr", {}, headers.map(function (header) { return element("th", { text: header }); }))]);
    var body = element("tbody", {}, rows.map(function (row) {
      return element("tr", {}, row.map(function (cell, index) {
        return element(index === 0 ? "th" : "td", { text: cell });
      }));
    }));
    return element("table", { id: id, class: "replay-table" }, [head, body]);
  }

  function countsTable(root, counts) {
    var rows = SIGNALS.concat(["total"]).map(function (name) {
      var c = (counts && counts[name]) || {};
      var delivered = (c.sentItems || 0) - (c.rejectedItems || 0);
      return [name, number(c.sentRecords), number(c.sentItems), number(delivered), number(c.rejectedItems),
        number(c.failedRecords), number(c.failedItems), number(c.invalidRecords), number(c.retries)];
    });
    root.appendChild(element("section", { class: "replay-section" }, [
      element("h2", { text: "Counts per signal" }),
      table("counts-table", ["signal", "requests sent", "items sent", "delivered", "rejected", "failed requests",
        "failed items", "invalid records", "retries"], rows),
    ]));
  }

  function optionsTable(root, options) {
    var rows = Object.keys(options || {}).map(function (name) { return [name, text(options[name])]; });
    root.appendChild(element("section", { class: "replay-section" }, [
      element("h2", { text: "Options" }),
      table("options-table", ["option", "value"], rows),
    ]));
  }

  function summary(root, report) {
    var session = report.session || {};
    var targets = report.targets || {};
    var rows = [
      ["session", text(session.id) + " (" + text(session.type) + ", " + text(session.status) + ")"],
      ["targets", text(targets.description)],
      ["started", text(report.startedAt)],
      ["ended", text(report.endedAt)],
      ["reason", text(report.reason)],
      ["passes", number(report.passes)],
      ["items per second", number(report.achievedItemsPerSecond)],
      ["abandoned requests", number(report.abandonedRecords)],
      ["corrupt blobs", number(report.corruptBlobs)],
    ];
    if (report.error) {
      rows.push(["error", text(report.error)]);
    }
    if (report.warning) {
      rows.push(["warning", text(report.warning)]);
    }
    SIGNALS.forEach(function (signal) {
      var target = targets[signal];
      if (target) {
        rows.push([signal + " target", text(target.endpoint) + " (" + text(target.protocol) + ")"]);
      }
    });
    var hash = element("code", {
      id: "evidence-hash",
      "data-present": report.contentHash ? "true" : "false",
      text: report.contentHash || "none: this replay did not hash what it sent (it runs with a report file)",
    });
    root.appendChild(element("section", { class: "replay-section", id: "replay-summary" }, [
      element("h2", { text: "Replay" }),
      table("summary-table", ["", ""], rows),
      element("p", {}, ["Evidence (SHA-256 of what was sent): ", hash]),
    ]));
  }

  function render(root, report) {
    while (root.firstChild) {
      root.removeChild(root.firstChild);
    }
    report = report || {};
    var series = report.series || { rows: [], lag: { boundsMillis: [], counts: [] } };
    var data = columns(series);
    summary(root, report);
    throughputChart(root, data);
    lagChart(root, data);
    lagDistribution(root, series.lag);
    failuresChart(root, data);
    countsTable(root, report.counts);
    optionsTable(root, report.options);
  }

  window.OtlpTapeReplayCharts = { render: render };
})();
