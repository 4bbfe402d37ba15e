// The log view: the applied-optimization and rollback log (GET /log), one row per action
// showing its latest state and opening to its transitions (the log has one row per
// transition). Filters by pool, kind, status and age, pages back through older rows, exports
// CSV, and takes live transitions from the actions topic (rows update in place).

import { api, query } from '../api.js';
import { h, link, replace, select, setText } from '../dom.js';
import { change, time, words } from '../format.js';
import { ACTION_KINDS, ACTION_STATES, pill, setPill } from '../status.js';
import { actionButton, emptyRow, loadPaged, panel, table } from '../widgets.js';

/** The page title. */
export const title = () => 'Log';

const PAGE = 500;
const SINCE = [['', 'Any time'], ['3600000', 'Last hour'], ['21600000', 'Last 6 hours'],
  ['86400000', 'Last 24 hours'], ['604800000', 'Last 7 days']];
const HEADERS = ['Action', 'Time', 'Kind', 'Pool', 'Agent', 'Change', 'State', 'Actor', 'Reason'];

/** One action's row: its transitions, the latest shown, the others on opening it. */
class ActionRow {
  constructor(id) {
    this.id = id;
    this.transitions = new Map();
    this.cells = {
      time: h('td'), kind: h('td'), pool: h('td'), agent: h('td'), change: h('td'),
      state: pill('action', 'proposed'), actor: h('td'), reason: h('td', { class: 'wrap' }),
    };
    const c = this.cells;
    this.tr = h('tr', {
      class: 'log-row', 'data-log-action': id, title: 'Show the transitions', onclick: () => this.toggle(),
    },
      h('td', { class: 'num' }, `#${id}`), c.time, c.kind, c.pool, c.agent, c.change,
      h('td', {}, c.state), c.actor, c.reason);
    this.detail = h('tr', { class: 'log-detail', hidden: true }, h('td', { colspan: HEADERS.length }));
  }

  add(entry) {
    this.transitions.set(entry.seq, entry);
    this.render();
  }

  get latest() {
    let latest = null;
    for (const entry of this.transitions.values()) if (!latest || entry.seq > latest.seq) latest = entry;
    return latest;
  }

  render() {
    const e = this.latest;
    const c = this.cells;
    this.tr.dataset.state = e.to_state;
    setText(c.time, time(e.ts_ms));
    setText(c.kind, words(e.kind));
    setText(c.pool, e.pool);
    replace(c.agent, e.agent ? link(`agent/${encodeURIComponent(e.agent)}`, e.agent) : '–');
    setText(c.change, change(e.change));
    setPill(c.state, 'action', e.to_state);
    setText(c.actor, e.actor);
    setText(c.reason, e.reason);
    if (!this.detail.hidden) this.renderDetail();
  }

  renderDetail() {
    const steps = [...this.transitions.values()].sort((a, b) => a.seq - b.seq);
    replace(this.detail.firstChild, h('ol', { class: 'transitions' }, steps.map((e) => h('li', {},
      h('span', { class: 'num muted' }, time(e.ts_ms)),
      e.from_state ? [pill('action', e.from_state), '→'] : null,
      pill('action', e.to_state),
      h('span', { class: 'muted' }, e.actor),
      h('span', {}, e.reason)))));
  }

  toggle() {
    this.detail.hidden = !this.detail.hidden;
    this.tr.classList.toggle('open', !this.detail.hidden);
    if (!this.detail.hidden) this.renderDetail();
  }
}

function filterForm(onChange) {
  const fields = {
    pool: select([['', 'All pools']], { 'aria-label': 'Pool', name: 'pool' }),
    kind: select([['', 'All kinds'], ...ACTION_KINDS.map((k) => [k, words(k)])], { 'aria-label': 'Kind', name: 'kind' }),
    status: select([['', 'Any state'], ...ACTION_STATES.map((s) => [s, words(s)])], { 'aria-label': 'State entered', name: 'status' }),
    since: select(SINCE, { 'aria-label': 'Since', name: 'since' }),
  };
  for (const field of Object.values(fields)) field.addEventListener('change', onChange);
  api.get('/pools').then((pools) => {
    fields.pool.append(...pools.map((p) => h('option', { value: p.name }, p.name)));
  }).catch(() => {});
  return fields;
}

/** Shows the action log in `root`, kept current until `scope` closes. */
export function mount(root, { store, scope }) {
  const rows = new Map();
  const tbody = h('tbody');
  const status = h('span', { class: 'muted' });
  const more = h('div', { class: 'pager' });
  let filters = {};
  let loadToken = 0;

  const fields = filterForm(() => load());

  /** The API's filters from the form (`since` as epoch ms, fixed at load time). */
  function readFilters() {
    const since = fields.since.value ? Date.now() - Number(fields.since.value) : '';
    return { pool: fields.pool.value, kind: fields.kind.value, status: fields.status.value, since };
  }

  const matches = (entry) => (!filters.pool || entry.pool === filters.pool)
    && (!filters.kind || entry.kind === filters.kind)
    && (!filters.status || entry.to_state === filters.status)
    && (!filters.since || entry.ts_ms >= filters.since);

  function add(entries) {
    for (const entry of entries) {
      let row = rows.get(entry.action_id);
      if (!row) {
        row = new ActionRow(entry.action_id);
        rows.set(entry.action_id, row);
      }
      row.add(entry);
    }
  }

  /** Puts the rows in the table, newest action first. */
  function order() {
    const sorted = [...rows.values()].sort((a, b) => b.id - a.id);
    if (!sorted.length) return replace(tbody, emptyRow(HEADERS.length, 'No log rows match.'));
    tbody.querySelector('tr.empty')?.remove();
    const fragment = document.createDocumentFragment();
    for (const row of sorted) fragment.append(row.tr, row.detail);
    tbody.append(fragment);
    setText(status, `${rows.size} actions`);
    return tbody;
  }

  async function load() {
    loadToken += 1;
    const token = loadToken;
    const current = () => token === loadToken && scope.alive;
    filters = readFilters();
    rows.clear();
    more.replaceChildren();
    replace(tbody, emptyRow(HEADERS.length, 'Loading…'));
    try {
      await loadPaged(more, `/log${query({ ...filters, limit: PAGE })}`, {
        current,
        show: (entries) => {
          add(entries);
          order();
        },
        end: () => h('span', { class: 'muted' }, rows.size ? 'Start of the log.' : ''),
      });
    } catch (error) {
      if (current()) replace(tbody, emptyRow(HEADERS.length, `Cannot read the log: ${error.message}`));
    }
  }

  function onEntry(entry) {
    if (!matches(entry)) return;
    const fresh = !rows.has(entry.action_id);
    add([entry]);
    if (fresh) order();
  }

  const download = actionButton('Download CSV', () => api.download(
    `/log${query({ ...readFilters(), format: 'csv' })}`, 'swarmpilot-log.csv'));

  root.append(panel('Action log', {
    tools: [fields.pool, fields.kind, fields.status, fields.since, download, status],
  }, h('div', { class: 'table-wrap' }, table(HEADERS, tbody)), more));
  scope.listen(store, 'entry', onEntry);
  load();
}
