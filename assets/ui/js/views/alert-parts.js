// Alert pieces shared by the alerts and agent views: a table of current alerts (with the
// acknowledge and silence buttons the role allows) and the paged alert history.

import { api, query } from '../api.js';
import { h, link, replace } from '../dom.js';
import { ago, compact, time, words } from '../format.js';
import { pill } from '../status.js';
import { actionButton, emptyRow, loadPaged, table, toast } from '../widgets.js';

const ALERT_HEADERS = ['Rule', 'Agent', 'Level', 'Metric', 'Value', 'Message', 'Since', 'Status', ''];

/** `value` against the threshold, when the alert says which. */
function valueText(alert) {
  const value = compact(alert.value, 2);
  return alert.threshold === null || alert.threshold === undefined
    ? value : `${value} / ${compact(alert.threshold, 2)}`;
}

function statusText(alert) {
  const parts = [];
  if (alert.acked) parts.push(`acked by ${alert.acked[0]} ${ago(alert.acked[1])}`);
  if (alert.silenced_by?.length) parts.push(`silenced (#${alert.silenced_by.join(', #')})`);
  if (alert.state === 'resolved') parts.push(`resolved ${ago(alert.resolved_ms)}`);
  return parts.join(' · ') || '–';
}

/** Acknowledge and silence buttons of one alert, for operators and above. */
function alertButtons(alert, { session, store, onSilence }) {
  if (!session.canOperate || alert.state === 'resolved') return null;
  return [
    alert.acked ? null : actionButton('Acknowledge', () => api.post(`/alerts/${alert.id}/ack`), {
      attrs: { 'data-act': 'ack' },
      done: (acked) => {
        store.putAlert(acked);
        toast(`Alert ${acked.rule} on ${acked.agent} acknowledged`, 'ok');
      },
    }),
    onSilence ? h('button', { type: 'button', onclick: () => onSilence(alert) }, 'Silence…') : null,
  ];
}

/** Orders alerts newest breach first. */
export const byNewest = (a, b) => b.since_ms - a.since_ms;

/** Rows of `alerts` for a table with ALERT_HEADERS. */
export function alertRows(alerts, context) {
  if (!alerts.length) return [emptyRow(ALERT_HEADERS.length, 'None.')];
  return alerts.map((alert) => h('tr', { 'data-alert-id': alert.id, 'data-state': alert.state },
    h('td', {}, alert.rule),
    h('td', {}, link(`agent/${encodeURIComponent(alert.agent)}`, alert.agent)),
    h('td', {}, pill('level', alert.level)),
    h('td', {}, words(alert.metric ?? '–')),
    h('td', { class: 'num' }, valueText(alert)),
    h('td', { class: 'wrap' }, alert.message ?? ''),
    h('td', { title: time(alert.since_ms) }, ago(alert.since_ms)),
    h('td', { class: 'muted' }, statusText(alert)),
    h('td', { class: 'tools' }, alertButtons(alert, context))));
}

/** An empty alerts table; fill its tbody with `alertRows`. */
export function alertTable() {
  const tbody = h('tbody');
  return { tbody, el: h('div', { class: 'table-wrap' }, table(ALERT_HEADERS, tbody)) };
}

const HISTORY_HEADERS = ['Time', 'Rule', 'Agent', 'Level', 'Change', 'Value', 'Message'];

/** One row of the alert history: an alert's change of state. */
function historyRow(row) {
  return h('tr', {},
    h('td', { class: 'num' }, time(row.ts_ms)),
    h('td', {}, row.rule),
    h('td', {}, link(`agent/${encodeURIComponent(row.agent)}`, row.agent)),
    h('td', {}, pill('level', row.level)),
    h('td', {}, pill('alert', row.from_state), ' → ', pill('alert', row.to_state)),
    h('td', { class: 'num' }, valueText(row)),
    h('td', { class: 'wrap' }, row.message ?? ''));
}

/**
 * The alert history (GET /alerts/history, newest first) matching `filter` ({rule, agent,
 * pool}), a page at a time: the table and its "Load older" pager, to put in a panel.
 */
export function alertHistory(filter, scope, limit = 50) {
  const tbody = h('tbody', {}, emptyRow(HISTORY_HEADERS.length, 'Loading…'));
  const pager = h('div', { class: 'pager' });
  let first = true;

  function show(rows) {
    if (first) tbody.replaceChildren();
    first = false;
    tbody.append(...rows.map(historyRow));
    if (!tbody.children.length) tbody.append(emptyRow(HISTORY_HEADERS.length, 'No alert changes on record.'));
  }

  loadPaged(pager, `/alerts/history${query({ ...filter, limit })}`, { show, current: () => scope.alive })
    .catch((error) => replace(tbody, emptyRow(HISTORY_HEADERS.length, `Cannot read the alert history: ${error.message}`)));
  return [h('div', { class: 'table-wrap' }, table(HISTORY_HEADERS, tbody)), pager];
}
