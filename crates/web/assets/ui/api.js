// The API client: every call sends the token kept in sessionStorage; a 401
// asks for the token (#token-dialog) and makes the call again. Errors carry
// the API's `error.message`.

const TOKEN_KEY = 'otlp-tape.api-token';

/** An answer that is not 2xx: its status and the API's message. */
export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

let asking = null;

/** Opens the token dialog (once, however many calls wait) and resolves when
 * a token is given. */
function askForToken() {
  if (asking) return asking;
  const dialog = document.getElementById('token-dialog');
  const input = document.getElementById('token-input');
  asking = new Promise((resolve) => {
    const done = (event) => {
      const token = input.value.trim();
      if (!token) {
        event.preventDefault();
        return;
      }
      sessionStorage.setItem(TOKEN_KEY, token);
      input.value = '';
      dialog.removeEventListener('submit', done);
      asking = null;
      resolve();
    };
    dialog.addEventListener('submit', done);
    if (!dialog.open) dialog.showModal();
    input.focus();
  });
  return asking;
}

// The dialog may not be dismissed without a token: nothing works without one.
document.getElementById('token-dialog').addEventListener('cancel', (event) => event.preventDefault());

function headers(json) {
  const result = {};
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) result.Authorization = `Bearer ${token}`;
  if (json) result['Content-Type'] = 'application/json';
  return result;
}

async function messageOf(response) {
  const text = await response.text();
  try {
    const body = JSON.parse(text);
    if (body && body.error && body.error.message) return body.error.message;
  } catch {
    // Not JSON: the text itself says what went wrong.
  }
  return text || `${response.status} ${response.statusText}`;
}

/** The response to a request, after the token dance; throws ApiError for
 * an answer that is not 2xx. */
export async function request(path, { method = 'GET', body, signal } = {}) {
  for (;;) {
    const response = await fetch(path, {
      method,
      headers: headers(body !== undefined),
      body: body === undefined ? undefined : JSON.stringify(body),
      signal,
      cache: 'no-store',
    });
    if (response.status === 401) {
      await response.body?.cancel();
      sessionStorage.removeItem(TOKEN_KEY);
      await askForToken();
      continue;
    }
    if (!response.ok) throw new ApiError(response.status, await messageOf(response));
    return response;
  }
}

/** The JSON (or text) of a call; `null` for 204. */
export async function api(path, options = {}) {
  const response = await request(path, options);
  if (response.status === 204) return null;
  const type = response.headers.get('content-type') || '';
  return type.includes('json') ? response.json() : response.text();
}

/** Every session (the list endpoint a page at a time). */
export async function allSessions(signal) {
  const sessions = [];
  for (let offset = 0; ; offset += 1000) {
    const page = await api(`/api/v1/sessions?limit=1000&offset=${offset}`, { signal });
    sessions.push(...page.sessions);
    if (sessions.length >= page.total || page.sessions.length === 0) return sessions;
  }
}

/** The session of an id, for a path. */
export function sessionPath(id) {
  return `/api/v1/sessions/${encodeURIComponent(id)}`;
}
