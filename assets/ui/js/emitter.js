// A minimal event emitter: `on` returns the function that unsubscribes, so a view can
// collect its subscriptions and drop them all when it unmounts.

export class Emitter {
  #handlers = new Map();

  on(type, fn) {
    if (!this.#handlers.has(type)) this.#handlers.set(type, new Set());
    this.#handlers.get(type).add(fn);
    return () => this.#handlers.get(type)?.delete(fn);
  }

  emit(type, payload) {
    for (const fn of this.#handlers.get(type) ?? []) {
      try {
        fn(payload);
      } catch (error) {
        console.error(`handler for ${type} failed`, error);
      }
    }
  }
}
