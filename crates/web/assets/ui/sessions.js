// #/sessions: every session of the store in a sortable, filterable table
// with totals; per row: open, verify, compare with..., delete.

import { allSessions, api, sessionPath } from './api.js';
import { bytes, count, duration, el, mount, secondsBetween, showError, time } from './format.js';

const COLUMNS = [
  { key: 'sessionId', label: 'Session', value: (s) => s.sessionId },
  { key: 'sessionType', label: 'Type', value: (s) => s.sessionType },
  { key: 'status', label: 'Status', value: (s) => s.status },
  { key: 'startTime', label: 'Start (UTC)', value: (s) => s.startTime || '' },
  { key: 'duration', label: 'Duration', num: true, value: sessionSeconds },
  { key: 'traces', label: 'Spans', num: true, value: (s) => (s.items || {}).traces || 0 },
  { key: 'metrics', label: 'Points', num: true, value: (s) => (s.items || {}).metrics || 0 },
  { key: 'logs', label: 'Logs', num: true, value: (s) => (s.items || {}).logs || 0 },
  { key: 'totalSizeBytes', label: 'Size', num: true, value: (s) => s.totalSizeBytes || 0 },
];

function sessionSeconds(session) {
  return session.startTime && session.endTime ? secondsBetween(session.startTime, session.endTime) : 0;
}

function items(session) {
  const counts = session.items || {};
  return (counts.traces || 0) + (counts.metrics || 0) + (counts.logs || 0);
}

/** Asks #confirm-dialog; resolves true for yes. */
export function confirmDialog(message, yesLabel = 'Delete') {
  const dialog = document.getElementById('confirm-dialog');
  const yes = document.getElementById('confirm-yes');
  const no = document.getElementById('confirm-no');
  document.getElementById('confirm-message').textContent = message;
  yes.textContent = yesLabel;
  return new Promise((resolve) => {
    const finish = (answer) => {
      yes.removeEventListener('click', onYes);
      no.removeEventListener('click', onNo);
      dialog.removeEventListener('cancel', onNo);
      if (dialog.open) dialog.close();
      resolve(answer);
    };
    const onYes = () => finish(true);
    const onNo = (event) => {
      event.preventDefault();
      finish(false);
    };
    yes.addEventListener('click', onYes);
    no.addEventListener('click', onNo);
    dialog.addEventListener('cancel', onNo);
    dialog.showModal();
    no.focus();
  });
}

