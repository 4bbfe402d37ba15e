// uPlot helpers: themed time-series charts that follow their container's width, and tiny
// axis-less sparklines. Every chart of the dashboard is made here.

import uPlot from '../vendor/uplot/uPlot.esm.js';

export { uPlot };

/** Series colours, the same in light and dark themes (both read well on either). */
export const COLORS = {
  cpu_percent: '#3b82f6',
  memory_percent: '#a855f7',
  response_time_ms: '#f59e0b',
  error_rate: '#ef4444',
  size: '#10b981',
  bound: '#94a3b8',
};

/** `color` with an alpha (0..1), for fills. */
export function alpha(color, a) {
  return color + Math.round(a * 255).toString(16).padStart(2, '0');
}

/** Axis and grid colours of the current theme, from the CSS variables. */
function theme() {
  const css = getComputedStyle(document.documentElement);
  const read = (name) => css.getPropertyValue(name).trim();
  return { text: read('--fg-muted'), grid: read('--grid'), font: '11px system-ui, sans-serif' };
}

const HOURS_MINUTES = uPlot.fmtDate('{HH}:{mm}');
const WITH_SECONDS = uPlot.fmtDate('{HH}:{mm}:{ss}');
const DAY = uPlot.fmtDate('{M}/{D}');

/** 24-hour tick labels for a time axis, with the date on day-sized ticks. */
function timeValues(u, splits, axisIdx, space, increment) {
  const format = increment >= 86_400 ? DAY : increment < 60 ? WITH_SECONDS : HOURS_MINUTES;
  return splits.map((s) => format(new Date(s * 1000)));
}

/** The themed time (x) axis. */
export function timeAxis(extra = {}) {
  return axis({ values: timeValues, ...extra });
}

/** A themed axis; `extra` overrides (e.g. `{scale: 'pct', side: 1}`). */
export function axis(extra = {}) {
  const t = theme();
  return {
    stroke: t.text,
    font: t.font,
    grid: { stroke: t.grid, width: 1 },
    ticks: { stroke: t.grid, width: 1, size: 4 },
    size: 44,
    ...extra,
  };
}

/** Non-negative data with a little headroom, 0 at the bottom. */
const fromZero = (u, min, max) => [Math.min(0, min ?? 0), max > 0 ? max * 1.1 : 1];

/** The data's own span with a margin, so small changes show (sparklines). */
const fitted = (u, min, max) => {
  if (min === null || max === null) return [0, 1];
  const pad = Math.max((max - min) * 0.15, Math.abs(max) * 0.02, 1e-6);
  return [Math.max(0, min - pad), max + pad];
};

/** A time-series chart that keeps the width of `el`. Returns `{plot, setData, destroy}`. */
export function timeChart(el, { height = 180, series, axes, scales = {}, bands, legend = true }) {
  const plot = new uPlot({
    width: el.clientWidth || 400,
    height,
    series: [{}, ...series],
    axes: axes ?? [timeAxis(), axis()],
    scales: { x: { time: true }, y: { range: fromZero }, ...scales },
    bands,
    legend: { show: legend, live: true },
    cursor: { points: { size: 5 }, drag: { x: false, y: false } },
  }, [[], ...series.map(() => [])], el);
  const observer = new ResizeObserver(() => {
    const width = el.clientWidth;
    if (width > 0 && width !== plot.width) plot.setSize({ width, height });
  });
  observer.observe(el);
  return {
    plot,
    setData: (data) => plot.setData(data),
    destroy() {
      observer.disconnect();
      plot.destroy();
    },
  };
}

/**
 * A tiny line of `color`, without axes, legend or cursor, scaled to its own data (the value
 * is printed beside it); feed it `[xs, ys]`.
 */
export function sparkline(el, color, { width = 88, height = 22 } = {}) {
  return new uPlot({
    width,
    height,
    class: 'spark',
    pxAlign: false,
    cursor: { show: false },
    select: { show: false },
    legend: { show: false },
    scales: { x: { time: false }, y: { range: fitted } },
    axes: [{ show: false }, { show: false }],
    series: [
      {},
      { stroke: color, width: 1, fill: alpha(color, 0.15), points: { show: false }, spanGaps: true },
    ],
    padding: [2, 0, 1, 0],
  }, [[], []], el);
}

/** A line series. */
export function line(label, color, extra = {}) {
  return { label, stroke: color, width: 1.5, points: { show: false }, spanGaps: true, ...extra };
}

/** A dashed line series (bounds, thresholds). */
export function dashed(label, color, extra = {}) {
  return line(label, color, { dash: [5, 4], width: 1, ...extra });
}

/** A stepped line series (counts that change at instants). */
export function stepped(label, color, extra = {}) {
  return line(label, color, { paths: uPlot.paths.stepped({ align: 1 }), width: 2, ...extra });
}

/** uPlot's value formatter with a unit, for legends. */
export function withUnit(unit, digits = 1) {
  return (u, v) => (v === null || v === undefined ? '–' : `${v.toFixed(digits)}${unit}`);
}
