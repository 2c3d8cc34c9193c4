// The timeline chart of a session: items per second per signal and error
// spans per second (uPlot), phases as DOM bands and annotations as marks
// over the plot area, placed with uPlot's valToPos and placed again on every
// redraw (resize, zoom). A range dragged on the chart is the selection.

import {
  SIGNAL_COLOURS, UTC_AXIS, el, utcDate, utcValue,
} from './format.js';

/** The most points a series gets; longer sessions are put in wider buckets. */
export const MAX_POINTS = 3000;
const BUCKETS = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 21600, 43200, 86400];

/**
 * The chart's data from timeline rows `[second, traces, metrics, logs,
 * errorSpans]` (sparse: seconds not listed hold nothing) over
 * [startSecond, endSecond]: zero-filled, per second, in buckets of
 * `bucket` seconds (averaged) when there would be over MAX_POINTS seconds.
 */
export function chartData(rows, startSecond, endSecond) {
  let first = startSecond;
  let last = endSecond;
  if (rows.length > 0) {
    first = Math.min(first, rows[0][0]);
    last = Math.max(last, rows[rows.length - 1][0]);
  }
  const seconds = Math.max(1, last - first + 1);
  const bucket = BUCKETS.find((candidate) => seconds / candidate <= MAX_POINTS)
    || Math.ceil(seconds / MAX_POINTS);
  const points = Math.ceil(seconds / bucket);
  const xs = new Array(points);
  const series = [1, 2, 3, 4].map(() => new Float64Array(points));
  for (let index = 0; index < points; index += 1) xs[index] = first + index * bucket;
  for (const row of rows) {
    const index = Math.floor((row[0] - first) / bucket);
    for (let column = 1; column <= 4; column += 1) series[column - 1][index] += row[column];
  }
  if (bucket > 1) {
    for (const values of series) for (let index = 0; index < points; index += 1) values[index] /= bucket;
  }
  return { bucket, data: [xs, ...series.map((values) => Array.from(values))] };
}

/**
 * Draws the chart into `container` (#timeline). `ranges` are the phases
 * ({name, start, end} in Unix seconds) and `marks` the annotations
 * ({label, start, end}); `onSelect({from, until})` gets the dragged range in
 * Unix seconds, or null when it is cleared. Returns {chart, setOverlays,
 * zoom, destroy}.
 */
export function drawTimeline(container, { rows, startSecond, endSecond, ranges, marks, onSelect }) {
  const { bucket, data } = chartData(rows, startSecond, endSecond);
  const unit = bucket === 1 ? '/s' : `/s (${bucket}-s avg)`;
  const overlay = { ranges, marks };
  const width = () => Math.max(320, container.clientWidth);
  const placeOverlays = (chart) => {
    for (const old of chart.over.querySelectorAll('.phase-band, .annotation-mark')) old.remove();
    const plotWidth = chart.over.clientWidth;
    const place = (node, start, end) => {
      const left = Math.max(0, chart.valToPos(start, 'x'));
      const right = Math.min(plotWidth, chart.valToPos(end, 'x'));
      if (!(right > left)) return false;
      node.style.left = `${left}px`;
      node.style.width = `${right - left}px`;
      return true;
    };
    for (const range of overlay.ranges) {
      const band = el('div', { class: 'phase-band', dataset: { phase: range.name }, title: range.name },
        el('span', {}, range.name));
      if (place(band, range.start, range.end)) chart.over.append(band);
    }
    for (const mark of overlay.marks) {
      const node = el('div', { class: 'annotation-mark', title: mark.label, dataset: { key: mark.key } });
      if (place(node, mark.start, Math.max(mark.end, mark.start + bucket / 2))) chart.over.append(node);
    }
  };
  const options = {
    width: width(),
    height: 260,
    tzDate: utcDate,
    scales: { x: { time: true } },
    cursor: { drag: { x: true, y: false, setScale: false } },
    series: [
      { label: 'UTC', value: utcValue },
      { label: `spans${unit}`, stroke: SIGNAL_COLOURS.traces, width: 1.5 },
      { label: `data points${unit}`, stroke: SIGNAL_COLOURS.metrics, width: 1.5 },
      { label: `log records${unit}`, stroke: SIGNAL_COLOURS.logs, width: 1.5 },
      { label: `error spans${unit}`, stroke: SIGNAL_COLOURS.errors, width: 1.5, fill: 'rgba(225, 87, 89, 0.15)' },
    ],
    axes: [{ values: UTC_AXIS, size: 50 }, { label: 'items per second', size: 60 }],
    hooks: {
      draw: [placeOverlays],
      setSelect: [(chart) => {
        if (chart.select.width < 2) {
          onSelect(null);
          return;
        }
        onSelect({
          from: chart.posToVal(chart.select.left, 'x'),
          until: chart.posToVal(chart.select.left + chart.select.width, 'x'),
        });
      }],
    },
  };
  const chart = new uPlot(options, data, container);
  let frame = 0;
  const resize = () => {
    cancelAnimationFrame(frame);
    frame = requestAnimationFrame(() => chart.setSize({ width: width(), height: 260 }));
  };
  window.addEventListener('resize', resize);
  return {
    chart,
    bucket,
    points: data[0].length,
    setOverlays(next) {
      Object.assign(overlay, next);
      placeOverlays(chart);
    },
    zoom(from, until) {
      chart.setSelect({ left: 0, top: 0, width: 0, height: 0 }, false);
      if (from === undefined) chart.setScale('x', { min: data[0][0], max: data[0][data[0].length - 1] });
      else chart.setScale('x', { min: from, max: until });
    },
    destroy() {
      window.removeEventListener('resize', resize);
      cancelAnimationFrame(frame);
      chart.destroy();
    },
  };
}
