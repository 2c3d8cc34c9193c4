// The single page: hash routes, one view at a time in #view. Each view is a
// function (root, params, context) that draws into root and resolves once its
// data is drawn; the router then sets #view[data-ready=true]. A view may
// register cleanups (timers, streams, observers) with context.onLeave.

import { sessionsView } from './sessions.js';
import { sessionView } from './session.js';
import { tracesView } from './traces.js';
import { traceView } from './waterfall.js';
import { liveView } from './live.js';
import { replayView } from './replay.js';
import { compareView } from './compare.js';
import { showError } from './format.js';

const ROUTES = [
  { pattern: /^\/sessions$/, view: 'sessions', nav: 'nav-sessions', draw: sessionsView },
  { pattern: /^\/sessions\/([^/]+)$/, view: 'session', nav: 'nav-sessions', draw: sessionView },
  { pattern: /^\/sessions\/([^/]+)\/traces$/, view: 'traces', nav: 'nav-sessions', draw: tracesView },
  { pattern: /^\/sessions\/([^/]+)\/traces\/([^/]+)$/, view: 'trace', nav: 'nav-sessions', draw: traceView },
  { pattern: /^\/live$/, view: 'live', nav: 'nav-live', draw: liveView },
  { pattern: /^\/replays\/([^/]+)$/, view: 'replay', nav: 'nav-live', draw: replayView },
  { pattern: /^\/compare$/, view: 'compare', nav: 'nav-compare', draw: compareView },
];

const root = document.getElementById('view');
let current = null;

function leave() {
  if (!current) return;
  current.alive = false;
  current.controller.abort();
  for (const cleanup of current.cleanups.splice(0)) {
    try {
      cleanup();
    } catch (error) {
      console.warn('a view did not clean up', error);
    }
  }
}

async function route() {
  const hash = window.location.hash.replace(/^#/, '') || '/sessions';
  const path = hash.split('?')[0];
  const match = ROUTES.map((candidate) => ({ candidate, found: candidate.pattern.exec(path) }))
    .find(({ found }) => found);
  leave();
  showError(null);
  root.replaceChildren();
  delete root.dataset.ready;
  if (!match) {
    window.location.replace('#/sessions');
    return;
  }
  const { candidate, found } = match;
  document.body.dataset.view = candidate.view;
  for (const link of document.querySelectorAll('header nav a')) {
    if (link.id === candidate.nav) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  const context = { alive: true, controller: new AbortController(), cleanups: [] };
  context.signal = context.controller.signal;
  context.onLeave = (cleanup) => context.cleanups.push(cleanup);
  current = context;
  const params = found.slice(1).map(decodeURIComponent);
  try {
    await candidate.draw(root, params, context);
    if (context.alive) root.dataset.ready = 'true';
  } catch (error) {
    if (!context.alive || error.name === 'AbortError') return;
    showError(error.message || String(error));
  }
}

window.addEventListener('hashchange', route);
route();
