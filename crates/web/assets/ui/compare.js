// #/compare?expected=&actual=: compares two sessions (POST
// /api/v1/compares, then long polling the job) and shows the comparison side
// by side: per signal and service, what was expected and what was delivered.

import { allSessions, api, request } from './api.js';
import { count, el, routeQuery, showError, table } from './format.js';

function sessionSelect(name, label, sessions, chosen) {
  const id = `compare-${name}-select`;
  const select = el('select', { id, name, required: true }, el('option', { value: '' }, '(choose a session)'),
    sessions.map((session) => el('option', { value: session.sessionId, selected: session.sessionId === chosen ? true : null },
      `${session.sessionId} (${session.sessionType}, ${session.status})`)));
  return el('div', {}, el('label', { for: id }, label), select);
}

function side(which, summary, signals) {
  const expected = which === 'expected';
  const columns = expected ? ['Expected'] : ['Delivered', 'Identical', 'Changed', 'Missing', 'Unexpected'];
  const cells = (counts) => (expected ? [counts.expected]
    : [counts.delivered, counts.identical, counts.changed, counts.missing, counts.unexpected])
    .map((shown, index) => el('td', { class: `num${!expected && index >= 2 && shown > 0 ? ' bad' : ''}` }, count(shown)));
  const rows = signals.flatMap((signal) => [
    el('tr', { class: 'signal', dataset: { signal: signal.signal } }, el('th', { scope: 'row' }, signal.signal), cells(signal.counts)),
    ...signal.services.map((service) => el('tr', { dataset: { signal: signal.signal, service: service.service } },
      el('td', {}, `\u00a0\u00a0${service.service}`), cells(service.counts))),
  ]);
  return el('section', { id: `compare-${which}`, class: 'panel' },
    el('h2', {}, expected ? 'Expected (sent)' : 'Actual (delivered)'),
    el('p', {}, el('code', {}, summary.sessionId), ` · ${count(summary.records)} records · ${count(summary.items.traces)} spans, ${count(summary.items.metrics)} points, ${count(summary.items.logs)} logs`),
    el('p', { class: 'muted mono' }, summary.contentHash),
    table({}, ['Signal / service', ...columns.map((column) => el('th', { class: 'num' }, column))], rows));
}

function result(job, comparison) {
  const verdict = comparison.verdict;
  const download = el('button', { type: 'button', id: 'compare-report-html', onclick: async () => {
    try {
      const response = await request(`/api/v1/compares/${encodeURIComponent(job.id)}/report?format=html`);
      const url = URL.createObjectURL(await response.blob());
      const link = el('a', { href: url, download: `${job.id}.html` });
      document.body.append(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10000);
    } catch (error) {
      showError(error.message);
    }
  } }, 'Download the HTML report');
  const changes = comparison.attributeChanges || [];
  const fields = comparison.fieldChanges || [];
  const traces = comparison.traces || {};
  return el('div', { id: 'compare-result', dataset: { jobId: job.id } },
    el('h2', { id: 'compare-verdict', class: verdict.passed ? 'passed' : 'failed', dataset: { passed: String(verdict.passed) } },
      verdict.passed ? '✓ passed' : '✗ failed'),
    verdict.reasons.length > 0 ? el('ul', {}, verdict.reasons.map((reason) => el('li', {}, reason))) : null,
    el('div', { class: 'compare-grid' }, side('expected', comparison.expected, comparison.signals),
      side('actual', comparison.actual, comparison.signals)),
    el('h2', {}, 'Traces'),
    el('p', {}, `${count(traces.expected)} expected: ${count(traces.complete)} complete, ${count(traces.incomplete)} incomplete, ${count(traces.dropped)} dropped; ${count(traces.unexpected)} unexpected`),
    el('h2', {}, 'Attribute changes'),
    changes.length === 0 ? el('p', { class: 'muted' }, 'None.')
      : table({ id: 'compare-attribute-changes' }, ['Signal', 'Where', 'Key', 'Change', el('th', { class: 'num' }, 'Items'), 'Allowed'],
        changes.map((change) => el('tr', {}, el('td', {}, change.signal), el('td', {}, String(change.location)),
          el('td', {}, el('code', {}, change.key)), el('td', {}, typeof change.change === 'string' ? change.change : JSON.stringify(change.change)),
          el('td', { class: 'num' }, count(change.items)), el('td', {}, change.allowed ? 'yes' : 'no')))),
    el('h2', {}, 'Field changes'),
    fields.length === 0 ? el('p', { class: 'muted' }, 'None.')
      : table({ id: 'compare-field-changes' }, ['Signal', 'Field', 'From', 'To', el('th', { class: 'num' }, 'Items')],
        fields.map((change) => el('tr', {}, el('td', {}, change.signal), el('td', {}, change.field),
          el('td', { class: 'mono' }, change.from ?? '–'), el('td', { class: 'mono' }, change.to ?? '–'), el('td', { class: 'num' }, count(change.items))))),
    el('div', { class: 'buttons' }, download));
}

