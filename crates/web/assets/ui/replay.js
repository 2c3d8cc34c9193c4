// #/replays/{id}: a replay job. While it runs, its live numbers (long
// polling the job each second); once ended with a report, the report's
// charts and tables, drawn by replay-charts.js (the same code as the report
// page of `replay --report FILE.html`).

import { api } from './api.js';
import { count, el, sumSignals, table, time } from './format.js';

function progressTable(job) {
  const progress = job.progress || {};
  return table({ id: 'replay-progress' }, ['', 'Sent records', 'Sent items', 'Rejected items', 'Failed records', 'Retries'],
    ['traces', 'metrics', 'logs'].map((signal) => {
      const counts = progress[signal] || {};
      return el('tr', {}, el('th', { scope: 'row' }, signal), el('td', { class: 'num' }, count(counts.sentRecords)),
        el('td', { class: 'num' }, count(counts.sentItems)), el('td', { class: 'num' }, count(counts.rejectedItems)),
        el('td', { class: 'num' }, count(counts.failedRecords)), el('td', { class: 'num' }, count(counts.retries)));
    }));
}

function summary(job) {
  const progress = job.progress || {};
  return el('dl', { class: 'meta', id: 'replay-job' },
    [['Session', job.sessionId ? el('a', { href: `#/sessions/${encodeURIComponent(job.sessionId)}` }, job.sessionId) : '–'],
      ['State', el('span', { id: 'replay-state', dataset: { status: job.state } }, job.state)],
      ['Started', time(job.startedAt)], ['Ended', time(job.endedAt)],
      ['Read', `${count(progress.recordsRead)} of ${count(progress.totalRecords)} records, ${count(progress.itemsRead)} of ${count(progress.totalItems)} items (pass ${count((progress.pass || 0) + 1)})`],
      ['Sent items', count(sumSignals(progress, 'sentItems'))],
      ['Lag behind schedule', `${count(progress.lagMillis || 0)} ms`],
      ['Error', job.error || progress.lastError || '–'],
      ['Report file', job.reportFile ? el('code', {}, job.reportFile) : '–'],
    ].flatMap(([name, shown]) => [el('dt', {}, name), el('dd', {}, shown)]));
}

export async function replayView(root, [id], context) {
  const path = `/api/v1/replays/${encodeURIComponent(id)}`;
  let job = await api(path, { signal: context.signal });
  const head = el('div');
  const charts = el('section', { id: 'replay-report' });
  root.append(el('h1', {}, 'Replay ', el('code', {}, id)), head, charts);
  const stopButton = el('button', { type: 'button', dataset: { action: 'stop' }, onclick: async () => {
    stopButton.disabled = true;
    await api(`${path}/stop`, { method: 'POST', signal: context.signal });
  } }, 'Stop');

  while (job.state === 'running' && context.alive) {
    head.replaceChildren(summary(job), progressTable(job), el('div', { class: 'buttons' }, stopButton));
    root.dataset.ready = 'true';
    job = await api(`${path}?wait=1`, { signal: context.signal });
  }
  if (!context.alive) return;
  delete root.dataset.ready;
  head.replaceChildren(summary(job));
  if (!job.report) {
    charts.append(el('p', { class: 'notice' }, `This replay ended ${job.state} without a report.`), progressTable(job));
    return;
  }
  if (window.OtlpTapeReplayCharts) {
    window.OtlpTapeReplayCharts.render(charts, job.report);
  } else {
    charts.append(el('p', { class: 'notice' }, 'The report charts are not part of this build.'), progressTable(job));
  }
}
