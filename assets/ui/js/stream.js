// The live event stream: a WebSocket opened with a fresh single-use ticket each time, that
// reconnects by itself with backoff (1 s doubling to 30 s, reset once a snapshot arrives).
// Emits `state` (connecting | live | reconnecting | closed, with a reason) and `message`.

import { Emitter } from './emitter.js';

const FIRST_DELAY_MS = 1000;
const MAX_DELAY_MS = 30_000;

/** The live event stream, reconnecting by itself until stopped. */
export class Stream extends Emitter {
  #getTicket;
  #socket = null;
  #timer = null;
  #delay = FIRST_DELAY_MS;
  #stopped = true;
  /** Counts connect attempts (and stops): only the latest attempt may open or keep a socket. */
  #generation = 0;
  state = 'closed';

  /** `getTicket()` resolves to a fresh ticket string. */
  constructor(getTicket) {
    super();
    this.#getTicket = getTicket;
  }

  /** Connects, using `ticket` for the first attempt when one is at hand. */
  start(ticket = null) {
    this.#abandon('restarted');
    this.#stopped = false;
    this.#delay = FIRST_DELAY_MS;
    this.#connect(ticket);
  }

  /** Closes the stream and stops reconnecting. */
  stop() {
    this.#stopped = true;
    this.#abandon('signed out');
    this.#setState('closed');
  }

  /** Drops the current attempt: its waiting retry, its ticket on the way, and its socket. */
  #abandon(reason) {
    this.#generation += 1;
    clearTimeout(this.#timer);
    this.#socket?.close(1000, reason);
    this.#socket = null;
  }

  async #connect(ticket) {
    const generation = ++this.#generation;
    this.#setState(this.state === 'closed' ? 'connecting' : 'reconnecting');
    try {
      const fresh = ticket ?? (await this.#getTicket());
      if (this.#stopped || generation !== this.#generation) return;
      this.#open(fresh);
    } catch (error) {
      if (generation === this.#generation) this.#retry(error.message);
    }
  }

  #open(ticket) {
    const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
    const socket = new WebSocket(`${scheme}://${location.host}/api/v1/stream?ticket=${encodeURIComponent(ticket)}`);
    this.#socket?.close(1000, 'replaced');
    this.#socket = socket;
    socket.addEventListener('message', (event) => {
      if (this.#socket === socket) this.#receive(event.data);
      else socket.close(1000, 'replaced');
    });
    socket.addEventListener('close', (event) => {
      if (this.#socket !== socket) return;
      this.#socket = null;
      this.#retry(event.reason || `closed (${event.code})`);
    });
  }

  #receive(text) {
    let message;
    try {
      message = JSON.parse(text);
    } catch {
      console.warn('stream: not JSON', text.slice(0, 200));
      return;
    }
    if (message.topic === 'snapshot') {
      this.#delay = FIRST_DELAY_MS;
      this.#setState('live');
    }
    this.emit('message', message);
  }

  #retry(reason) {
    if (this.#stopped) return;
    const delay = this.#delay;
    this.#delay = Math.min(this.#delay * 2, MAX_DELAY_MS);
    this.#setState('reconnecting', `${reason}; retrying in ${Math.round(delay / 1000)} s`);
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => this.#connect(null), delay);
  }

  #setState(state, reason = '') {
    this.state = state;
    this.emit('state', { state, reason });
  }
}
