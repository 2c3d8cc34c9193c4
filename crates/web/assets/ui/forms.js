// The forms of #/live that start jobs: a capture, a replay and a seed. Their
// inputs are named by the API's JSON keys; only the fields the user filled
// are sent, so the command's own defaults apply to the rest.

import { api } from './api.js';
import { el } from './format.js';

// Field kinds: text, number (sent as a number), flexible (a number when it
// reads as one, else the text: `speed` takes 10 or "max"), list (comma
// separated, sent as an array), check (sent as true when ticked), select.
const CAPTURE_FIELDS = [
  { name: 'sessionId', label: 'Session id', hint: 'default capture-YYYYMMDD-HHMMSS-…' },
  { name: 'description', label: 'Description' },
  { name: 'signals', label: 'Signals', hint: 'all, or traces,metrics,logs' },
  { name: 'maxDuration', label: 'Max duration', hint: 'such as 10m' },
  { name: 'maxSizeMb', label: 'Max size (MiB)', kind: 'number' },
  { name: 'flags', label: 'Flags', kind: 'list', hint: 'comma separated' },
  { name: 'diagnosticSessionId', label: 'Diagnostic session id' },
  { name: 'durable', label: 'durable (acknowledge once on stable storage)', kind: 'check' },
];

const REPLAY_FIELDS = [
  { name: 'session', label: 'Session', kind: 'session', required: true },
  { name: 'endpoint', label: 'Endpoint', hint: 'base URL of the target: scheme, host and port', required: true },
  { name: 'protocol', label: 'Protocol', kind: 'select', options: ['', 'grpc', 'http/protobuf', 'http/json'] },
  { name: 'speed', label: 'Speed', kind: 'flexible', hint: 'a factor such as 10, or max' },
  { name: 'timestamps', label: 'Timestamps', kind: 'select', options: ['', 'none', 'relative', 'current'] },
  { name: 'passes', label: 'Passes', kind: 'number', hint: 'implies loop' },
  { name: 'duration', label: 'Duration', hint: 'the longest it runs, such as 10m' },
  { name: 'from', label: 'From', hint: 'offset such as 30s, or RFC 3339' },
  { name: 'until', label: 'Until', hint: 'offset or RFC 3339' },
  { name: 'phase', label: 'Phase' },
  { name: 'services', label: 'Services', kind: 'list', hint: 'comma separated' },
  { name: 'rateLimit', label: 'Rate limit (items/s)', kind: 'number' },
  { name: 'concurrency', label: 'Concurrency', kind: 'number' },
  { name: 'idSeed', label: 'Id seed', kind: 'number' },
  { name: 'maxFailures', label: 'Max failures', kind: 'flexible', hint: 'a number or unlimited' },
  { name: 'maxAttempts', label: 'Max attempts', kind: 'number' },
  { name: 'compression', label: 'Compression', kind: 'select', options: ['', 'gzip', 'none'] },
  { name: 'timeout', label: 'Timeout', hint: 'such as 10s' },
  { name: 'header', label: 'Headers', kind: 'list', hint: 'KEY=VALUE, comma separated' },
  { name: 'loop', label: 'loop', kind: 'check' },
  { name: 'traces', label: 'traces', kind: 'check' },
  { name: 'metrics', label: 'metrics', kind: 'check' },
  { name: 'logs', label: 'logs', kind: 'check' },
  { name: 'regenerateIds', label: 'regenerate ids', kind: 'check' },
  { name: 'keepIds', label: 'keep ids', kind: 'check' },
  { name: 'insecure', label: 'insecure (TLS without verification)', kind: 'check' },
  { name: 'skipCorrupt', label: 'skip corrupt blobs', kind: 'check' },
];

const SEED_FIELDS = [
  { name: 'pattern', label: 'Pattern', kind: 'pattern', required: true },
  { name: 'sessionId', label: 'Session id', hint: 'default seed-…' },
  { name: 'preset', label: 'Preset', kind: 'select', options: ['', 'quick', 'basic'] },
  { name: 'duration', label: 'Duration', hint: 'such as 30s; default the pattern\'s' },
  { name: 'rate', label: 'Rate (traces/s)', kind: 'number' },
  { name: 'errorRate', label: 'Error rate', kind: 'number', hint: '0 to 1' },
  { name: 'seed', label: 'Seed', kind: 'number', hint: 'random unless given' },
  { name: 'start', label: 'Start', hint: 'RFC 3339 or now' },
  { name: 'signals', label: 'Signals', hint: 'all, or traces,metrics,logs' },
  { name: 'description', label: 'Description' },
];

