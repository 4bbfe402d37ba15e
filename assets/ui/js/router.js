// Hash routing (`#/name/param...`): mounts one view at a time into the main element, giving
// it a Scope that undoes its subscriptions and timers when the route changes.

/** What a view registers to be undone when it is left. */
export class Scope {
  #cleanups = [];
  alive = true;

  /** Runs `fn` when the view is left. */
  add(fn) {
    this.#cleanups.push(fn);
  }

  /** Subscribes to an emitter for as long as the view is shown. */
  listen(emitter, type, fn) {
    this.add(emitter.on(type, fn));
  }

  /** `setInterval` for as long as the view is shown. */
  every(ms, fn) {
    const id = setInterval(fn, ms);
    this.add(() => clearInterval(id));
  }

  close() {
    this.alive = false;
    for (const fn of this.#cleanups.splice(0).reverse()) fn();
  }
}

/** The route in the address: `{name, params}`. */
function currentRoute() {
  const [name = '', ...params] = location.hash.replace(/^#\/?/, '').split('/').map(decodeURIComponent);
  return { name, params };
}

/** Shows the view the address names, one at a time, in a root element. */
export class Router {
  #root;
  #views;
  #context;
  #scope = null;
  #onChange;

  /** `views`: name → `{title, mount(root, ctx)}`; `context` is passed to every view. */
  constructor(root, views, context, onChange = () => {}) {
    this.#root = root;
    this.#views = views;
    this.#context = context;
    this.#onChange = onChange;
    this.render = this.render.bind(this);
  }

  start() {
    window.addEventListener('hashchange', this.render);
    this.render();
  }

  stop() {
    window.removeEventListener('hashchange', this.render);
    this.#scope?.close();
    this.#scope = null;
    this.#root.replaceChildren();
  }

  render() {
    const { name, params } = currentRoute();
    const view = this.#views[name];
    if (!view) {
      location.replace('#/fleet');
      return;
    }
    this.#scope?.close();
    this.#root.replaceChildren();
    this.#scope = new Scope();
    document.title = `${view.title(params)} · swarmpilot`;
    this.#onChange(name);
    try {
      view.mount(this.#root, { ...this.#context, params, scope: this.#scope });
    } catch (error) {
      console.error(error);
      this.#root.textContent = `This view failed: ${error.message}`;
    }
  }
}
