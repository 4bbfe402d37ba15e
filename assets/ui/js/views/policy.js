// The policy view: automation (pause/resume for admins), the optimizer's recommendations,
// the policy in force (pretty JSON, warnings, overlay; reload for admins) and its version
// history, each version with its diff.

import { api } from '../api.js';
import { refreshAutomation } from '../header.js';
import { h, replace } from '../dom.js';
import { ago, change, time, words } from '../format.js';
import { actionButton, diffBlock, emptyRow, jsonBlock, kvList, notice, panel, table, toast } from '../widgets.js';

/** The page title. */
export const title = () => 'Policy';

const REC_HEADERS = ['Pool', 'Kind', 'Change', 'Reason', 'Status', 'Auto', 'When'];

function automationPanel(session, scope) {
  const body = h('div', {}, notice('Loading…'));
  async function render() {
    const automation = await refreshAutomation();
    if (!scope.alive || !automation) return;
    const verb = automation.paused ? 'resume' : 'pause';
    replace(body,
      h('p', {}, automation.paused
        ? `Paused by ${automation.by} since ${time(Date.parse(automation.since))}: nothing is applied automatically.`
        : 'Running: the controller applies what its policy allows.'),
      automation.dry_run ? notice('Dry run: actions are proposed and logged, never applied.', 'info') : null,
      automation.halted ? notice(`Halted since ${automation.halted.since}: ${automation.halted.reason}`, 'error') : null,
      session.canAdmin ? actionButton(verb === 'pause' ? 'Pause automation' : 'Resume automation',
        () => api.post(`/automation/${verb}`), {
          attrs: { class: verb === 'pause' ? 'danger' : 'primary' },
          done: () => { toast(`Automation ${verb === 'pause' ? 'paused' : 'resumed'}`, 'ok'); render(); },
        }) : null);
  }
  render();
  return panel('Automation', {}, body);
}

function recommendationsPanel(scope) {
  const tbody = h('tbody', {}, emptyRow(REC_HEADERS.length, 'Loading…'));
  api.get('/recommendations').then((list) => {
    if (!scope.alive) return;
    replace(tbody, list.length ? list.map((r) => h('tr', {},
      h('td', {}, r.pool), h('td', {}, words(r.kind)), h('td', {}, change(r.change)),
      h('td', { class: 'wrap' }, r.reason,
        h('details', {}, h('summary', { class: 'muted' }, 'evidence'), kvList(r.evidence))),
      h('td', { class: 'wrap' }, r.status), h('td', {}, r.auto_apply ? 'yes' : 'no'),
      h('td', { title: time(r.at_ms) }, ago(r.at_ms))))
      : emptyRow(REC_HEADERS.length, 'No recommendation now.'));
  }).catch((error) => replace(tbody, emptyRow(REC_HEADERS.length, error.message)));
  return panel('Recommendations', {}, h('div', { class: 'table-wrap' }, table(REC_HEADERS, tbody)));
}

function inForce(status, session, reload) {
  return panel(`Policy in force · ${status.version}`, {
    tools: session.canAdmin ? [actionButton('Reload policy', () => api.post('/policies/reload'), {
      done: (outcome) => {
        toast(outcome.changed ? `Policy reloaded: version ${outcome.version}` : 'Policy reloaded: no change', 'ok');
        reload();
      },
    })] : [],
  },
  h('p', { class: 'muted' }, `Source: ${status.source?.type ?? '–'} · files: ${(status.files ?? []).join(', ') || '–'}`),
  status.last_reload_error ? notice(`Last reload failed: ${JSON.stringify(status.last_reload_error)}`, 'error') : null,
  status.warnings?.length ? h('details', { open: true },
    h('summary', {}, `${status.warnings.length} warning(s)`), kvList(status.warnings)) : null,
  status.overlay?.length ? h('details', { open: true },
    h('summary', {}, `Threshold overlay (${status.overlay.length})`), kvList(status.overlay)) : null,
  h('details', {}, h('summary', {}, 'Policy (JSON)'), jsonBlock(status.policy)));
}

function historyPanel(history) {
  if (!history?.length) return panel('Version history', {}, notice('No version on record.'));
  return panel('Version history', {}, history.map((v, i) => h('details', { class: 'version', open: i === 0 && Boolean(v.diff) },
    h('summary', {},
      h('code', {}, v.version),
      h('span', {}, time(v.ts_ms ?? Date.parse(v.time))),
      h('span', { class: 'muted' }, `by ${v.actor}`),
      h('span', { class: 'muted' }, (v.files ?? []).join(', '))),
    diffBlock(v.diff))));
}

/** Shows automation, recommendations and the policy with its history in `root`. */
export function mount(root, { session, scope }) {
  const policy = h('div', { class: 'columns' }, notice('Loading the policy…'));

  async function load() {
    try {
      const status = await api.get('/policies');
      if (!scope.alive) return;
      replace(policy, inForce(status, session, load), historyPanel(status.history));
    } catch (error) {
      replace(policy, notice(`Cannot read the policy: ${error.message}`, 'error'));
    }
  }

  root.append(h('div', { class: 'columns' }, automationPanel(session, scope), recommendationsPanel(scope)), policy);
  load();
}
