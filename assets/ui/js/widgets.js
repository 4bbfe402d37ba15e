// Reusable pieces of page: panels, notices and toasts, buttons that run a request, the "Load
// older" pager of paged routes, a readable key/value rendering of nested JSON (evidence),
// pretty JSON, and coloured unified diffs.

import { api } from './api.js';
import { h, replace } from './dom.js';
import { bytes, compact, time, words } from './format.js';

/** A titled panel; `tools` go at the right of its heading. */
export function panel(title, { tools = [] } = {}, ...body) {
  return h('section', { class: 'panel' },
    h('header', { class: 'panel-head' }, h('h2', {}, title), h('div', { class: 'tools' }, tools)),
    h('div', { class: 'panel-body' }, body));
}

/** A short message in a panel: `tone` is info, error or muted. */
export function notice(text, tone = 'muted') {
  return h('p', { class: `notice ${tone}` }, text);
}

/** Shows a message in the corner for a few seconds. */
export function toast(text, tone = 'info') {
  const box = document.getElementById('toasts');
  const item = h('div', { class: `toast ${tone}`, role: 'status' }, text);
  box.append(item);
  setTimeout(() => item.remove(), tone === 'error' ? 8000 : 4000);
}

/**
 * A button that runs `run()` (a promise): disabled meanwhile, the server's message shown in a
 * toast on failure, `done(result)` on success.
 */
export function actionButton(label, run, { done = () => {}, attrs = {} } = {}) {
  const button = h('button', { type: 'button', ...attrs }, label);
  button.addEventListener('click', async () => {
    button.disabled = true;
    try {
      done(await run());
    } catch (error) {
      toast(error.message, 'error');
    } finally {
      button.disabled = false;
    }
  });
  return button;
}

/**
 * Reads a paged route from `path` a page at a time: each page's items go to `show(items)` while
 * `current()` holds, then `pager` (an element) offers the next page with a "Load older" button,
 * or shows `end()` after the last. Resolves once the first page is shown (rejects if it cannot
 * be read); a later page that fails is reported in a toast and can be asked for again.
 */
export async function loadPaged(pager, path, { show, current = () => true, end = () => null }) {
  const page = await api.page(path);
  if (!current()) return;
  show(page.items);
  replace(pager, page.next
    ? actionButton('Load older', () => loadPaged(pager, page.next, { show, current, end }))
    : end());
}

const MAX_ITEMS = 12;
const isPlain = (v) => v === null || typeof v !== 'object';

/** A leaf value, read by its key: `*_ms` instants as times, `*bytes*` as sizes. */
function leaf(key, value) {
  if (value === null || value === undefined) return h('span', { class: 'muted' }, '–');
  if (typeof value !== 'number') return h('span', {}, String(value));
  if (/(^|_)ms$/.test(key) && value > 1e12) return h('span', { title: String(value) }, time(value));
  if (/bytes/.test(key)) return h('span', { class: 'num' }, bytes(value));
  return h('span', { class: 'num' }, compact(value));
}

/**
 * Nested JSON as a key/value list: objects as definition lists, flat objects deep down and
 * short arrays of plain values inline, long lists cut.
 */
export function kvList(value, depth = 0, key = '') {
  if (isPlain(value)) return leaf(key, value);
  if (Array.isArray(value)) return kvArray(value, depth, key);
  const entries = Object.entries(value);
  if (!entries.length) return h('span', { class: 'muted' }, 'none');
  if (depth >= 2 && entries.every(([, v]) => isPlain(v))) {
    return h('span', { class: 'inline-kv' }, entries.map(([k, v], i) => [
      i ? ' · ' : '', h('span', { class: 'muted' }, `${words(k)} `), leaf(k, v)]));
  }
  return h('dl', { class: 'kv' }, entries.map(([k, item]) => [
    h('dt', {}, words(k)),
    h('dd', {}, depth > 5 ? h('code', {}, JSON.stringify(item)) : kvList(item, depth + 1, k)),
  ]));
}

function kvArray(list, depth, key) {
  if (!list.length) return h('span', { class: 'muted' }, 'none');
  if (list.every(isPlain)) {
    const shown = list.slice(0, MAX_ITEMS * 2).map((v) => (typeof v === 'number' ? compact(v) : String(v ?? '–')));
    const more = list.length > shown.length ? ` … (${list.length} in all)` : '';
    return h('span', { class: 'num' }, shown.join(', ') + more);
  }
  return h('ol', { class: 'kv-list' },
    list.slice(0, MAX_ITEMS).map((item) => h('li', {}, kvList(item, depth + 1, key))),
    list.length > MAX_ITEMS ? h('li', { class: 'muted' }, `… ${list.length - MAX_ITEMS} more`) : null);
}

/** Pretty-printed JSON in a pre block. */
export function jsonBlock(value) {
  return h('pre', { class: 'code' }, JSON.stringify(value, null, 2));
}

/** A unified diff with added, removed and hunk lines coloured. */
export function diffBlock(text) {
  const pre = h('pre', { class: 'code diff' });
  if (!text) return replace(pre, h('span', { class: 'muted' }, '(no change: first version)'));
  for (const lineText of text.split('\n')) {
    let kind = '';
    if (lineText.startsWith('+++') || lineText.startsWith('---')) kind = 'file';
    else if (lineText.startsWith('+')) kind = 'add';
    else if (lineText.startsWith('-')) kind = 'del';
    else if (lineText.startsWith('@@')) kind = 'hunk';
    pre.append(h('span', { class: `line ${kind}` }, lineText), '\n');
  }
  return pre;
}

/** A table with a header row; `body` is the tbody (or rows to put in one). */
export function table(headers, body, attrs = {}) {
  const tbody = body instanceof HTMLTableSectionElement ? body : h('tbody', {}, body);
  return h('table', { class: 'grid', ...attrs },
    h('thead', {}, h('tr', {}, headers.map((title) => h('th', {}, title)))),
    tbody);
}

/** A row spanning `columns` with a muted message, for empty tables. */
export function emptyRow(columns, text) {
  return h('tr', { class: 'empty' }, h('td', { colspan: columns }, text));
}
