// The agent view: one agent's details (GET /agents/{id}) kept current by the live samples,
// its four metrics over a chosen range (GET .../series/{metric}: mean with a min–max band,
// and the raw recent points), its alerts now and on record, and the actions that touched it.

import { api, query } from '../api.js';
import { COLORS, alpha, line, timeChart, uPlot, withUnit } from '../charts.js';
import { h, link, replace, setText } from '../dom.js';
import { ago, change, compact, metric, time, words } from '../format.js';
import { METRICS, pill, setPill } from '../status.js';
import { emptyRow, notice, panel, table } from '../widgets.js';
import { alertHistory, alertRows, alertTable, byNewest } from './alert-parts.js';

/** The page title: the agent's id. */
export const title = ([id]) => `Agent ${id}`;

const RANGES = [['15m', 15], ['1h', 60], ['6h', 360], ['24h', 1440]];
const ACTION_HEADERS = ['Action', 'Time', 'Kind', 'Change', 'State', 'Reason'];

/** Rollup step for a range: at most ~360 points, a multiple of 60 s. */
const stepFor = (minutes) => Math.max(60, Math.ceil((minutes * 60) / 360 / 60) * 60);

/** One metric's chart: mean line, min–max band, raw recent points. */
function metricChart(m) {
  const box = h('div', { class: 'chart' });
  const note = h('span', { class: 'muted' });
  const card = h('article', { class: 'card' },
    h('header', { class: 'card-head' }, h('h3', {}, `${m.label} (${m.unit})`), note), box);
  const color = COLORS[m.name];
  let chart = null;
  return {
    el: card,
    mount() {
      chart = timeChart(box, {
        height: 190,
        series: [
          // Points show (uPlot's default) while they are sparse, e.g. a young agent's first minutes.
          line('mean', color, { value: withUnit(m.unit, 2), points: { size: 4 } }),
          line('min', alpha(color, 0.4), { width: 1, value: withUnit(m.unit, 2) }),
          line('max', alpha(color, 0.4), { width: 1, value: withUnit(m.unit, 2) }),
          line('raw', alpha(color, 0.55), { width: 1, dash: [2, 2], value: withUnit(m.unit, 2) }),
        ],
        bands: [{ series: [3, 2], fill: alpha(color, 0.14) }],
      });
    },
    show(series) {
      const rollups = [series.points.map((p) => p.ts_ms / 1000), series.points.map((p) => p.mean),
        series.points.map((p) => p.min), series.points.map((p) => p.max)];
      const raw = [series.recent.map(([ts]) => ts / 1000), series.recent.map(([, v]) => v)];
      chart.setData(uPlot.join([rollups, raw]));
      setText(note, rollups[0].length || raw[0].length ? '' : 'no data in this range');
      chart.plot.setScale('x', { min: series.since_ms / 1000, max: series.until_ms / 1000 });
    },
    destroy: () => chart?.destroy(),
  };
}

/** The heading figures: status, pool, anomaly, latest values; updated from samples. */
function agentHeader(id) {
  const status = pill('agent', 'starting');
  const pool = h('span');
  const values = METRICS.map((m) => h('strong', { 'data-metric': m.name }));
  const scores = h('span');
  const facts = h('div', { class: 'muted' });
  const el = h('section', { class: 'panel' }, h('div', { class: 'panel-body' },
    h('div', { class: 'agent-head' }, h('h1', {}, id), status, pool, scores),
    h('div', { class: 'figures' }, METRICS.map((m, i) => h('span', {}, `${m.label} `, values[i], ` ${m.unit}`))),
    facts));

  return {
    el,
    showDetail(detail) {
      replace(facts, `pid ${detail.pid ?? '–'} · endpoint ${detail.endpoint ?? '–'} · started ${ago(detail.started_ms)}`,
        ` · actor restarts ${detail.actor_restarts ?? 0} · last sample ${time(detail.last_sample_ms)}`);
    },
    update(agent, threshold) {
      setPill(status, 'agent', agent.status);
      replace(pool, 'pool ', link('fleet', agent.pool));
      METRICS.forEach((m, i) => setText(values[i], metric(m.name, agent.metrics[m.name])));
      const anomalous = Object.entries(agent.scores).filter(([, s]) => s >= threshold);
      replace(scores, anomalous.length
        ? h('span', { class: 'pill', 'data-tone': 'crit' },
          `anomalous: ${anomalous.map(([n, s]) => `${words(n)} ${compact(s, 2)}`).join(', ')}`)
        : h('span', { class: 'muted' }, 'no anomaly'));
    },
  };
}

/** Whether a log row's action touched agent `id` (its target, or one it reweighted). */
function touches(row, id) {
  const to = row.change?.to;
  return row.agent === id || row.change?.agent === id || (typeof to === 'object' && to !== null && id in to);
}

