// The approvals view: every action waiting for approval as a card with its reason, expected
// effect, evidence, risk and approvals so far, and (for approvers) a comment and the
// approve/reject buttons. Live: cards come and go with the actions topic.

import { api } from '../api.js';
import { h, link, replace, setText } from '../dom.js';
import { ago, change, compact, duration, num, time, words } from '../format.js';
import { pill } from '../status.js';
import { actionButton, kvList, notice, panel, toast } from '../widgets.js';

/** The page title. */
export const title = () => 'Approvals';

/** What a card shows of an action changes when this does. */
const versionOf = (a) => [a.updated_ms, a.state, a.approvals?.length, Boolean(a.evidence)].join();

/** Approvals an action needs: two for a two-person risk mode, else one. */
const needed = (action) => (action.risk?.mode === 'two_person' ? 2 : 1);

function section(name, ...body) {
  return h('div', {}, h('div', { class: 'section-title' }, name), body);
}

function riskFactors(risk) {
  if (!risk?.factors?.length) return null;
  const total = Math.max(risk.score, 1e-9);
  return h('div', { class: 'factors' }, risk.factors.map((f) => [
    h('span', {}, words(f.name)),
    h('div', { class: 'bar', title: `value ${compact(f.value)}` },
      h('span', { style: `width: ${Math.min(100, (f.contribution / total) * 100).toFixed(0)}%` })),
    h('span', { class: 'num' }, `+${compact(f.contribution, 2)}`),
  ]));
}

function approvalsSoFar(action) {
  const have = action.approvals ?? [];
  const text = `${have.length} of ${needed(action)} approval${needed(action) > 1 ? 's' : ''}`;
  return h('div', {}, text,
    have.map((a) => h('span', { class: 'muted' }, ` · ${a.by} at ${time(a.at_ms)}`)));
}

/** What the action is and why: the part of a card above the decision form. */
function summary(action) {
  if (!action.evidence) return [notice('Loading the action…')];
  return [
    h('p', { class: 'reason' }, action.reason),
    action.expected_effect ? section('Expected effect', action.expected_effect) : null,
    section('Change', h('code', {}, change(action.change)),
      h('span', { class: 'muted' }, action.inverse ? ` (undo: ${change(action.inverse)})` : ' (cannot be undone)')),
    action.risk ? section('Risk', h('div', {},
      pill('risk', action.risk.class), ` score ${num(action.risk.score, 2)}, mode ${words(action.risk.mode)}`),
    riskFactors(action.risk)) : null,
    section('Approvals', approvalsSoFar(action)),
  ];
}

/** The numbers behind the action, below the form: open when short, or when `open`. */
function evidence(action, open) {
  if (!action.evidence) return [];
  const shown = open ?? JSON.stringify(action.evidence).length < 2500;
  return [h('details', { open: shown }, h('summary', { class: 'section-title' }, 'Evidence'), kvList(action.evidence))];
}

/** One pending action's card. */
class ActionCard {
  constructor(action, canApprove, onDecided) {
    this.id = action.id;
    this.summary = h('div', { class: 'card-body' });
    this.evidence = h('div');
    this.expires = h('span', { class: 'muted right' });
    this.heading = h('h3');
    this.comment = h('textarea', { placeholder: 'Comment (optional)', 'aria-label': 'Comment' });
    this.el = h('div', { class: 'card action-card', 'data-action-id': action.id, 'data-kind': action.kind },
      h('header', { class: 'card-head' }, this.heading, this.expires),
      this.summary,
      canApprove ? this.form(onDecided) : notice('Your role can read but not decide approvals.'),
      this.evidence);
    this.update(action);
  }

  form(onDecided) {
    const decide = (verb) => actionButton(verb === 'approve' ? 'Approve' : 'Reject',
      () => api.post(`/actions/${this.id}/${verb}`, { comment: this.comment.value.trim() || undefined }),
      { done: (action) => onDecided(action, verb), attrs: { class: verb, 'data-act': verb } });
    return h('div', { class: 'decide-form' }, this.comment,
      h('div', { class: 'decide' }, decide('reject'), decide('approve')));
  }

  update(action) {
    this.action = action;
    this.version = versionOf(action);
    replace(this.heading, `#${action.id} ${words(action.kind)} `,
      h('span', { class: 'muted' }, `pool ${action.pool}`),
      action.agent ? [' · ', link(`agent/${encodeURIComponent(action.agent)}`, action.agent)] : null);
    replace(this.summary, summary(action));
    // Keep the evidence open or closed as the reader left it.
    replace(this.evidence, evidence(action, this.evidence.querySelector('details')?.open));
    this.tick();
  }

  /** Refreshes the expiry countdown. */
  tick() {
    const { expires_ms: expires, created_ms: created } = this.action;
    setText(this.expires, expires
      ? (expires > Date.now() ? `expires in ${duration(expires - Date.now())}` : 'expiring')
      : `proposed ${ago(created)}`);
  }
}

/** Shows the actions waiting for approval in `root`, kept current until `scope` closes. */
export function mount(root, { store, session, scope }) {
  const list = h('div', { class: 'approvals' });
  const empty = notice('No action is waiting for approval.');
  const count = h('span', { class: 'muted' });
  const cards = new Map();

  function onDecided(action, verb) {
    toast(`Action #${action.id} ${verb === 'approve' ? 'approved' : 'rejected'}: now ${words(action.state)}`, 'ok');
    store.merge(action);
  }

  function sync() {
    const pending = store.pending();
    const ids = new Set(pending.map((a) => a.id));
    for (const [id, card] of cards) {
      if (ids.has(id)) continue;
      card.el.remove();
      cards.delete(id);
    }
    for (const action of pending) {
      const card = cards.get(action.id);
      if (card) {
        if (card.version !== versionOf(action)) card.update(action);
        continue;
      }
      const fresh = new ActionCard(action, session.canApprove, onDecided);
      cards.set(action.id, fresh);
      list.append(fresh.el);
    }
    empty.hidden = cards.size > 0;
    setText(count, `${cards.size} waiting`);
  }

  root.append(panel('Waiting for approval', { tools: [count] }, empty, list));
  scope.listen(store, 'reset', sync);
  scope.listen(store, 'action', sync);
  scope.every(1000, () => cards.forEach((card) => card.tick()));
  sync();
}
