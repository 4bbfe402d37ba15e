// The fleet's agent table: one row per agent, built once and updated in place from the live
// samples; sparklines (uPlot) of the last minutes exist only for rows on screen and are
// redrawn at most once a second. Filters by text, pool and status; sorts by any column.

import { COLORS, sparkline } from '../charts.js';
import { h, link, select, setText, throttle } from '../dom.js';
import { compact, metric, naturalCompare, words } from '../format.js';
import { METRICS, pill, setPill } from '../status.js';
import { panel } from '../widgets.js';

const STATUSES = ['starting', 'active', 'idle', 'busy', 'error', 'offline'];

/** The columns: title, and the sort key (an agent's value) of each. */
const COLUMNS = [
  { key: 'id', title: 'Agent', value: (a) => a.id },
  { key: 'pool', title: 'Pool', value: (a) => a.pool },
  { key: 'status', title: 'Status', value: (a) => STATUSES.indexOf(a.status) },
  ...METRICS.map((m) => ({
    key: m.name, title: `${m.label} ${m.unit}`, numeric: true, value: (a) => a.metrics[m.name] ?? -Infinity,
  })),
];

/** Agents sorted by `column` (`dir` 1 or -1), ties by id. */
function sorted(agents, column, dir) {
  return agents.sort((a, b) => {
    const [x, y] = [column.value(a), column.value(b)];
    const c = typeof x === 'string' ? naturalCompare(x, y) : x - y;
    return dir * c || naturalCompare(a.id, b.id);
  });
}

/** The header row; a click on a title sorts by it (again: the other way). */
function sortableHeader(onSort) {
  let current = { column: COLUMNS[0], dir: 1 };
  const row = h('tr', { role: 'row' });
  for (const column of COLUMNS) {
    const th = h('th', {
      role: 'columnheader', class: column.numeric ? 'metric' : '', 'data-sort': column.key,
      'aria-sort': column === current.column ? 'ascending' : null,
    }, column.title);
    th.addEventListener('click', () => {
      const dir = current.column === column ? -current.dir : (column.numeric ? -1 : 1);
      current = { column, dir };
      row.querySelectorAll('th').forEach((cell) => cell.removeAttribute('aria-sort'));
      th.setAttribute('aria-sort', dir > 0 ? 'ascending' : 'descending');
      onSort(current);
    });
    row.append(th);
  }
  return { row, get sort() { return current; } };
}

/** One agent's row and the cells that change. */
class Row {
  constructor(agent) {
    this.id = agent.id;
    this.status = pill('agent', agent.status);
    this.badge = h('span', { class: 'pill anomaly', 'data-tone': 'crit', hidden: true }, 'anomaly');
    this.values = METRICS.map((m) => h('span', { class: 'val', 'data-metric': m.name }));
    this.boxes = METRICS.map(() => h('div', { class: 'spark-box' }));
    this.sparks = null;
    this.dirty = true;
    // Each cell's content sits in a contained box: a change lays out that box, not the table.
    // The table is laid out as grids (see app.css), so the table roles are given explicitly.
    const cell = (attrs, ...content) => h('td', { role: 'cell', ...attrs }, h('div', { class: 'cell' }, content));
    this.tr = h('tr', { 'data-agent': agent.id, role: 'row' },
      cell({ class: 'id' }, link(`agent/${encodeURIComponent(agent.id)}`, agent.id), this.badge),
      cell({}, agent.pool),
      cell({}, this.status),
      METRICS.map((m, i) => cell({ class: 'metric' }, this.boxes[i], this.values[i])));
  }

  /** Writes the agent's latest readings into the row's cells. */
  update(agent, anomalous) {
    if (this.tr.dataset.status !== agent.status) this.tr.dataset.status = agent.status;
    setPill(this.status, 'agent', agent.status);
    METRICS.forEach((m, i) => setText(this.values[i], metric(m.name, agent.metrics[m.name])));
    this.badge.hidden = !anomalous;
    if (anomalous) {
      setText(this.badge, `anomaly ${compact(agent.score, 2)}`);
      this.badge.title = Object.entries(agent.scores)
        .map(([name, score]) => `${words(name)}: ${compact(score, 2)}`).join('\n');
    }
    this.dirty = true;
  }

  /** Creates the sparklines (when the row comes on screen). */
  showSparks() {
    if (this.sparks) return;
    this.sparks = METRICS.map((m, i) => sparkline(this.boxes[i], COLORS[m.name]));
    this.dirty = true;
  }

  hideSparks() {
    this.sparks?.forEach((spark) => spark.destroy());
    this.sparks = null;
  }

  /** Feeds the sparklines the agent's ring, when something new arrived. */
  draw(ring) {
    if (!this.sparks || !this.dirty || !ring) return;
    this.dirty = false;
    const [xs, ...columns] = ring.toPlot();
    this.sparks.forEach((spark, i) => spark.setData([xs, columns[i]]));
  }
}

/**
 * Rows waiting for their sparklines, made a few per frame (a chart costs milliseconds), so the
 * table shows its figures at once and its lines just after.
 */
function sparkQueue(make, budgetMs = 8) {
  const waiting = new Set();
  let frame = null;
  const drain = () => {
    frame = null;
    const until = performance.now() + budgetMs;
    for (const row of waiting) {
      waiting.delete(row);
      make(row);
      if (performance.now() > until) break;
    }
    if (waiting.size) frame = requestAnimationFrame(drain);
  };
  return {
    add(row) {
      waiting.add(row);
      frame ??= requestAnimationFrame(drain);
    },
    delete: (row) => waiting.delete(row),
    clear() {
      waiting.clear();
      if (frame) cancelAnimationFrame(frame);
    },
  };
}

