// Small helpers shared by the views: building elements, formatting numbers,
// sizes, durations and times, and reading the route's query.

/** An element: `el('td', {class: 'num'}, '12')`; attributes starting with
 * `on` are listeners, `dataset` an object, `null`/`false` leave one out. */
export function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith('on')) node.addEventListener(name.slice(2), value);
    else if (name === 'dataset') Object.assign(node.dataset, value);
    else if (name === 'text') node.textContent = value;
    else node.setAttribute(name, value === true ? '' : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

/** Appends the children that are not null/false to `parent`. */
export function mount(parent, ...children) {
  parent.append(...children.flat().filter((child) => child !== null && child !== undefined && child !== false && child !== ''));
}

/** A table with a header row and a body: `rows` are rows, or a tbody. */
export function table(attributes, headers, rows) {
  return el('table', attributes,
    el('thead', {}, el('tr', {}, headers.map((header) =>
      typeof header === 'string' ? el('th', { scope: 'col' }, header) : header))),
    rows instanceof HTMLTableSectionElement ? rows : el('tbody', {}, rows));
}

const integer = new Intl.NumberFormat('en');
const decimal = new Intl.NumberFormat('en', { maximumFractionDigits: 1 });

/** `12,345`. */
export function count(value) {
  return value === null || value === undefined ? '–' : integer.format(value);
}

/** `12.3`. */
export function rate(value) {
  return Number.isFinite(value) ? decimal.format(value) : '–';
}

/** `1.5 MiB`. */
export function bytes(value) {
  if (value === null || value === undefined) return '–';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let size = value;
  let unit = 0;
  while (size >= 1024 && unit < units.length - 1) {
    size /= 1024;
    unit += 1;
  }
  return `${unit === 0 ? size : decimal.format(size)} ${units[unit]}`;
}

/** `1m 05s`, `850 ms`, `12.4 µs` from seconds. */
export function duration(seconds) {
  if (!Number.isFinite(seconds)) return '–';
  if (seconds === 0) return '0 s';
  if (seconds < 0.001) return `${decimal.format(seconds * 1e6)} µs`;
  if (seconds < 1) return `${decimal.format(seconds * 1e3)} ms`;
  if (seconds < 60) return `${decimal.format(seconds)} s`;
  const whole = Math.round(seconds);
  const hours = Math.floor(whole / 3600);
  const minutes = Math.floor((whole % 3600) / 60);
  const rest = String(whole % 60).padStart(2, '0');
  return hours > 0 ? `${hours}h ${String(minutes).padStart(2, '0')}m ${rest}s` : `${minutes}m ${rest}s`;
}

/** Nanoseconds (a number or a decimal string) as a duration. */
export function nanos(value) {
  return duration(Number(value) / 1e9);
}

/** An RFC 3339 time shown in UTC, to the millisecond. */
export function time(value) {
  if (!value) return '–';
  const date = value instanceof Date ? value : new Date(value);
  if (Number.isNaN(date.getTime())) return String(value);
  return date.toISOString().replace('T', ' ').replace('Z', ' UTC');
}

/** uPlot's time axis in 24-hour UTC with ISO dates: per tick size, the
 * label and what is added below it where the year, month, day, hour or
 * minute changes (uPlot's format table; use with `utcDate`). */
export const UTC_AXIS = [
  [3600 * 24 * 365, '{YYYY}', null, null, null, null, null, null, 1],
  [3600 * 24 * 28, '{YYYY}-{MM}', null, null, null, null, null, null, 1],
  [3600 * 24, '{MM}-{DD}', '\n{YYYY}', null, null, null, null, null, 1],
  [3600, '{HH}:{mm}', '\n{YYYY}-{MM}-{DD}', null, '\n{MM}-{DD}', null, null, null, 1],
  [60, '{HH}:{mm}', '\n{YYYY}-{MM}-{DD}', null, '\n{MM}-{DD}', null, null, null, 1],
  [1, ':{ss}', '\n{YYYY}-{MM}-{DD} {HH}:{mm}', null, '\n{MM}-{DD} {HH}:{mm}', null, '\n{HH}:{mm}', null, 1],
  [0.001, ':{ss}.{fff}', '\n{YYYY}-{MM}-{DD} {HH}:{mm}', null, '\n{MM}-{DD} {HH}:{mm}', null, '\n{HH}:{mm}', null, 1],
];

/** uPlot's `tzDate` for UTC. */
export function utcDate(seconds) {
  return uPlot.tzDate(new Date(seconds * 1000), 'Etc/UTC');
}

/** A uPlot legend value for Unix seconds, in UTC. */
export function utcValue(_chart, seconds) {
  return seconds === null || seconds === undefined ? '–' : new Date(seconds * 1000).toISOString().replace('T', ' ').slice(0, 23);
}

/** Unix seconds (a number) as RFC 3339. */
export function rfc3339(seconds) {
  return new Date(Math.round(seconds * 1000)).toISOString();
}

/** Unix nanoseconds in a decimal string as a BigInt (0 for junk). */
export function bigNanos(value) {
  try {
    return BigInt(value);
  } catch {
    return 0n;
  }
}

/** Seconds between two RFC 3339 times. */
export function secondsBetween(start, end) {
  return (new Date(end).getTime() - new Date(start).getTime()) / 1000;
}

/** The query of the current route (`#/x?a=1`). */
export function routeQuery() {
  const hash = window.location.hash;
  const at = hash.indexOf('?');
  return new URLSearchParams(at < 0 ? '' : hash.slice(at + 1));
}

/** A query string (`?a=1&b=2`) of the set values, or `''`. */
export function query(values) {
  const params = new URLSearchParams();
  for (const [name, value] of Object.entries(values)) {
    if (value !== null && value !== undefined && value !== '') params.set(name, value);
  }
  const text = params.toString();
  return text ? `?${text}` : '';
}

/** The sum of a field over the three signals of a counts object. */
export function sumSignals(counts, field) {
  if (!counts) return 0;
  return ['traces', 'metrics', 'logs'].reduce((total, signal) => total + ((counts[signal] || {})[field] || 0), 0);
}

/** A colour per name, stable across views. */
const PALETTE = ['#4e79a7', '#f28e2b', '#59a14f', '#b07aa1', '#76b7b2', '#edc948', '#ff9da7', '#9c755f', '#bab0ac', '#e15759'];
export function colour(index) {
  return PALETTE[index % PALETTE.length];
}

/** The colours of the three signals and of errors in every chart. */
export const SIGNAL_COLOURS = { traces: '#4e79a7', metrics: '#59a14f', logs: '#f28e2b', errors: '#e15759' };

/** A JSON value as text for a table cell. */
export function value(value) {
  if (value === null || value === undefined) return '';
  return typeof value === 'string' ? value : JSON.stringify(value);
}

/** Shows a message in #error (role=alert); `null` hides it. */
export function showError(message) {
  const box = document.getElementById('error');
  box.textContent = message || '';
  box.hidden = !message;
}
