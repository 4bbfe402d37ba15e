// The alerts view: firing, pending and resolved alerts (live from the alerts topic), narrowed
// by a text filter and cut to the newest few hundred each, the silences with their form, and
// the recent alert history.

import { h, setText, throttle } from '../dom.js';
import { notice, panel } from '../widgets.js';
import { alertHistory, alertRows, alertTable, byNewest } from './alert-parts.js';
import { silencesPanel } from './silences.js';

/** The page title. */
export const title = () => 'Alerts';

const STATES = [
  ['firing', 'Firing'],
  ['pending', 'Pending'],
  ['resolved', 'Resolved'],
];
/** Rows shown per list; the filter narrows the rest. */
const SHOWN = 200;

/** Whether `alert` contains `text` in its rule, agent, pool, level, metric or message. */
function contains(alert, text) {
  return !text || [alert.rule, alert.agent, alert.pool, alert.level, alert.metric, alert.message]
    .some((field) => field?.toLowerCase().includes(text));
}

/** Shows the alerts, silences and alert history in `root`, kept current until `scope` closes. */
export function mount(root, { store, session, scope }) {
  const silences = silencesPanel(session, scope);
  const context = { session, store, onSilence: silences.prefill };
  const filter = h('input', {
    type: 'search', placeholder: 'Filter by rule, agent, pool, level, metric or message', 'aria-label': 'Filter alerts',
    style: 'min-width: 380px',
  });
  const sections = STATES.map(([state, name]) => {
    const count = h('span', { class: 'muted' });
    const more = notice('');
    const tableParts = alertTable();
    return {
      state, count, more, tbody: tableParts.tbody, el: panel(name, { tools: [count] }, tableParts.el, more),
    };
  });

  function render() {
    const text = filter.value.trim().toLowerCase();
    const all = [...store.alerts.values()].filter((a) => contains(a, text));
    for (const section of sections) {
      const alerts = all.filter((a) => a.state === section.state).sort(byNewest);
      section.tbody.replaceChildren(...alertRows(alerts.slice(0, SHOWN), context));
      setText(section.count, `${alerts.length}`);
      section.more.hidden = alerts.length <= SHOWN;
      setText(section.more, `Showing the newest ${SHOWN} of ${alerts.length}: narrow them with the filter.`);
    }
  }

  const rerender = throttle(render, 500);
  scope.add(rerender.cancel);
  filter.addEventListener('input', rerender);
  root.append(h('div', {}, filter), ...sections.map((s) => s.el), silences.el,
    panel('Recent alert changes', {}, alertHistory({}, scope)));
  scope.listen(store, 'reset', rerender);
  scope.listen(store, 'alert', rerender);
  // The "since" column is relative: keep it current.
  scope.every(15_000, render);
  render();
}
