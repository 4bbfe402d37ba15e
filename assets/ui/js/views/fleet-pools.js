// The fleet's pool cards: each pool's size over time against its min/max bounds, with its
// mean CPU on a second axis (uPlot). The size history before the page opened comes from the
// log's applied scale actions; the live counts and load come from the store.

import { api, query } from '../api.js';
import { COLORS, alpha, axis, dashed, line, stepped, timeAxis, timeChart, withUnit } from '../charts.js';
import { h, setText, throttle } from '../dom.js';
import { change, num } from '../format.js';
import { notice } from '../widgets.js';

/** The chart shows at most this much, and at least MIN_SPAN_MS. */
const WINDOW_MS = 30 * 60_000;
const MIN_SPAN_MS = 5 * 60_000;

/** Applied scale changes of the log, per pool, oldest first: `[{ts, from, to}]`. */
async function scaleHistory() {
  const rows = await api.get(`/log${query({ kind: 'scale', status: 'applied', limit: 1000 })}`);
  const byPool = new Map();
  for (const row of rows.reverse()) {
    if (row.change?.type !== 'scale') continue;
    if (!byPool.has(row.pool)) byPool.set(row.pool, []);
    byPool.get(row.pool).push({ ts: row.ts_ms, from: row.change.from, to: row.change.to });
  }
  return byPool;
}

/**
 * The chart's columns: time (s), size, min, max, mean CPU, target CPU. Sizes come from the
 * scale events and from the live counts, the latter winning where both are.
 */
function chartData(pool, events, ring, now) {
  const start = windowStart(events, ring, now);
  const points = new Map();
  const before = events.filter((e) => e.ts < start).pop();
  const first = events.find((e) => e.ts >= start);
  const initial = before?.to ?? first?.from;
  if (initial !== undefined) points.set(start, { size: initial, cpu: null });
  for (const e of events) if (e.ts >= start) points.set(e.ts, { size: e.to, cpu: null });
  if (ring) {
    const [xs, counts, cpus] = ring.toPlot();
    xs.forEach((x, i) => points.set(x * 1000, { size: counts[i], cpu: cpus[i] }));
  }
  const times = [...points.keys()].filter((t) => t >= start).sort((a, b) => a - b);
  const at = (t) => points.get(t);
  return [
    times.map((t) => t / 1000),
    times.map((t) => at(t).size),
    times.map(() => pool.min_agents),
    times.map(() => pool.max_agents),
    times.map((t) => at(t).cpu),
    times.map(() => pool.target_cpu_percent),
  ];
}

/** Where the chart starts: WINDOW_MS ago, or a little before the first thing known. */
function windowStart(events, ring, now) {
  const first = Math.min(events[0]?.ts ?? Infinity, ring?.first ?? Infinity);
  const start = Math.max(now - WINDOW_MS, first - 30_000);
  return Math.min(start, now - MIN_SPAN_MS);
}

/** The y range of sizes: the data and min bound, and the max bound when it is not far off. */
function sizeRange(pool) {
  return (u, low, high) => {
    const top = Math.max(high ?? 0, pool.min_agents, 1);
    const withMax = pool.max_agents <= top * 2 + 2 ? Math.max(top, pool.max_agents) : top;
    return [0, Math.ceil(withMax * 1.15 + 0.5)];
  };
}

/** The y range of CPU: up to twice the target, or the data when it goes higher. */
function cpuRange(pool) {
  return (u, low, high) => [0, Math.max(pool.target_cpu_percent * 2, (high ?? 0) * 1.1, 10)];
}

/**
 * A pool's model use as the API summed it when the page loaded (AI agent pools): tokens a
 * second, what they cost an hour, and the share of model calls the provider refused.
 */
function modelsText(models) {
  const parts = [`models: ${num(models.tokens_in_per_s, 0)} tokens/s in, ${num(models.tokens_out_per_s, 0)} out`];
  if (models.cost_per_hour !== null && models.cost_per_hour !== undefined) {
    parts.push(`${num(models.cost_per_hour, 2)} ${models.currency}/h`);
  }
  if (models.cost_per_task !== null && models.cost_per_task !== undefined) {
    parts.push(`${num(models.cost_per_task, 4)} ${models.currency}/task`);
  }
  const refused = models.errors_per_s?.rate_limited ?? 0;
  if (models.model_calls_per_s > 0) {
    parts.push(`${num((100 * refused) / models.model_calls_per_s, 0)}% of calls refused (429)`);
  }
  return parts.join(' · ');
}

