// One mapping from every status the API uses to a colour tone, so an agent status, an alert
// level or state and an action state look the same everywhere. Tones are CSS `data-tone`s.

import { h, setText } from './dom.js';
import { words } from './format.js';

const TONES = {
  agent: {
    starting: 'info', active: 'ok', idle: 'muted', busy: 'warn', error: 'bad', offline: 'off',
  },
  level: { info: 'info', warning: 'warn', critical: 'bad', emergency: 'crit' },
  alert: { pending: 'warn', firing: 'bad', resolved: 'ok' },
  action: {
    proposed: 'info', pending_approval: 'warn', approved: 'info', applying: 'info',
    verifying: 'info', applied: 'ok', rolling_back: 'accent', rolled_back: 'accent',
    rejected: 'off', expired: 'off', failed: 'bad', superseded: 'off',
  },
  risk: { low: 'ok', medium: 'warn', high: 'bad', critical: 'crit' },
  silence: { active: 'ok', pending: 'info', expired: 'off' },
};

/** The tone of `value` in the vocabulary `kind` (agent, level, alert, action, risk, silence). */
export function tone(kind, value) {
  return TONES[kind]?.[value] ?? 'muted';
}

/** A coloured pill showing `value` (in words). */
export function pill(kind, value, attrs = {}) {
  return h('span', { class: 'pill', 'data-tone': tone(kind, value), ...attrs }, words(value));
}

/** Updates a pill made by `pill` in place. */
export function setPill(el, kind, value) {
  el.dataset.tone = tone(kind, value);
  setText(el, words(value));
}

/** Every action state, in lifecycle order (as the API names them). */
export const ACTION_STATES = [
  'proposed', 'pending_approval', 'approved', 'applying', 'verifying', 'applied',
  'rolling_back', 'rejected', 'expired', 'failed', 'rolled_back', 'superseded',
];

/** Every action kind. */
export const ACTION_KINDS = ['scale', 'redistribute', 'restart', 'adjust_threshold', 'adjust_concurrency', 'switch_model'];

/** The four metrics the dashboard charts for every agent, with their labels and units. */
export const METRICS = [
  { name: 'cpu_percent', label: 'CPU', unit: '%' },
  { name: 'memory_percent', label: 'Memory', unit: '%' },
  { name: 'response_time_ms', label: 'Response', unit: 'ms' },
  { name: 'error_rate', label: 'Errors', unit: '%' },
];