function input(form, field, sessions, patterns) {
  const id = `${form}-${field.name}`;
  const common = { id, name: field.name, required: field.required ? true : null };
  if (field.kind === 'check') {
    return el('div', { class: 'check' }, el('input', { ...common, type: 'checkbox' }), ' ', el('label', { for: id }, field.label));
  }
  let control;
  if (field.kind === 'select') {
    control = el('select', common, field.options.map((option) => el('option', { value: option }, option || '(default)')));
  } else if (field.kind === 'session') {
    control = el('select', common, el('option', { value: '' }, '(choose a session)'),
      sessions.filter((session) => session.status === 'completed')
        .map((session) => el('option', { value: session.sessionId }, `${session.sessionId} (${session.sessionType})`)));
  } else if (field.kind === 'pattern') {
    const description = el('p', { class: 'hint', id: `${id}-description` });
    control = el('select', { ...common, 'aria-describedby': `${id}-description` },
      patterns.map((pattern) => el('option', { value: pattern.name, title: pattern.description, dataset: { description: pattern.description } },
        `${pattern.name} — ${pattern.description}`)));
    const describe = () => {
      const pattern = patterns.find((candidate) => candidate.name === control.value);
      description.textContent = pattern
        ? `${pattern.description} Phases: ${(pattern.phases || []).join(', ')}; default duration ${pattern.defaultDuration}.` : '';
    };
    control.addEventListener('change', describe);
    describe();
    return el('div', { class: 'wide' }, el('label', { for: id }, field.label), control, description);
  } else {
    control = el('input', { ...common, type: field.kind === 'number' ? 'number' : 'text', step: field.kind === 'number' ? 'any' : null, placeholder: field.hint || null });
  }
  return el('div', {}, el('label', { for: id }, field.label), control);
}

/** The JSON body of a form: only the filled fields, typed by kind. */
function body(form, fields) {
  const result = {};
  for (const field of fields) {
    const control = form.elements[field.name];
    if (field.kind === 'check') {
      if (control.checked) result[field.name] = true;
      continue;
    }
    const text = control.value.trim();
    if (text === '') continue;
    if (field.kind === 'number') result[field.name] = Number(text);
    else if (field.kind === 'flexible') result[field.name] = Number.isFinite(Number(text)) ? Number(text) : text;
    else if (field.kind === 'list') result[field.name] = text.split(',').map((part) => part.trim()).filter(Boolean);
    else result[field.name] = text;
  }
  return result;
}

function jobForm({ id, title, fields, path, kind, submitLabel, sessions, patterns, prefill, onStarted, signal }) {
  const form = el('form', { id, 'aria-labelledby': `${id}-title` },
    el('h2', { id: `${id}-title` }, title),
    el('div', { class: 'fields' }, fields.map((field) => input(id, field, sessions, patterns))),
    el('div', { class: 'buttons' }, el('button', { type: 'submit', class: 'primary' }, submitLabel)));
  for (const [name, shown] of Object.entries(prefill || {})) {
    const control = form.elements[name];
    if (!control || !shown) continue;
    if (control.tagName === 'SELECT' && ![...control.options].some((option) => option.value === shown)) {
      control.append(el('option', { value: shown }, shown));
    }
    control.value = shown;
  }
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const button = form.querySelector('button[type=submit]');
    const result = document.getElementById('form-result');
    button.disabled = true;
    try {
      const job = await api(path, { method: 'POST', body: body(form, fields), signal });
      const link = kind === 'replay' ? el('a', { href: `#/replays/${encodeURIComponent(job.id)}` }, 'watch it') : null;
      result.dataset.jobId = job.id;
      result.dataset.kind = kind;
      result.className = 'ok';
      result.replaceChildren(`Started ${kind} `, el('code', { id: 'form-result-id' }, job.id),
        link ? ' · ' : '', link || '');
      onStarted(job);
    } catch (error) {
      delete result.dataset.jobId;
      result.className = 'bad';
      result.replaceChildren(error.message);
    } finally {
      button.disabled = false;
    }
  });
  return form;
}

/** The three forms, with the replay form's fields prefilled from `prefill`
 * (the route's query: session, from, until, phase). */
export function jobForms({ sessions, patterns, prefill, onStarted, signal }) {
  const common = { sessions, patterns, onStarted, signal };
  return el('div', {},
    el('div', { id: 'form-result', 'aria-live': 'polite' }),
    el('div', { class: 'forms' },
      el('section', { class: 'panel' }, jobForm({ ...common, id: 'replay-form', title: 'Start a replay', fields: REPLAY_FIELDS, path: '/api/v1/replays', kind: 'replay', submitLabel: 'Start replay', prefill })),
      el('section', { class: 'panel' }, jobForm({ ...common, id: 'capture-form', title: 'Start a capture', fields: CAPTURE_FIELDS, path: '/api/v1/captures', kind: 'capture', submitLabel: 'Start capture' })),
      el('section', { class: 'panel' }, jobForm({ ...common, id: 'seed-form', title: 'Seed a session', fields: SEED_FIELDS, path: '/api/v1/seeds', kind: 'seed', submitLabel: 'Start seed' }))));
}
