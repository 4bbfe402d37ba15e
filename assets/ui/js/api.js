// The REST client: every call carries the bearer token, errors become ApiError with the
// server's own message, a 401 ends the session, and paged routes follow their Link header.

import { session } from './session.js';

const BASE = '/api/v1';

/** An error answered by the server (or the network), with the message to show. */
export class ApiError extends Error {
  constructor(status, message, code = null, field = null) {
    super(message);
    this.status = status;
    this.code = code;
    this.field = field;
  }
}

let unauthorized = () => {};

/** Registers what happens when the server refuses the token (401). */
export function onUnauthorized(fn) {
  unauthorized = fn;
}

/** A query string from an object, skipping empty values. */
export function query(params = {}) {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== '') search.set(key, value);
  }
  const text = search.toString();
  return text ? `?${text}` : '';
}

async function request(method, path, { body, token = session.token, raw = false } = {}) {
  const headers = { Authorization: `Bearer ${token}` };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const url = path.startsWith('/api/') ? path : BASE + path;
  let response;
  try {
    response = await fetch(url, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: 'no-store',
    });
  } catch (error) {
    throw new ApiError(0, `cannot reach the server: ${error.message}`);
  }
  if (!response.ok) throw await errorOf(response);
  return raw ? response : response.json();
}

/** The ApiError of a failed response, from its `{"error": {code, message, field}}` body. */
async function errorOf(response) {
  let message = `${response.status} ${response.statusText}`;
  let code = null;
  let field = null;
  try {
    const body = await response.json();
    const error = body.error ?? body;
    message = error.message ?? message;
    code = error.code ?? null;
    field = error.field ?? null;
  } catch {
    // Not JSON: keep the status line.
  }
  const error = new ApiError(response.status, message, code, field);
  if (response.status === 401) unauthorized(error);
  return error;
}

/** The `rel="next"` target of a Link header, or null. */
function nextLink(response) {
  const header = response.headers.get('Link') ?? '';
  const match = header.match(/<([^>]+)>\s*;\s*rel="?next"?/);
  return match ? match[1] : null;
}

export const api = {
  get: (path) => request('GET', path),
  post: (path, body) => request('POST', path, { body }),
  del: (path) => request('DELETE', path),

  /** One page of a paged route: `{items, next}` (`next` is a path, or null on the last). */
  async page(path) {
    const response = await request('GET', path, { raw: true });
    return { items: await response.json(), next: nextLink(response) };
  },

  /** Every item of a paged route, following its Link header to the last page. */
  async all(path) {
    const items = [];
    for (let next = path; next;) {
      const page = await api.page(next);
      items.push(...page.items);
      next = page.next;
    }
    return items;
  },

  /** Checks a token by asking for a stream ticket: `{ticket, expires, role}`. */
  ticket: (token = session.token) => request('POST', '/stream/ticket', { token }),

  /** Fetches `path` with the token and saves the body as `filename`. */
  async download(path, filename) {
    const response = await request('GET', path, { raw: true });
    const blob = await response.blob();
    const url = URL.createObjectURL(blob);
    const anchor = document.createElement('a');
    anchor.href = url;
    anchor.download = filename;
    document.body.append(anchor);
    anchor.click();
    anchor.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10_000);
  },
};
