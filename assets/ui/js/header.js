// The header: which view is current, the stream's connection state, the role, whether
// automation is paused or halted (GET /automation, read on each view entry and reconnect),
// and the counts of firing alerts and pending approvals.

import { api } from './api.js';
import { setText } from './dom.js';
import { session } from './session.js';

const $ = (id) => document.getElementById(id);

const CONNECTION_TEXT = {
  connecting: 'connecting',
  live: 'live',
  reconnecting: 'reconnecting',
  closed: 'offline',
};

/** Views without a link of their own, and the link that leads to them. */
const PARENT = { agent: 'fleet' };

/** Highlights the nav link of view `name`. */
export function showRoute(name) {
  const current = PARENT[name] ?? name;
  for (const a of document.querySelectorAll('[data-nav]')) {
    a.classList.toggle('current', a.dataset.nav === current);
  }
}

/** Shows the stream's state (`#conn-status` says `live` while it is open). */
export function showConnection({ state, reason }) {
  const el = $('conn-status');
  el.dataset.state = state;
  setText(el, CONNECTION_TEXT[state] ?? state);
  el.title = reason || 'Live event stream';
}

/** Shows the signed-in role. */
export function showRole() {
  setText($('role'), session.role ?? '');
}

function showCount(id, count) {
  const el = $(id);
  el.hidden = !count;
  setText(el, count);
}

/** Shows the number of actions waiting for approval (hidden at zero). */
export const showPending = (count) => showCount('pending-count', count);
/** Shows the number of firing alerts (hidden at zero). */
export const showFiring = (count) => showCount('firing-count', count);

/** Reads and shows the automation state; answers it for callers that need it too. */
export async function refreshAutomation() {
  const el = $('automation-state');
  try {
    const automation = await api.get('/automation');
    const [text, tone, title] = describe(automation);
    el.dataset.tone = tone;
    setText(el, text);
    el.title = title;
    return automation;
  } catch (error) {
    el.dataset.tone = 'muted';
    setText(el, 'automation ?');
    el.title = error.message;
    return null;
  }
}

function describe(a) {
  if (a.halted) return ['halted', 'bad', `Actuation stopped since ${a.halted.since}: ${a.halted.reason}`];
  if (a.paused) return ['paused', 'warn', `Automation paused by ${a.by} since ${a.since}`];
  if (a.dry_run) return ['dry run', 'info', 'Automation proposes and logs, never applies'];
  return ['automation on', 'ok', 'Automation is running'];
}