/**
 * The actions that touched the agent, each with its latest state: from the log (its restarts
 * by the route's agent filter; reweightings name it only inside their change, so those are
 * read by kind and kept here when they name it), then from the live transitions.
 */
function agentActions(id, scope) {
  const tbody = h('tbody', {}, emptyRow(ACTION_HEADERS.length, 'Loading…'));
  const latest = new Map();

  function add(rows, first = false) {
    let changed = first;
    for (const row of rows) {
      const known = latest.get(row.action_id);
      if (!touches(row, id) || (known && known.seq >= row.seq)) continue;
      latest.set(row.action_id, row);
      changed = true;
    }
    if (!changed) return;
    replace(tbody, latest.size
      ? [...latest.values()].sort((a, b) => b.action_id - a.action_id).map((row) => h('tr', {
        'data-log-action': row.action_id, 'data-state': row.to_state,
      },
      h('td', { class: 'num' }, `#${row.action_id}`), h('td', {}, time(row.ts_ms)), h('td', {}, words(row.kind)),
      h('td', {}, change(row.change)), h('td', {}, pill('action', row.to_state)),
      h('td', { class: 'wrap' }, row.reason)))
      : emptyRow(ACTION_HEADERS.length, 'No action touched this agent.'));
  }

  Promise.all([
    api.get(`/log${query({ agent: id, limit: 1000 })}`),
    api.get(`/log${query({ kind: 'redistribute', limit: 1000 })}`),
  ])
    .then((pages) => scope.alive && add(pages.flat(), true))
    .catch((error) => replace(tbody, emptyRow(ACTION_HEADERS.length, `Cannot read the log: ${error.message}`)));
  return { el: h('div', { class: 'table-wrap' }, table(ACTION_HEADERS, tbody)), add };
}

/** Shows agent `id` in `root`, kept current until `scope` closes. */
export function mount(root, { store, session, params: [id], scope }) {
  const head = agentHeader(id);
  const charts = METRICS.map(metricChart);
  const rangeButtons = RANGES.map(([label, minutes]) => h('button', {
    type: 'button', 'aria-pressed': 'false', onclick: () => loadRange(minutes, label),
  }, label));
  const seriesNote = h('span', { class: 'muted' });
  const current = alertTable();
  const actions = agentActions(id, scope);
  let rangeToken = 0;

  /** Reads and draws the series over the last `minutes`; a later choice of range wins. */
  async function loadRange(minutes, label) {
    rangeToken += 1;
    const token = rangeToken;
    rangeButtons.forEach((b) => b.setAttribute('aria-pressed', String(b.textContent === label)));
    const since = Date.now() - minutes * 60_000;
    const path = (m) => `/agents/${encodeURIComponent(id)}/series/${m.name}${query({ since, step: stepFor(minutes) })}`;
    setText(seriesNote, 'loading…');
    const results = await Promise.allSettled(METRICS.map((m) => api.get(path(m))));
    if (!scope.alive || token !== rangeToken) return;
    const failed = results.find((r) => r.status === 'rejected');
    results.forEach((r, i) => r.status === 'fulfilled' && charts[i].show(r.value));
    setText(seriesNote, failed ? `Cannot read the series: ${failed.reason.message}` : `per ${stepFor(minutes) / 60} min`);
  }

  const showReadings = () => {
    const agent = store.agents.get(id);
    if (agent) head.update(agent, store.anomalyThreshold);
  };
  const showAlerts = () => current.tbody.replaceChildren(...alertRows(
    [...store.alerts.values()].filter((a) => a.agent === id).sort(byNewest), { session, store }));

  root.append(head.el,
    panel('Metrics', { tools: [seriesNote, h('div', { class: 'segmented' }, rangeButtons)] },
      h('div', { class: 'metric-grid' }, charts.map((c) => c.el))),
    panel('Alerts now', {}, current.el),
    panel('Actions on this agent', {}, actions.el),
    panel('Alert history', {}, alertHistory({ agent: id }, scope)));
  charts.forEach((c) => c.mount());
  scope.add(() => charts.forEach((c) => c.destroy()));

  api.get(`/agents/${encodeURIComponent(id)}`).then((detail) => {
    if (!scope.alive) return;
    head.showDetail(detail);
    if (!store.agents.has(id)) {
      head.update({ ...detail, scores: detail.anomaly_scores ?? {} }, store.anomalyThreshold);
    }
  }).catch((error) => root.prepend(notice(error.message, 'error')));
  scope.listen(store, 'samples', (ids) => ids.has(id) && showReadings());
  scope.listen(store, 'alert', (alert) => alert.agent === id && showAlerts());
  scope.listen(store, 'entry', (entry) => actions.add([entry]));
  scope.listen(store, 'reset', () => {
    showReadings();
    showAlerts();
  });
  showReadings();
  showAlerts();
  loadRange(60, '1h');
}
