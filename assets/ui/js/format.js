// Formatting of numbers, times, durations and changes for display.

const DASH = '–';

/** A number with `digits` decimals, or a dash for null/undefined/NaN. */
export function num(value, digits = 1) {
  if (value === null || value === undefined || Number.isNaN(value)) return DASH;
  return Number(value).toFixed(digits);
}

/** A number with up to `digits` decimals and no trailing zeros (for evidence and JSON). */
export function compact(value, digits = 3) {
  if (!Number.isFinite(value)) return String(value);
  return String(Number(value.toFixed(digits)));
}

/** A byte count as `812 B`, `67.4 MB`. */
export function bytes(value) {
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let v = value;
  let unit = 0;
  while (Math.abs(v) >= 1000 && unit < units.length - 1) {
    v /= 1000;
    unit += 1;
  }
  return `${unit ? v.toFixed(1) : v} ${units[unit]}`;
}

/** A metric value with the precision that suits it. */
export function metric(name, value) {
  if (value === null || value === undefined) return DASH;
  if (name === 'response_time_ms') return num(value, Math.abs(value) >= 99.95 ? 0 : 1);
  if (name === 'error_rate') return num(value, 2);
  return num(value, 1);
}

/** Local time of an epoch-ms instant: time only when today, else date and time. */
export function time(ms) {
  if (ms === null || ms === undefined) return DASH;
  const date = new Date(ms);
  const today = new Date().toDateString() === date.toDateString();
  const clock = date.toLocaleTimeString([], { hour12: false });
  return today ? clock : `${date.toLocaleDateString()} ${clock}`;
}

/** A duration in milliseconds as `45s`, `12m`, `3h 5m`, `2d 4h`. */
export function duration(ms) {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m`;
  const h = Math.floor(m / 60);
  if (h < 24) return m % 60 ? `${h}h ${m % 60}m` : `${h}h`;
  const d = Math.floor(h / 24);
  return h % 24 ? `${d}d ${h % 24}h` : `${d}d`;
}

/** `3m ago` / `in 20s` relative to now. */
export function ago(ms, now = Date.now()) {
  if (ms === null || ms === undefined) return DASH;
  const delta = now - ms;
  return delta >= 0 ? `${duration(delta)} ago` : `in ${duration(-delta)}`;
}

/** A snake_case name as words: `pending_approval` → `pending approval`. */
export function words(name) {
  return String(name ?? '').replaceAll('_', ' ');
}

/** One line describing an action's change. */
export function change(c) {
  if (!c) return DASH;
  switch (c.type) {
    case 'scale': return `scale ${c.from} → ${c.to}`;
    case 'restart': return `restart ${c.agent}`;
    case 'adjust_threshold': return `${c.rule}: ${compact(c.from)} → ${compact(c.to)}`;
    case 'redistribute': return `reweight ${Object.keys(c.to ?? {}).length} agents`;
    case 'adjust_concurrency': return `concurrency ${c.from} → ${c.to}`;
    case 'switch_model': return `${c.agent} model ${c.from} → ${c.to}`;
    default: return words(c.type);
  }
}

/** Compares agent ids naturally, so `w-2` sorts before `w-10`. */
export const naturalCompare = new Intl.Collator(undefined, { numeric: true }).compare;

/** Epoch ms of an RFC 3339 string (or ms passed through). */
export function epoch(value) {
  return typeof value === 'number' ? value : Date.parse(value);
}
