// #/sessions/{id}/traces/{traceId}: one trace as a waterfall. Spans are bars
// indented by depth (parent before children, by start), placed by start and
// duration on the trace's span of time, coloured per service; error spans
// are marked. A bar shows its span's details in #span-detail.

import { api, sessionPath } from './api.js';
import { bigNanos, colour, count, el, mount, nanos, query, routeQuery, table, value } from './format.js';
import { nanoTime } from './traces.js';

/** The spans in waterfall order with their depth: roots (no parent, or a
 * parent not in the trace) by start, each followed by its children. */
export function ordered(spans) {
  const byId = new Map(spans.map((span) => [span.spanId, span]));
  const children = new Map();
  const roots = [];
  for (const span of spans) {
    const parent = span.parentSpanId && byId.has(span.parentSpanId) && span.parentSpanId !== span.spanId
      ? span.parentSpanId : null;
    if (parent === null) roots.push(span);
    else {
      if (!children.has(parent)) children.set(parent, []);
      children.get(parent).push(span);
    }
  }
  const byStart = (a, b) => {
    const x = bigNanos(a.startTimeUnixNano);
    const y = bigNanos(b.startTimeUnixNano);
    return x < y ? -1 : x > y ? 1 : 0;
  };
  const result = [];
  const seen = new Set();
  const visit = (span, depth) => {
    if (seen.has(span.spanId)) return;
    seen.add(span.spanId);
    result.push({ span, depth });
    for (const child of (children.get(span.spanId) || []).sort(byStart)) visit(child, depth + 1);
  };
  for (const root of roots.sort(byStart)) visit(root, 0);
  // Spans in a parent cycle have no root: show them at the top level.
  for (const span of spans.slice().sort(byStart)) visit(span, 0);
  return result;
}

function attributeTable(caption, attributes) {
  const entries = Object.entries(attributes || {});
  if (entries.length === 0) return el('p', { class: 'muted' }, `No ${caption.toLowerCase()}.`);
  return table({ class: 'attributes', 'aria-label': caption }, ['Key', 'Value'],
    entries.map(([key, shown]) => el('tr', {}, el('td', {}, el('code', {}, key)), el('td', { class: 'mono' }, value(shown)))));
}

function detail(span, sessionId, window_) {
  const start = bigNanos(span.startTimeUnixNano);
  const events = span.events || [];
  const links = span.links || [];
  return [
    el('h2', {}, `${span.service}: ${span.name}`),
    el('dl', { class: 'meta' }, [
      ['Span', el('code', {}, span.spanId)], ['Parent', el('code', {}, span.parentSpanId || '–')],
      ['Kind', span.kind], ['Scope', span.scope || '–'],
      ['Start', nanoTime(span.startTimeUnixNano)], ['Duration', nanos(span.durationNanos)],
      ['Status', el('span', { class: span.status.code === 'error' ? 'bad' : null },
        span.status.code + (span.status.message ? `: ${span.status.message}` : ''))],
    ].flatMap(([name, shown]) => [el('dt', {}, name), el('dd', {}, shown)])),
    el('h3', {}, 'Attributes'), attributeTable('Attributes', span.attributes),
    el('h3', {}, 'Resource'), attributeTable('Resource', span.resource),
    el('h3', {}, 'Events'),
    events.length === 0 ? el('p', { class: 'muted' }, 'No events.')
      : table({ class: 'events' }, ['Offset', 'Name', 'Attributes'], events.map((event) => el('tr', {},
        el('td', { class: 'num' }, `+${nanos(Number(bigNanos(event.timeUnixNano) - start))}`),
        el('td', {}, event.name), el('td', { class: 'mono' }, value(event.attributes))))),
    el('h3', {}, 'Links'),
    links.length === 0 ? el('p', { class: 'muted' }, 'No links.')
      : table({ class: 'links' }, ['Trace', 'Span', 'Attributes'], links.map((link) => el('tr', {},
        el('td', {}, el('a', { class: 'mono', href: `#/sessions/${encodeURIComponent(sessionId)}/traces/${link.traceId}${query(window_)}` }, link.traceId)),
        el('td', { class: 'mono' }, link.spanId), el('td', { class: 'mono' }, value(link.attributes))))),
  ];
}

export async function traceView(root, [id, traceId], context) {
  const params = routeQuery();
  const window_ = { from: params.get('from'), until: params.get('until') };
  const trace = await api(`${sessionPath(id)}/traces/${encodeURIComponent(traceId)}${query(window_)}`, { signal: context.signal });
  const spans = ordered(trace.spans);
  const services = [...new Set(trace.spans.map((span) => span.service))].sort();
  const colours = new Map(services.map((service, index) => [service, colour(index)]));
  const first = trace.spans.reduce((min, span) => {
    const start = bigNanos(span.startTimeUnixNano);
    return min === null || start < min ? start : min;
  }, null) || 0n;
  const last = trace.spans.reduce((max, span) => {
    const end = bigNanos(span.endTimeUnixNano);
    return end > max ? end : max;
  }, first);
  const total = Number(last - first) || 1;
  const errors = trace.spans.filter((span) => span.status.code === 'error').length;
  const detailBox = el('section', { id: 'span-detail', class: 'panel', 'aria-live': 'polite' },
    el('p', { class: 'muted' }, 'Select a span to see its attributes, resource, events and links.'));

  let selected = null;
  const rows = spans.map(({ span, depth }) => {
    const left = (Number(bigNanos(span.startTimeUnixNano) - first) / total) * 100;
    const width = Math.max((span.durationNanos / total) * 100, 0.15);
    const isError = span.status.code === 'error';
    const bar = el('button', {
      type: 'button',
      class: `span-bar${isError ? ' error' : ''}`,
      dataset: { spanId: span.spanId, service: span.service },
      title: `${span.service}: ${span.name} (${nanos(span.durationNanos)})${isError ? ' — error' : ''}`,
      'aria-label': `${span.service} ${span.name}, ${nanos(span.durationNanos)}${isError ? ', error' : ''}`,
      style: `left: ${left}%; width: ${width}%; background: ${colours.get(span.service)}`,
    });
    bar.addEventListener('click', () => {
      if (selected) selected.classList.remove('selected');
      selected = bar;
      bar.classList.add('selected');
      detailBox.replaceChildren(...detail(span, id, window_));
      detailBox.dataset.spanId = span.spanId;
    });
    const durationLabel = el('span', { class: 'span-duration', style: left + width > 85 ? `right: ${100 - left + 0.5}%` : `left: ${left + width + 0.5}%` }, nanos(span.durationNanos));
    return el('div', { class: `span-row${isError ? ' error' : ''}` },
      el('div', { class: 'span-label', style: `padding-left: ${0.4 + depth * 1.1}rem`, title: `${span.service}: ${span.name}` },
        el('span', { class: 'muted' }, `${span.service} `), span.name),
      el('div', { class: 'span-track' }, bar, durationLabel));
  });

  mount(root,
    el('h1', {}, 'Trace ', el('code', {}, traceId)),
    el('p', {}, el('a', { href: `#/sessions/${encodeURIComponent(id)}/traces${query(window_)}` }, `← traces of ${id}`),
      ` · ${count(trace.spans.length)} spans · ${services.length} services · ${nanos(total)}`,
      errors > 0 ? el('span', { class: 'bad' }, ` · ⚠ ${count(errors)} error spans`) : ''),
    el('div', { id: 'service-legend' }, services.map((service) => el('span', { dataset: { service } },
      el('span', { class: 'swatch', style: `background: ${colours.get(service)}` }), service))),
    el('div', { id: 'waterfall' }, rows),
    detailBox);
}