export async function sessionsView(root, _params, context) {
  const sessions = await allSessions(context.signal);
  const state = { sort: 'startTime', descending: true, text: '', type: '', status: '' };

  const textFilter = el('input', { id: 'filter-text', type: 'search', placeholder: 'id or description' });
  const typeFilter = el('select', { id: 'filter-type' }, el('option', { value: '' }, 'all'),
    ['seed', 'capture', 'training'].map((type) => el('option', { value: type }, type)));
  const statusFilter = el('select', { id: 'filter-status' }, el('option', { value: '' }, 'all'),
    ['active', 'completed', 'failed'].map((status) => el('option', { value: status }, status)));
  const totals = el('p', { id: 'sessions-totals', 'aria-live': 'polite' });
  const headers = COLUMNS.map((column) => el('th', {
    scope: 'col', class: column.num ? 'num' : null, dataset: { sort: column.key },
    'aria-sort': column.key === state.sort ? 'descending' : 'none',
  }, el('button', { type: 'button', onclick: () => sortBy(column.key) }, column.label)));
  const body = el('tbody');
  const tableElement = el('table', { id: 'sessions-table' },
    el('thead', {}, el('tr', {}, headers, el('th', { scope: 'col' }, 'Actions'))), body);

  mount(root,
    el('h1', {}, 'Sessions'),
    el('div', { class: 'filters', role: 'search' },
      el('div', {}, el('label', { for: 'filter-text' }, 'Text'), textFilter),
      el('div', {}, el('label', { for: 'filter-type' }, 'Type'), typeFilter),
      el('div', {}, el('label', { for: 'filter-status' }, 'Status'), statusFilter)),
    totals,
    sessions.length === 0
      ? el('p', { class: 'notice' }, 'The store holds no sessions yet: start a capture or a seed in ', el('a', { href: '#/live' }, 'Live'), '.')
      : null,
    tableElement);

  textFilter.addEventListener('input', () => { state.text = textFilter.value.trim().toLowerCase(); draw(); });
  typeFilter.addEventListener('change', () => { state.type = typeFilter.value; draw(); });
  statusFilter.addEventListener('change', () => { state.status = statusFilter.value; draw(); });

  function sortBy(key) {
    state.descending = state.sort === key ? !state.descending : false;
    state.sort = key;
    for (const header of headers) {
      header.setAttribute('aria-sort', header.dataset.sort !== key ? 'none' : state.descending ? 'descending' : 'ascending');
    }
    draw();
  }

  function shown() {
    const column = COLUMNS.find((candidate) => candidate.key === state.sort);
    return sessions
      .filter((s) => !state.type || s.sessionType === state.type)
      .filter((s) => !state.status || s.status === state.status)
      .filter((s) => !state.text || s.sessionId.toLowerCase().includes(state.text)
        || (s.description || '').toLowerCase().includes(state.text))
      .sort((a, b) => {
        const x = column.value(a);
        const y = column.value(b);
        const order = x < y ? -1 : x > y ? 1 : 0;
        return state.descending ? -order : order;
      });
  }

  function draw() {
    const list = shown();
    body.replaceChildren(...list.map(row));
    const itemCount = list.reduce((total, s) => total + items(s), 0);
    const size = list.reduce((total, s) => total + (s.totalSizeBytes || 0), 0);
    totals.textContent = `${count(list.length)} of ${count(sessions.length)} sessions · ${count(itemCount)} items · ${bytes(size)}`;
  }

  function row(session) {
    const id = session.sessionId;
    const result = el('span', { dataset: { verifyResult: '' }, 'aria-live': 'polite' });
    const counts = session.items || {};
    const tr = el('tr', { dataset: { sessionId: id } },
      el('td', {}, el('a', { href: `#/sessions/${encodeURIComponent(id)}` }, id),
        session.description ? el('div', { class: 'muted' }, session.description) : null),
      el('td', {}, session.sessionType),
      el('td', { class: session.status === 'failed' ? 'bad' : null }, session.status),
      el('td', {}, time(session.startTime)),
      el('td', { class: 'num' }, session.endTime ? duration(sessionSeconds(session)) : '–'),
      el('td', { class: 'num' }, count(counts.traces)),
      el('td', { class: 'num' }, count(counts.metrics)),
      el('td', { class: 'num' }, count(counts.logs)),
      el('td', { class: 'num' }, bytes(session.totalSizeBytes)),
      el('td', {},
        el('div', { class: 'buttons' },
          el('button', { type: 'button', dataset: { action: 'open' }, onclick: () => { window.location.hash = `#/sessions/${encodeURIComponent(id)}`; } }, 'Open'),
          el('button', { type: 'button', dataset: { action: 'verify' }, onclick: (event) => verify(event.currentTarget, id, result) }, 'Verify'),
          el('button', { type: 'button', dataset: { action: 'compare' }, onclick: () => { window.location.hash = `#/compare?expected=${encodeURIComponent(id)}`; } }, 'Compare with…'),
          el('button', { type: 'button', class: 'danger', dataset: { action: 'delete' }, onclick: () => remove(id) }, 'Delete')),
        result));
    return tr;
  }

  async function verify(button, id, result) {
    button.disabled = true;
    result.textContent = 'verifying…';
    result.className = 'muted';
    delete result.dataset.outcome;
    try {
      const answer = await api(`${sessionPath(id)}/verify`, { method: 'POST', signal: context.signal });
      const problems = answer.problems || [];
      result.dataset.outcome = problems.length === 0 ? 'intact' : 'problems';
      result.className = problems.length === 0 ? 'ok' : 'bad';
      result.textContent = problems.length === 0
        ? `intact: ${count(answer.blobsChecked)} blobs, ${count(answer.records)} records, ${count(answer.items)} items`
        : `${count(problems.length)} problem(s): ${problems.join('; ')}`;
    } catch (error) {
      result.dataset.outcome = 'error';
      result.className = 'bad';
      result.textContent = error.message;
    } finally {
      button.disabled = false;
    }
  }

  async function remove(id) {
    if (!(await confirmDialog(`Delete session ${id} and everything stored under it?`))) return;
    try {
      await api(sessionPath(id), { method: 'DELETE', signal: context.signal });
      sessions.splice(sessions.findIndex((s) => s.sessionId === id), 1);
      showError(null);
      draw();
    } catch (error) {
      showError(error.message);
    }
  }

  draw();
}