/** The parts of a replay report a comparison reads (the rest would only
 * weigh on the request body's limit). */
function reportForCompare(report) {
  const { session, options, passes, idSeed, reason, counts } = report;
  return { session, options, passes, idSeed, reason, counts };
}

export async function compareView(root, _params, context) {
  const [sessions, replayList] = await Promise.all([
    allSessions(context.signal),
    api('/api/v1/replays', { signal: context.signal }),
  ]);
  const replays = (replayList.replays || []).filter((job) => job.report);
  const replaySelect = el('select', { id: 'compare-replay-select', name: 'replayReport' });
  const listReplays = () => {
    const expected = form.elements.expected.value;
    replaySelect.replaceChildren(el('option', { value: '' }, '(none: the session as stored)'),
      ...replays.filter((job) => job.sessionId === expected)
        .map((job) => el('option', { value: job.id }, `${job.id} (${job.state})`)));
  };
  const params = routeQuery();
  const status = el('p', { id: 'compare-status', class: 'muted', 'aria-live': 'polite' });
  const holder = el('div');
  const form = el('form', { id: 'compare-form', class: 'filters' },
    sessionSelect('expected', 'Expected (what was sent)', sessions, params.get('expected')),
    sessionSelect('actual', 'Actual (what was delivered)', sessions, params.get('actual')),
    el('div', {}, el('label', { for: 'compare-replay-select' }, 'Replay that sent it (its report)'), replaySelect),
    el('button', { type: 'submit', class: 'primary' }, 'Compare'));
  form.elements.expected.addEventListener('change', listReplays);
  listReplays();
  root.append(el('h1', {}, 'Compare two sessions'), form, status, holder);

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const button = form.querySelector('button[type=submit]');
    const body = { expected: form.elements.expected.value, actual: form.elements.actual.value };
    const replay = replays.find((job) => job.id === replaySelect.value);
    if (replay) body.replayReport = reportForCompare(replay.report);
    button.disabled = true;
    holder.replaceChildren();
    showError(null);
    try {
      let job = await api('/api/v1/compares', { method: 'POST', body, signal: context.signal });
      while (job.state === 'running' && context.alive) {
        const progress = job.progress || {};
        status.textContent = `Comparing (${job.id}): ${count(progress.recordsDone)} of ${count(progress.recordsTotal)} records read…`;
        job = await api(`/api/v1/compares/${encodeURIComponent(job.id)}?wait=30`, { signal: context.signal });
      }
      if (!context.alive) return;
      if (job.state !== 'completed' || !job.comparison) {
        status.textContent = '';
        showError(`The comparison ${job.id} ended ${job.state}${job.error ? `: ${job.error}` : ''}`);
        return;
      }
      status.textContent = `Comparison ${job.id}`;
      holder.replaceChildren(result(job, job.comparison));
    } catch (error) {
      if (error.name !== 'AbortError') showError(error.message);
    } finally {
      button.disabled = false;
    }
  });
}
