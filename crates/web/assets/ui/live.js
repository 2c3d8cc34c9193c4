// #/live: running and recent captures and replays, updated from the event
// stream GET /api/v1/events (read with fetch and a stream reader, since
// EventSource cannot send the token), or by polling the job lists once a
// second when the stream fails. Rates are differences of snapshots.

import { allSessions, api, request } from './api.js';
import {
  bytes, colour, count, el, mount, rate, routeQuery, sumSignals, table, time, UTC_AXIS, utcDate, utcValue,
} from './format.js';
import { jobForms } from './forms.js';

const SIGNALS = ['traces', 'metrics', 'logs'];
const HISTORY = 300;

/** Reads server-sent events from a fetch response; calls onEvent(name,
 * data) for each; resolves when the stream ends. */
export async function readEvents(response, onEvent) {
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  let name = 'message';
  let data = [];
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    let newline;
    while ((newline = buffer.search(/\r?\n/)) >= 0) {
      const line = buffer.slice(0, newline);
      buffer = buffer.slice(newline + (buffer[newline] === '\r' ? 2 : 1));
      if (line === '') {
        if (data.length > 0) onEvent(name, data.join('\n'));
        name = 'message';
        data = [];
      } else if (line.startsWith('event:')) name = line.slice(6).trim();
      else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
    }
  }
}

/** Per-second rates from the difference of two snapshots of counters. */
function rates(previous, current, seconds) {
  if (!previous || !(seconds > 0)) return null;
  const result = {};
  for (const [key, shown] of Object.entries(current)) result[key] = Math.max(0, (shown - (previous[key] || 0)) / seconds);
  return result;
}

function captureCounters(job) {
  const counters = {};
  for (const signal of SIGNALS) {
    const counts = (job.counts || {})[signal] || {};
    counters[`${signal}.requests`] = counts.requests || 0;
    counters[`${signal}.items`] = counts.items || 0;
  }
  return counters;
}

function replayItems(job) {
  return sumSignals(job.progress, 'sentItems');
}

