// DOM helpers: a small element builder that only ever sets text (never HTML), and a few
// utilities views share.

/**
 * Builds an element. `attrs` keys: `class`, `style`, `data-*`/`aria-*` and other attributes,
 * `on<event>` handlers, and `dataset`-free properties such as `value`, `checked`, `disabled`,
 * `hidden`, `type`. Children are nodes, strings (set as text), arrays, or null/false (skipped).
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) setAttr(el, key, value);
  append(el, children);
  return el;
}

const PROPS = new Set(['value', 'checked', 'disabled', 'hidden', 'selected', 'open', 'type']);

function setAttr(el, key, value) {
  if (value === undefined || value === null || value === false) return;
  if (key.startsWith('on') && typeof value === 'function') {
    el.addEventListener(key.slice(2).toLowerCase(), value);
  } else if (key === 'class') {
    el.className = value;
  } else if (PROPS.has(key)) {
    el[key] = value;
  } else {
    el.setAttribute(key, value === true ? '' : String(value));
  }
}

/** Appends children (nodes, strings, numbers, arrays; null and false skipped). */
export function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

/** Removes every child of `el` and appends `children`. */
export function replace(el, ...children) {
  el.replaceChildren();
  return append(el, children);
}

/** Sets an element's text only when it differs (cheap for cells updated every second). */
export function setText(el, text) {
  const value = String(text);
  if (el.textContent !== value) el.textContent = value;
}

/** A link to a dashboard route. */
export function link(route, text, attrs = {}) {
  return h('a', { href: `#/${route}`, ...attrs }, text);
}

/**
 * Calls `fn` at most once per `ms`, the last call winning (trailing edge); `.cancel()` drops a
 * call still waiting.
 */
export function throttle(fn, ms) {
  let timer = null;
  let lastArgs = [];
  const throttled = (...args) => {
    lastArgs = args;
    if (timer) return;
    timer = setTimeout(() => {
      timer = null;
      fn(...lastArgs);
    }, ms);
  };
  throttled.cancel = () => {
    clearTimeout(timer);
    timer = null;
  };
  return throttled;
}

/** A `<select>` of `[value, label]` pairs (or plain values). */
export function select(options, attrs = {}) {
  return h('select', attrs, options.map((option) => {
    const [value, label] = Array.isArray(option) ? option : [option, option];
    return h('option', { value }, label);
  }));
}
