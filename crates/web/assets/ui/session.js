// #/sessions/{id}: a session's metadata, phases and annotations, and its
// timeline; a range dragged on the timeline can be annotated, replayed,
// exported or listed as traces.

import { ApiError, api, sessionPath } from './api.js';
import { drawTimeline } from './timeline.js';
import {
  bytes, count, duration, el, mount, query, rfc3339, secondsBetween, showError, table, time, value,
} from './format.js';

const PHASE_PREFIX = 'test.phase.';

/** The phases to draw: from the phase annotations, else the metadata's. */
function phasesOf(metadata, annotations) {
  const fromAnnotations = annotations
    .filter((annotation) => (annotation.annotationKey || '').startsWith(PHASE_PREFIX))
    .map((annotation) => ({
      name: annotation.annotationKey.slice(PHASE_PREFIX.length),
      start: annotation.timeRangeStart,
      end: annotation.timeRangeEnd,
      flags: (annotation.annotationValue || {}).flags || [],
      description: (annotation.annotationValue || {}).description || '',
    }));
  if (fromAnnotations.length > 0) return fromAnnotations;
  return (metadata.phases || []).map((phase) => ({ ...phase, description: '' }));
}

const seconds = (rfc) => new Date(rfc).getTime() / 1000;

/** An RFC 3339 time for a chart position, kept within the session: the
 * session's own start or end when the range touches them. */
function clampTime(value, metadata) {
  if (value <= seconds(metadata.startTime)) return metadata.startTime;
  if (metadata.endTime && value >= seconds(metadata.endTime)) return metadata.endTime;
  return rfc3339(value);
}

function metaList(metadata) {
  const rows = [
    ['Session', el('code', {}, metadata.sessionId)],
    ['Type', metadata.sessionType],
    ['Status', metadata.status],
    ['Description', metadata.description || '–'],
    ['Start', time(metadata.startTime)],
    ['End', time(metadata.endTime)],
    ['Duration', metadata.endTime ? duration(secondsBetween(metadata.startTime, metadata.endTime)) : '–'],
    ['Items', `${count(metadata.capturedTraces)} spans · ${count(metadata.capturedMetrics)} data points · ${count(metadata.capturedLogs)} log records`],
    ['Requests', metadata.requestCounts
      ? `${count(metadata.requestCounts.traces)} traces · ${count(metadata.requestCounts.metrics)} metrics · ${count(metadata.requestCounts.logs)} logs` : '–'],
    ['Size', `${bytes(metadata.totalSizeBytes)} in ${count((metadata.blobs || []).length)} blobs`],
    ['Flags', (metadata.enabledFlags || []).join(', ') || '–'],
    ['Content hash', el('code', {}, metadata.contentHash || '–')],
  ];
  return el('dl', { id: 'session-meta', class: 'meta' }, rows.flatMap(([name, shown]) => [el('dt', {}, name), el('dd', {}, shown)]));
}

function offset(metadata, at) {
  return duration(Math.max(0, secondsBetween(metadata.startTime, at)));
}

function phaseTable(metadata, phases) {
  if (phases.length === 0) return el('p', { id: 'session-phases', class: 'muted' }, 'No phases.');
  return table({ id: 'session-phases' }, ['Phase', 'From', 'Until', 'Offset', 'Flags', 'Description'],
    phases.map((phase) => el('tr', { dataset: { phase: phase.name } },
      el('td', {}, phase.name), el('td', {}, time(phase.start)), el('td', {}, time(phase.end)),
      el('td', {}, `${offset(metadata, phase.start)} – ${offset(metadata, phase.end)}`),
      el('td', {}, (phase.flags || []).join(', ')), el('td', {}, phase.description))));
}

function annotationTable(metadata, annotations) {
  if (annotations.length === 0) return el('p', { id: 'session-annotations', class: 'muted' }, 'No annotations.');
  return table({ id: 'session-annotations' }, ['Key', 'Type', 'Range', 'Value', 'By'],
    annotations.map((annotation) => el('tr', { dataset: { key: annotation.annotationKey } },
      el('td', {}, el('code', {}, annotation.annotationKey)), el('td', {}, annotation.annotationType),
      el('td', {}, `${offset(metadata, annotation.timeRangeStart)} – ${offset(metadata, annotation.timeRangeEnd)}`),
      el('td', { class: 'mono' }, value(annotation.annotationValue)), el('td', {}, annotation.createdBy || ''))));
}