export async function liveView(root, _params, context) {
  const [sessions, patternList] = await Promise.all([
    allSessions(context.signal),
    api('/api/v1/patterns', { signal: context.signal }),
  ]);
  const params = routeQuery();
  const prefill = {};
  for (const name of ['session', 'from', 'until', 'phase', 'endpoint']) if (params.get(name)) prefill[name] = params.get(name);

  const previous = new Map();
  const replaySeries = new Map();
  const times = [];
  let chart = null;
  const captureBody = el('tbody');
  const replayBody = el('tbody');
  const seedBody = el('tbody');
  const exportBody = el('tbody');
  const chartBox = el('div', { id: 'live-replay-chart' });
  const status = el('p', { class: 'muted', id: 'live-status', 'aria-live': 'polite' }, 'connecting…');

  mount(root,
    el('h1', {}, 'Live'), status,
    el('h2', {}, 'Captures'),
    table({ id: 'live-captures' }, ['Capture', 'State', 'Started', 'Requests/s', 'Items/s', 'Queue', el('th', { class: 'num' }, 'Throttled'), el('th', { class: 'num' }, 'Rejected'), ''], captureBody),
    el('h2', {}, 'Replays'),
    table({ id: 'live-replays' }, ['Replay', 'Session', 'State', 'Progress', el('th', { class: 'num' }, 'Items/s'), el('th', { class: 'num' }, 'Lag'), el('th', { class: 'num' }, 'Failures'), el('th', { class: 'num' }, 'Retries'), ''], replayBody),
    el('h3', {}, 'Items sent per second'), chartBox,
    el('h2', {}, 'Seeds'),
    table({ id: 'live-seeds' }, ['Seed', 'State', 'Started', 'Session', ''], seedBody),
    el('h2', {}, 'Exports'),
    table({ id: 'live-exports' }, ['Export', 'Session', 'State', 'Started', 'Progress', el('th', { class: 'num' }, 'Written'), ''], exportBody),
    jobForms({ sessions, patterns: patternList.patterns || [], prefill, onStarted: () => poll(), signal: context.signal }));

  async function stop(kind, id, button) {
    button.disabled = true;
    try {
      await api(`/api/v1/${kind}/${encodeURIComponent(id)}/stop`, { method: 'POST', signal: context.signal });
    } catch (error) {
      button.disabled = false;
      status.textContent = error.message;
    }
  }

  const stopButton = (kind, job) => (job.state === 'running'
    ? el('button', { type: 'button', dataset: { action: 'stop' }, onclick: (event) => stop(kind, job.id, event.currentTarget) }, 'Stop')
    : '');

  function captureRow(job, now) {
    const counters = captureCounters(job);
    const before = previous.get(`capture:${job.id}`);
    const perSecond = rates(before && before.counters, counters, before ? (now - before.time) / 1000 : 0);
    previous.set(`capture:${job.id}`, { time: now, counters });
    const perSignal = (what) => el('span', { class: 'rates' }, SIGNALS.map((signal) =>
      `${signal} ${perSecond && job.state === 'running' ? rate(perSecond[`${signal}.${what}`]) : '–'}`).join(' · '));
    const queue = job.queue || null;
    const fill = queue && queue.capacityBytes > 0 ? queue.usedBytes / queue.capacityBytes : null;
    return el('tr', { dataset: { captureId: job.id, status: job.state } },
      el('td', {}, el('a', { href: `#/sessions/${encodeURIComponent(job.sessionId || job.id)}` }, job.id)),
      el('td', { class: job.state === 'failed' ? 'bad' : null }, job.state, job.error ? `: ${job.error}` : ''),
      el('td', {}, time(job.startedAt)),
      el('td', {}, perSignal('requests')),
      el('td', {}, perSignal('items')),
      el('td', {}, fill === null ? '–' : [el('progress', { max: 1, value: fill, 'aria-label': 'queue fill' }), ` ${bytes(queue.usedBytes)} of ${bytes(queue.capacityBytes)}`]),
      el('td', { class: 'num' }, count(sumSignals(job.counts, 'throttled'))),
      el('td', { class: 'num' }, count(sumSignals(job.counts, 'rejected'))),
      el('td', {}, stopButton('captures', job)));
  }

  function replayRow(job, now) {
    const progress = job.progress || {};
    const items = replayItems(job);
    const before = previous.get(`replay:${job.id}`);
    const perSecond = before && now > before.time ? Math.max(0, (items - before.items) / ((now - before.time) / 1000)) : null;
    previous.set(`replay:${job.id}`, { time: now, items });
    if (job.state === 'running' && perSecond !== null) replaySeries.set(job.id, perSecond);
    const failures = sumSignals(progress, 'failedRecords');
    const done = job.state !== 'running';
    return el('tr', { dataset: { replayId: job.id, status: job.state } },
      el('td', {}, el('a', { href: `#/replays/${encodeURIComponent(job.id)}` }, job.id)),
      el('td', {}, job.sessionId || ''),
      el('td', { class: job.state === 'failed' ? 'bad' : null }, job.state, job.error ? `: ${job.error}` : ''),
      el('td', {}, el('progress', { max: progress.totalItems || 1, value: progress.itemsRead || 0, 'aria-label': 'items read' }),
        ` ${count(progress.recordsRead)} / ${count(progress.totalRecords)} records · ${count(progress.itemsRead)} / ${count(progress.totalItems)} items · pass ${count((progress.pass || 0) + 1)}`),
      el('td', { class: 'num' }, done || perSecond === null ? '–' : rate(perSecond)),
      el('td', { class: 'num' }, `${count(progress.lagMillis || 0)} ms`),
      el('td', { class: `num${failures > 0 ? ' bad' : ''}` }, count(failures)),
      el('td', { class: 'num' }, count(sumSignals(progress, 'retries'))),
      el('td', {}, done ? el('a', { href: `#/replays/${encodeURIComponent(job.id)}` }, 'report') : stopButton('replays', job)));
  }

  function seedRow(job) {
    const sessionId = (job.summary || {}).sessionId;
    return el('tr', { dataset: { seedId: job.id, status: job.state } },
      el('td', {}, job.id),
      el('td', { class: job.state === 'failed' ? 'bad' : null }, job.state, job.error ? `: ${job.error}` : ''),
      el('td', {}, time(job.startedAt)),
      el('td', {}, sessionId ? el('a', { href: `#/sessions/${encodeURIComponent(sessionId)}` }, sessionId) : '–'),
      el('td', {}, stopButton('seeds', job)));
  }

  function exportRow(job) {
    const progress = job.progress || {};
    return el('tr', { dataset: { exportId: job.id, status: job.state } },
      el('td', {}, job.id),
      el('td', {}, job.sessionId ? el('a', { href: `#/sessions/${encodeURIComponent(job.sessionId)}` }, job.sessionId) : '–'),
      el('td', { class: job.state === 'failed' ? 'bad' : null }, job.state, job.error ? `: ${job.error}` : ''),
      el('td', {}, time(job.startedAt)),
      el('td', {}, `${count(progress.recordsDone)} / ${count(progress.recordsTotal)} records read · ${count(progress.itemsDone)} items`),
      el('td', { class: 'num' }, bytes(progress.bytesWritten || 0)),
      el('td', {}, stopButton('exports', job)));
  }

  // Items/s of each replay over time, one series per replay seen while the
  // page is open; a replay not running leaves a gap.
  const history = new Map();
  function drawChart(now) {
    if (replaySeries.size === 0 && history.size === 0) return;
    if (!chart) {
      chart = new uPlot({
        width: Math.max(320, chartBox.clientWidth), height: 180,
        tzDate: utcDate,
        series: [{ label: 'UTC', value: utcValue }], axes: [{ values: UTC_AXIS, size: 50 }, { label: 'items/s', size: 60 }],
      }, [[]], chartBox);
      context.onLeave(() => chart.destroy());
    }
    times.push(now / 1000);
    for (const id of replaySeries.keys()) {
      if (history.has(id)) continue;
      history.set(id, new Array(times.length - 1).fill(null));
      chart.addSeries({ label: id, stroke: colour(history.size - 1), width: 1.5 });
    }
    for (const [id, values] of history) {
      values.push(replaySeries.has(id) ? replaySeries.get(id) : null);
      if (values.length > HISTORY) values.splice(0, values.length - HISTORY);
    }
    if (times.length > HISTORY) times.splice(0, times.length - HISTORY);
    replaySeries.clear();
    chart.setData([times, ...history.values()]);
  }

  let source = 'polling';
  function update(snapshot) {
    const now = Date.now();
    const rows = (jobs, draw, columns, what) => (jobs && jobs.length > 0 ? jobs.map(draw)
      : [el('tr', { class: 'empty' }, el('td', { colspan: columns, class: 'muted' }, `No ${what} since serve started.`))]);
    captureBody.replaceChildren(...rows(snapshot.captures, (job) => captureRow(job, now), 9, 'captures'));
    replayBody.replaceChildren(...rows(snapshot.replays, (job) => replayRow(job, now), 9, 'replays'));
    seedBody.replaceChildren(...rows(snapshot.seeds, seedRow, 5, 'seeds'));
    exportBody.replaceChildren(...rows(snapshot.exports, exportRow, 7, 'exports'));
    drawChart(now);
    status.textContent = `${source}; updated ${time(new Date(now))}`;
  }

  async function poll() {
    try {
      const [captures, replays, seeds, exports] = await Promise.all(['captures', 'replays', 'seeds', 'exports']
        .map((kind) => api(`/api/v1/${kind}`, { signal: context.signal })));
      if (context.alive) update({ ...captures, ...replays, ...seeds, ...exports });
    } catch (error) {
      if (context.alive && error.name !== 'AbortError') status.textContent = `polling: ${error.message}`;
    }
  }

  let polling = null;
  function fallBackToPolling(reason) {
    if (polling || !context.alive) return;
    source = `polling every second (the event stream is not available: ${reason})`;
    polling = setInterval(poll, 1000);
    context.onLeave(() => clearInterval(polling));
  }

  async function stream() {
    let failures = 0;
    while (context.alive && !polling) {
      try {
        const response = await request('/api/v1/events', { signal: context.signal });
        failures = 0;
        source = 'live (event stream)';
        await readEvents(response, (name, data) => {
          if (name === 'jobs' && context.alive) update(JSON.parse(data));
        });
      } catch (error) {
        if (!context.alive || error.name === 'AbortError') return;
        failures += 1;
        if (failures >= 2) {
          fallBackToPolling(error.message);
          return;
        }
      }
      // The stream ended: connect again after a moment.
      await new Promise((resolve) => { setTimeout(resolve, 1000); });
    }
  }

  await poll();
  stream();
}
