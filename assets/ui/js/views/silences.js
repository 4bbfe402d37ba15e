// Silences: the ones on record with an Expire button, and a form to create one (matchers on
// the alert labels rule, agent, pool, level and metric; a duration; a comment). Operators
// and above may change them.

import { api } from '../api.js';
import { h, replace, select } from '../dom.js';
import { ago, duration, time } from '../format.js';
import { pill } from '../status.js';
import { actionButton, emptyRow, notice, panel, table, toast } from '../widgets.js';

const LABELS = ['rule', 'agent', 'pool', 'level', 'metric'];
const DURATIONS = [30, 60, 120, 240, 720, 1440].map((m) => [String(m * 60_000), duration(m * 60_000)]);
const HEADERS = ['#', 'Matchers', 'State', 'Ends', 'Comment', 'By', ''];
const EXPIRED_SHOWN = 10;

function matcherText(m) {
  return `${m.name}${m.is_regex ? '=~' : '='}"${m.value}"`;
}

/** One matcher's inputs. */
function matcherRow(name = 'rule', value = '', onRemove) {
  const row = h('div', { class: 'matcher' });
  row.fields = {
    name: select(LABELS, { 'aria-label': 'Label' }),
    value: h('input', { type: 'text', placeholder: 'value', 'aria-label': 'Value', value }),
    regex: h('input', { type: 'checkbox' }),
  };
  row.fields.name.value = name;
  row.append(row.fields.name, row.fields.value,
    h('label', { class: 'check' }, row.fields.regex, ' regex'),
    h('button', { type: 'button', class: 'ghost', title: 'Remove', onclick: () => onRemove(row) }, '✕'));
  return row;
}

/** The silences panel. Returns `{el, prefill(alert)}`; prefill fills the form from an alert. */
export function silencesPanel(session, scope) {
  const tbody = h('tbody', {}, emptyRow(HEADERS.length, 'Loading…'));

  async function reload() {
    try {
      const silences = await api.get('/silences');
      if (scope.alive) replace(tbody, rows(silences));
    } catch (error) {
      replace(tbody, emptyRow(HEADERS.length, `Cannot read the silences: ${error.message}`));
    }
  }

  function rows(silences) {
    const live = silences.filter((s) => s.state !== 'expired');
    const expired = silences.filter((s) => s.state === 'expired')
      .sort((a, b) => b.ends_ms - a.ends_ms).slice(0, EXPIRED_SHOWN);
    const shown = [...live, ...expired];
    if (!shown.length) return [emptyRow(HEADERS.length, 'No silences.')];
    return shown.map((s) => h('tr', { 'data-silence-id': s.id },
      h('td', { class: 'num' }, s.id),
      h('td', {}, h('code', {}, s.matchers.map(matcherText).join(', '))),
      h('td', {}, pill('silence', s.state)),
      h('td', { title: time(s.ends_ms) }, s.state === 'pending' ? `starts ${ago(s.starts_ms)}` : ago(s.ends_ms)),
      h('td', { class: 'wrap' }, s.comment),
      h('td', {}, s.created_by),
      h('td', {}, session.canOperate && s.state !== 'expired'
        ? actionButton('Expire', () => api.del(`/silences/${s.id}`), {
          attrs: { class: 'danger' },
          done: () => { toast(`Silence #${s.id} expired`, 'ok'); reload(); },
        })
        : null)));
  }

  const form = session.canOperate ? silenceForm(reload) : null;
  reload();
  return {
    el: panel('Silences', {}, h('div', { class: 'table-wrap' }, table(HEADERS, tbody)),
      form ? form.el : notice('Your role can read silences but not change them.')),
    prefill: (alert) => form?.prefill(alert),
  };
}

/** The form that creates a silence; `created()` runs after the server accepts one. */
function silenceForm(created) {
  const matchers = h('div', { class: 'form' });
  const remove = (row) => row.remove();
  const addMatcher = (name, value) => matchers.append(matcherRow(name, value, remove));
  const length = select(DURATIONS, { 'aria-label': 'Duration' });
  length.value = String(120 * 60_000);
  const comment = h('input', { type: 'text', placeholder: 'Why (required)', 'aria-label': 'Comment', style: 'flex: 1' });

  function body() {
    return {
      matchers: [...matchers.children].map(({ fields }) => ({
        name: fields.name.value, value: fields.value.value, is_regex: fields.regex.checked,
      })),
      ends_at: new Date(Date.now() + Number(length.value)).toISOString(),
      comment: comment.value.trim(),
    };
  }

  const submit = actionButton('Create silence', () => api.post('/silences', body()), {
    attrs: { class: 'primary' },
    done: (silence) => {
      toast(`Silence #${silence.id} created`, 'ok');
      comment.value = '';
      created();
    },
  });
  addMatcher('rule', '');

  const el = h('div', { class: 'form', style: 'margin-top: 10px' },
    h('h3', {}, 'New silence'),
    h('div', { class: 'muted' }, 'Every matcher must match an alert\'s labels for the silence to mute it.'),
    matchers,
    h('div', { class: 'row' },
      h('button', { type: 'button', onclick: () => addMatcher('agent', '') }, 'Add matcher'),
      h('label', {}, 'for'), length, comment, submit));

  return {
    el,
    prefill(alert) {
      matchers.replaceChildren();
      addMatcher('rule', alert.rule);
      addMatcher('agent', alert.agent);
      comment.focus();
      el.scrollIntoView({ behavior: 'smooth', block: 'center' });
    },
  };
}
