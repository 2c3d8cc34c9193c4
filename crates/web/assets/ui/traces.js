// #/sessions/{id}/traces?from=&until=: the traces of a window of receive
// time (or the whole session); a row opens the trace's waterfall.

import { api, sessionPath } from './api.js';
import { count, el, mount, nanos, query, routeQuery, table, time } from './format.js';

/** A trace's start (Unix nanoseconds as a decimal string) as a time. */
export function nanoTime(value) {
  const text = String(value || '0').padStart(10, '0');
  const millis = Number(text.slice(0, -6));
  return time(new Date(millis).toISOString());
}

export async function tracesView(root, [id], context) {
  const params = routeQuery();
  const window_ = { from: params.get('from'), until: params.get('until') };
  const filters = { service: params.get('service'), errorsOnly: params.get('errorsOnly') === 'true' ? 'true' : null };
  const limit = Number(params.get('limit')) || 100;
  const list = await api(`${sessionPath(id)}/traces${query({ ...window_, ...filters, limit })}`, { signal: context.signal });
  const sessionHash = `#/sessions/${encodeURIComponent(id)}`;
  const traceHash = (traceId) => `${sessionHash}/traces/${traceId}${query(window_)}`;

  const service = el('input', { id: 'traces-service', name: 'service', value: filters.service || '', placeholder: 'any' });
  const errorsOnly = el('input', { id: 'traces-errors-only', name: 'errorsOnly', type: 'checkbox', checked: filters.errorsOnly ? true : null });
  const form = el('form', { class: 'filters', id: 'traces-filter' },
    el('div', {}, el('label', { for: 'traces-service' }, 'Service'), service),
    el('div', { class: 'check' }, errorsOnly, ' ', el('label', { for: 'traces-errors-only' }, 'errors only')),
    el('button', { type: 'submit' }, 'Filter'));
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    window.location.hash = `${sessionHash}/traces${query({
      ...window_, service: service.value.trim(), errorsOnly: errorsOnly.checked ? 'true' : null,
      limit: limit === 100 ? null : limit,
    })}`;
  });

  const rows = list.traces.map((trace) => {
    const open = () => { window.location.hash = traceHash(trace.traceId); };
    return el('tr', {
      class: `clickable${trace.errorSpans > 0 ? ' error' : ''}`,
      dataset: { traceId: trace.traceId },
      onclick: (event) => { if (event.target.tagName !== 'A') open(); },
    },
    el('td', {}, el('a', { href: traceHash(trace.traceId), class: 'mono' }, trace.traceId.slice(0, 16)), '…'),
    el('td', {}, trace.rootService || el('span', { class: 'muted' }, '(no root)')),
    el('td', {}, trace.rootName || ''),
    el('td', { class: 'num' }, count(trace.spans)),
    el('td', {}, (trace.services || []).join(', ')),
    el('td', { class: 'num' }, nanos(trace.durationNanos)),
    el('td', { class: `num${trace.errorSpans > 0 ? ' bad' : ''}` }, trace.errorSpans > 0 ? `⚠ ${count(trace.errorSpans)}` : '0'),
    el('td', {}, nanoTime(trace.startTimeUnixNano)));
  });

  mount(root,
    el('h1', {}, 'Traces of ', el('a', { href: sessionHash }, el('code', {}, id))),
    el('p', {}, `Received ${time(list.from)} – ${time(list.until)}: ${count(list.traces.length)} traces`,
      list.truncated ? el('strong', { class: 'warn', id: 'traces-truncated' }, ` (the first ${count(limit)}; narrow the window or raise the limit)`) : ''),
    form,
    list.traces.length === 0 ? el('p', { class: 'notice' }, 'No traces in this window.') : null,
    table({ id: 'traces-table' },
      ['Trace', 'Root service', 'Operation', el('th', { class: 'num' }, 'Spans'), 'Services',
        el('th', { class: 'num' }, 'Duration'), el('th', { class: 'num' }, 'Errors'), 'Start (UTC)'], rows));
}