function marksOf(annotations) {
  return annotations.map((annotation) => ({
    key: annotation.annotationKey,
    label: `${annotation.annotationKey}${annotation.annotationValue && annotation.annotationValue.description ? `: ${annotation.annotationValue.description}` : ''}`,
    start: seconds(annotation.timeRangeStart),
    end: seconds(annotation.timeRangeEnd),
  }));
}

function rangesOf(phases) {
  return phases.map((phase) => ({ name: phase.name, start: seconds(phase.start), end: seconds(phase.end) }));
}

export async function sessionView(root, [id], context) {
  const path = sessionPath(id);
  const [metadata, annotations] = await Promise.all([
    api(path, { signal: context.signal }),
    api(`${path}/annotations`, { signal: context.signal }),
  ]);
  let phases = phasesOf(metadata, annotations);
  const hash = `#/sessions/${encodeURIComponent(id)}`;
  const phaseHolder = el('div', {}, phaseTable(metadata, phases));
  const annotationHolder = el('div', {}, annotationTable(metadata, annotations));
  const timelineBox = el('div', { id: 'timeline' });
  const note = el('p', { class: 'chart-note' });
  const actions = el('section', { id: 'selection-actions', hidden: true, 'aria-label': 'Selected range' });

  mount(root,
    el('h1', {}, 'Session ', el('code', {}, id)),
    el('div', { class: 'buttons' },
      el('a', { href: `${hash}/traces` }, 'Traces of the whole session'), ' · ',
      el('a', { href: `#/compare?expected=${encodeURIComponent(id)}` }, 'Compare with…'), ' · ',
      el('a', { href: `#/live${query({ session: id })}` }, 'Replay…')),
    el('h2', {}, 'Timeline'), timelineBox, note, actions,
    el('div', { class: 'columns' },
      el('section', { class: 'panel' }, el('h2', {}, 'Metadata'), metaList(metadata)),
      el('section', { class: 'panel' }, el('h2', {}, 'Phases'), phaseHolder,
        el('h2', {}, 'Annotations'), annotationHolder)));

  if (metadata.status === 'active') {
    timelineBox.append(el('p', { class: 'notice', dataset: { active: 'true' } },
      'This session is still being recorded: its timeline is shown once it is finished.'));
    return;
  }
  let timeline;
  try {
    timeline = await api(`${path}/timeline`, { signal: context.signal });
  } catch (error) {
    if (error instanceof ApiError && error.status === 409) {
      timelineBox.append(el('p', { class: 'notice', dataset: { active: 'true' } }, `Still being recorded: ${error.message}`));
      return;
    }
    throw error;
  }
  if (!context.alive) return;

  const startSecond = Math.floor(seconds(metadata.startTime));
  const endSecond = Math.floor(seconds(metadata.endTime || metadata.startTime));
  let selection = null;
  const chart = drawTimeline(timelineBox, {
    rows: timeline.rows || [],
    startSecond,
    endSecond,
    ranges: rangesOf(phases),
    marks: marksOf(annotations),
    onSelect: (range) => {
      selection = range;
      showSelection();
    },
  });
  context.onLeave(() => chart.destroy());
  note.textContent = chart.bucket === 1
    ? `${count(chart.points)} seconds, items per second of receive time. Drag over the chart to select a range.`
    : `${count(chart.points)} buckets of ${chart.bucket} s (the session is too long for a point per second): the average items per second in each. Drag over the chart to select a range.`;

  note.append(' ', el('button', { type: 'button', id: 'timeline-reset', onclick: () => { chart.zoom(); selection = null; showSelection(); } }, 'Show the whole session'));
  const rangeText = el('p', { id: 'selection-range' });
  const formHolder = el('div');
  const resultHolder = el('div', { 'aria-live': 'polite' });
  actions.append(
    rangeText,
    el('div', { class: 'buttons' },
      el('button', { type: 'button', id: 'action-annotate', onclick: annotateForm }, 'Annotate…'),
      el('button', { type: 'button', id: 'action-replay', onclick: () => { window.location.hash = `#/live${query(windowOf())}`; } }, 'Replay this window…'),
      el('button', { type: 'button', id: 'action-export', onclick: exportForm }, 'Export…'),
      el('button', { type: 'button', id: 'action-traces', onclick: () => {
        const { from, until } = windowOf();
        window.location.hash = `${hash}/traces${query({ from, until })}`;
      } }, 'List traces'),
      el('button', { type: 'button', id: 'action-zoom', onclick: () => { chart.zoom(selection.from, selection.until); selection = null; showSelection(); } }, 'Zoom in')),
    formHolder, resultHolder);

  function windowOf() {
    return { session: id, from: clampTime(selection.from, metadata), until: clampTime(selection.until, metadata) };
  }

  function showSelection() {
    formHolder.replaceChildren();
    resultHolder.replaceChildren();
    if (!selection) {
      actions.hidden = true;
      return;
    }
    const { from, until } = windowOf();
    actions.hidden = false;
    actions.dataset.from = from;
    actions.dataset.until = until;
    rangeText.textContent = `Selected ${time(from)} – ${time(until)} (${duration(secondsBetween(from, until))}, offset ${offset(metadata, from)} – ${offset(metadata, until)})`;
  }

  function annotateForm() {
    const { from, until } = windowOf();
    const form = el('form', { id: 'annotate-form' },
      el('div', {}, el('label', { for: 'annotate-key' }, 'Key (test.phase.NAME makes a phase)'),
        el('input', { id: 'annotate-key', name: 'key', required: true, value: 'note', pattern: '\\S+' })),
      el('div', {}, el('label', { for: 'annotate-description' }, 'Description'),
        el('input', { id: 'annotate-description', name: 'description' })),
      el('button', { type: 'submit', class: 'primary' }, 'Add annotation'));
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      const body = { key: form.elements.key.value.trim(), from, until };
      const description = form.elements.description.value.trim();
      if (description) body.description = description;
      try {
        const answer = await api(`${path}/annotations`, { method: 'POST', body, signal: context.signal });
        if (answer.added) annotations.push(answer.annotation);
        phases = phasesOf(metadata, annotations);
        phaseHolder.replaceChildren(phaseTable(metadata, phases));
        annotationHolder.replaceChildren(annotationTable(metadata, annotations));
        chart.setOverlays({ ranges: rangesOf(phases), marks: marksOf(annotations) });
        formHolder.replaceChildren();
        resultHolder.replaceChildren(el('p', { class: 'ok', id: 'annotate-result' },
          answer.added ? `Added ${answer.annotation.annotationKey}.` : 'The session held this annotation already.'));
        showError(null);
      } catch (error) {
        showError(error.message);
      }
    });
    formHolder.replaceChildren(form);
    form.elements.key.focus();
  }

  function exportForm() {
    const window_ = windowOf();
    const form = el('form', { id: 'export-form' },
      el('div', {}, el('label', { for: 'export-format' }, 'Format'),
        el('select', { id: 'export-format', name: 'format' }, ['parquet', 'otlp-json', 'otlp-proto'].map((format) => el('option', { value: format }, format)))),
      el('div', {}, el('label', { for: 'export-out' }, 'Out (under --export-dir, or s3://bucket/prefix)'),
        el('input', { id: 'export-out', name: 'out', required: true, value: `${id}-window` })),
      el('div', { class: 'check' }, el('input', { id: 'export-by-phase', name: 'byPhase', type: 'checkbox' }),
        ' ', el('label', { for: 'export-by-phase' }, 'by phase')),
      el('div', { class: 'check' }, el('input', { id: 'export-force', name: 'force', type: 'checkbox' }),
        ' ', el('label', { for: 'export-force' }, 'replace files')),
      el('button', { type: 'submit', class: 'primary' }, 'Start export'));
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      const body = { ...window_, format: form.elements.format.value, out: form.elements.out.value.trim() };
      if (form.elements.byPhase.checked) body.byPhase = true;
      if (form.elements.force.checked) body.force = true;
      try {
        let job = await api('/api/v1/exports', { method: 'POST', body, signal: context.signal });
        showError(null);
        const shown = el('p', { id: 'export-result', dataset: { jobId: job.id } });
        resultHolder.replaceChildren(shown);
        for (;;) {
          shown.dataset.state = job.state;
          shown.className = job.state === 'completed' ? 'ok' : job.state === 'running' ? 'muted' : 'bad';
          shown.textContent = `Export ${job.id}: ${job.state}`
            + (job.progress ? ` (${count(job.progress.recordsDone)} of ${count(job.progress.recordsTotal)} records, ${bytes(job.progress.bytesWritten)})` : '')
            + (job.outcome ? ` into ${job.outcome.location}` : '')
            + (job.error ? `: ${job.error}` : '');
          if (job.state !== 'running' || !context.alive) break;
          job = await api(`/api/v1/exports/${encodeURIComponent(job.id)}?wait=2`, { signal: context.signal });
        }
      } catch (error) {
        if (error.name !== 'AbortError') showError(error.message);
      }
    });
    formHolder.replaceChildren(form);
  }
}