/** One pool's card: heading figures and the chart. */
class PoolCard {
  constructor(pool, events) {
    this.pool = pool;
    this.events = events;
    this.size = h('strong');
    this.cpu = h('strong');
    const chartBox = h('div', { class: 'chart' });
    this.el = h('article', { class: 'card pool', 'data-pool': pool.name },
      h('header', { class: 'card-head' },
        h('h3', {}, pool.name),
        h('span', { class: 'muted' }, pool.driver)),
      h('div', { class: 'figures' },
        h('span', {}, 'agents ', this.size, ` (min ${pool.min_agents}, max ${pool.max_agents})`),
        h('span', {}, 'mean CPU ', this.cpu, ` / target ${num(pool.target_cpu_percent, 0)}%`),
        pool.action_in_flight ? h('a', { href: '#/log' }, `action #${pool.action_in_flight} in flight`) : null,
        events.length ? h('span', { class: 'muted' }, `last: ${change({ type: 'scale', ...events.at(-1) })}`) : null,
        pool.models ? h('span', { class: 'models' }, modelsText(pool.models)) : null),
      chartBox);
    this.chartBox = chartBox;
    this.chart = null;
    chartBox.append(notice('No agents in this pool yet.'));
  }

  /** Creates the chart on the first data (the card is in the page then, so has a width). */
  makeChart() {
    this.chartBox.replaceChildren();
    this.chart = timeChart(this.chartBox, {
      height: 170,
      series: [
        stepped('agents', COLORS.size, { value: (u, v) => num(v, 0) }),
        dashed('min', COLORS.bound, { value: (u, v) => num(v, 0) }),
        dashed('max', COLORS.bound, { value: (u, v) => num(v, 0) }),
        line('mean CPU', COLORS.cpu_percent, { scale: 'pct', value: withUnit('%'), width: 1 }),
        dashed('target CPU', alpha(COLORS.cpu_percent, 0.45), { scale: 'pct', value: withUnit('%', 0) }),
      ],
      scales: { y: { range: sizeRange(this.pool) }, pct: { range: cpuRange(this.pool) } },
      axes: [timeAxis(), axis({ label: 'agents', labelSize: 14 }),
        axis({ scale: 'pct', side: 1, grid: { show: false }, values: (u, ticks) => ticks.map((t) => `${t}%`) })],
    });
  }

  update(ring) {
    const data = chartData(this.pool, this.events, ring, ring?.last > 0 ? ring.last : Date.now());
    const last = data[0].length - 1;
    const hasAgents = data[1].some((size) => size > 0);
    if (!this.chart && hasAgents) this.makeChart();
    this.chart?.setData(data);
    setText(this.size, num(last >= 0 ? data[1][last] : this.pool.agents, 0));
    setText(this.cpu, last >= 0 && data[4][last] !== null ? `${num(data[4][last])}%` : '–');
  }

  destroy() {
    this.chart?.destroy();
  }
}

/** The pools section; fills itself once /pools and the log have answered. */
export function poolCards(store, scope) {
  const grid = h('div', { class: 'pool-grid' }, notice('Loading pools…'));
  const cards = [];

  const redraw = throttle(() => {
    for (const card of cards) card.update(store.pools.get(card.pool.name));
  }, 1000);

  function onEntry(entry) {
    const card = cards.find((c) => c.pool.name === entry.pool);
    if (card && entry.to_state === 'applied' && entry.change?.type === 'scale') {
      card.events.push({ ts: entry.ts_ms, from: entry.change.from, to: entry.change.to });
      redraw();
    }
  }

  Promise.all([api.get('/pools'), scaleHistory()]).then(([pools, history]) => {
    if (!scope.alive) return;
    grid.replaceChildren();
    // Pools that have never had an agent (e.g. an empty push pool) go last.
    pools.sort((a, b) => Number(b.agents > 0) - Number(a.agents > 0) || a.name.localeCompare(b.name));
    for (const pool of pools) {
      const card = new PoolCard(pool, history.get(pool.name) ?? []);
      cards.push(card);
      grid.append(card.el);
      card.update(store.pools.get(pool.name));
    }
    if (!pools.length) grid.append(notice('No pools in the policy.'));
  }).catch((error) => {
    grid.replaceChildren(notice(`Cannot read the pools: ${error.message}`, 'error'));
  });

  scope.listen(store, 'samples', redraw);
  scope.listen(store, 'entry', onEntry);
  scope.add(() => {
    redraw.cancel();
    cards.forEach((card) => card.destroy());
  });
  return grid;
}