/** The agent table panel; subscriptions end with `scope`. */
export function agentTable(store, scope) {
  const rows = new Map();
  const tbody = h('tbody', { role: 'rowgroup' });
  const count = h('span', { class: 'muted' });
  const filters = {
    text: h('input', { type: 'search', placeholder: 'Filter agents', 'aria-label': 'Filter agents' }),
    pool: select([['', 'All pools']], { 'aria-label': 'Pool' }),
    status: select([['', 'All statuses'], ...STATUSES.map((s) => [s, s])], { 'aria-label': 'Status' }),
    anomalous: h('input', { type: 'checkbox' }),
  };

  /** Writes an agent's latest readings into its row. */
  function refresh(row) {
    const agent = store.agents.get(row.id);
    if (agent) row.update(agent, store.anomalous(agent));
  }

  const header = sortableHeader(() => reconcile());
  const sparks = sparkQueue((row) => {
    row.showSparks();
    row.draw(store.rings.get(row.id));
  });
  // Only rows on screen (and a margin) have sparklines; rows off screen get their figures
  // but are neither laid out nor painted (content-visibility in app.css).
  const onScreen = new IntersectionObserver((entries) => {
    for (const entry of entries) {
      const row = rows.get(entry.target.dataset.agent);
      if (!row) continue;
      if (entry.isIntersecting) {
        sparks.add(row);
      } else {
        sparks.delete(row);
        row.hideSparks();
      }
    }
  }, { rootMargin: '300px 0px' });

  const matches = (agent) => {
    const text = filters.text.value.trim().toLowerCase();
    return (!text || agent.id.toLowerCase().includes(text))
      && (!filters.pool.value || agent.pool === filters.pool.value)
      && (!filters.status.value || agent.status === filters.status.value)
      && (!filters.anomalous.checked || store.anomalous(agent));
  };

  /** Whether a filter is set that a change of status or anomaly can flip. */
  const liveFilter = () => Boolean(filters.status.value) || filters.anomalous.checked;

  /** Whether a row is shown when the filters would hide it, or the other way round. */
  const misfiled = (row) => {
    const agent = store.agents.get(row.id);
    return Boolean(agent) && row.tr.hidden === matches(agent);
  };

  function applyFilters() {
    let shown = 0;
    for (const row of rows.values()) {
      const agent = store.agents.get(row.id);
      row.tr.hidden = !agent || !matches(agent);
      if (!row.tr.hidden) shown += 1;
    }
    setText(count, `${shown} of ${rows.size} agents`);
  }

  /** Makes the rows match the store's agents: new ones added, gone ones removed, in order. */
  function reconcile() {
    for (const [id, row] of rows) {
      if (store.agents.has(id)) continue;
      sparks.delete(row);
      row.hideSparks();
      onScreen.unobserve(row.tr);
      row.tr.remove();
      rows.delete(id);
    }
    const fragment = document.createDocumentFragment();
    const { column, dir } = header.sort;
    for (const agent of sorted([...store.agents.values()], column, dir)) {
      let row = rows.get(agent.id);
      if (!row) {
        row = new Row(agent);
        rows.set(agent.id, row);
        onScreen.observe(row.tr);
      }
      refresh(row);
      fragment.append(row.tr);
    }
    tbody.append(fragment);
    refreshPoolOptions();
    applyFilters();
  }

  function refreshPoolOptions() {
    const pools = [...new Set([...store.agents.values()].map((a) => a.pool))].sort();
    const have = [...filters.pool.options].slice(1).map((o) => o.value);
    if (pools.join() === have.join()) return;
    const current = filters.pool.value;
    filters.pool.replaceChildren(h('option', { value: '' }, 'All pools'),
      ...pools.map((p) => h('option', { value: p }, p)));
    filters.pool.value = pools.includes(current) ? current : '';
  }

  /** Filters again (at most once a second) when changed rows no longer fit the filters. */
  const refilter = throttle(applyFilters, 1000);
  const refilterIfNeeded = (changed) => {
    if (liveFilter() && changed.some(misfiled)) refilter();
  };

  function onSamples(ids) {
    const changed = [];
    for (const id of ids) {
      const row = rows.get(id);
      if (!row) continue;
      refresh(row);
      changed.push(row);
    }
    refilterIfNeeded(changed);
  }

  function onFleet(message) {
    const row = rows.get(message.agent);
    if (message.event !== 'status' || !row) return;
    refresh(row);
    refilterIfNeeded([row]);
  }

  for (const input of Object.values(filters)) input.addEventListener('input', applyFilters);
  scope.listen(store, 'reset', reconcile);
  scope.listen(store, 'membership', reconcile);
  scope.listen(store, 'samples', onSamples);
  scope.listen(store, 'fleet', onFleet);
  scope.every(1000, () => {
    for (const row of rows.values()) if (row.sparks) row.draw(store.rings.get(row.id));
  });
  scope.add(() => {
    refilter.cancel();
    sparks.clear();
    onScreen.disconnect();
    for (const row of rows.values()) row.hideSparks();
  });
  reconcile();

  const tools = [filters.text, filters.pool, filters.status,
    h('label', { class: 'check' }, filters.anomalous, ' anomalous only'), count];
  return panel('Agents', { tools },
    h('div', { class: 'table-wrap' },
      h('table', { class: 'grid agents', role: 'table' }, h('thead', { role: 'rowgroup' }, header.row), tbody)));
}
