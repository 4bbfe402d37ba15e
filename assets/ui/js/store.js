// The client-side picture of the fleet, fed by the event stream: agents with their latest
// readings and the last minutes of each (ring buffers), each pool's live size and load,
// alerts, and actions. Views read it and subscribe to its events:
//   reset            a snapshot replaced everything (after every (re)connect)
//   samples          Set of agent ids with new readings (about once a second)
//   membership       an agent joined or left ({event, agent, pool})
//   fleet            any fleet event (status changes too)
//   alert            one alert changed
//   entry            one action log row (a transition) arrived
//   action           one action changed (state, or its full detail arrived)
//   pending          the number of actions waiting for approval changed

import { Emitter } from './emitter.js';
import { Ring } from './ring.js';
import { METRICS } from './status.js';

/** Agent readings kept: 10 minutes at one a second. */
const AGENT_HISTORY = 600;
/** Pool size and load points kept: 30 minutes at one a second. */
const POOL_HISTORY = 1800;
const POOL_WINDOW_MS = 30 * 60_000;
/** Resolved alerts kept client-side, newest first. */
const RESOLVED_KEPT = 200;

/**
 * An agent as the stream sends it (`{id, pool, status, ts_ms, metrics, anomaly_scores?}`), or
 * as a summary of GET /agents (the four metrics and the highest anomaly score flat).
 */
function agentOf(raw) {
  const scores = raw.anomaly_scores ?? {};
  const metrics = raw.metrics ?? Object.fromEntries(METRICS
    .filter((m) => raw[m.name] !== null && raw[m.name] !== undefined)
    .map((m) => [m.name, raw[m.name]]));
  return {
    id: raw.id,
    pool: raw.pool,
    status: raw.status,
    ts: raw.ts_ms ?? raw.last_sample_ms ?? null,
    metrics,
    scores,
    score: raw.anomaly_score ?? Math.max(0, ...Object.values(scores)),
  };
}

/** Agents in one page of GET /agents when preloading. */
const PRELOAD_PAGE = 5000;

/** The client-side picture of the fleet, its alerts and actions, fed by the event stream. */
export class Store extends Emitter {
  agents = new Map();
  rings = new Map();
  pools = new Map();
  alerts = new Map();
  actions = new Map();
  anomalyThreshold = 0.5;
  /** Whether a snapshot has arrived since the last preload began. */
  #snapshotted = false;
  #api;

  constructor(api) {
    super();
    this.#api = api;
  }

  /** Reads what the stream does not carry but every view needs: the anomaly threshold. */
  async loadSettings() {
    const policy = await this.#api.get('/policies');
    this.anomalyThreshold = policy.policy?.anomaly?.report_above ?? this.anomalyThreshold;
  }

  /** Forgets everything (on signing out). */
  clear() {
    for (const map of [this.agents, this.rings, this.pools, this.alerts, this.actions]) map.clear();
  }

  /**
   * Shows the agents from GET /agents (a page at a time) until the stream's snapshot arrives:
   * the REST summary answers sooner than the stream can open, so the fleet shows at once.
   */
  async preloadAgents() {
    this.#snapshotted = false;
    let next = `/agents?limit=${PRELOAD_PAGE}`;
    try {
      while (next && !this.#snapshotted) {
        const page = await this.#api.page(next);
        if (this.#snapshotted) return;
        for (const raw of page.items) if (!this.agents.has(raw.id)) this.#put(agentOf(raw));
        this.emit('membership', { event: 'joined' });
        next = page.next;
      }
    } catch (error) {
      console.warn(`cannot preload the agents: ${error.message}`);
    }
  }

  /** Handles one stream message. */
  receive(message) {
    switch (message.topic) {
      case 'snapshot': return this.#snapshot(message);
      case 'samples': return this.#samples(message.agents);
      case 'fleet': return this.#fleet(message);
      case 'alerts': return this.putAlert(message.alert);
      case 'actions': return this.#entry(message.entry);
      default: return undefined;
    }
  }

  /** The ring of an agent's recent readings (columns in METRICS order). */
  ring(id) {
    let ring = this.rings.get(id);
    if (!ring) {
      ring = new Ring(AGENT_HISTORY, METRICS.length);
      this.rings.set(id, ring);
    }
    return ring;
  }

  /** Actions waiting for approval, oldest first. */
  pending() {
    return [...this.actions.values()]
      .filter((a) => a.state === 'pending_approval')
      .sort((a, b) => a.id - b.id);
  }

  /** Whether an agent's highest anomaly score is at or above the detector's threshold. */
  anomalous(agent) {
    return agent.score >= this.anomalyThreshold;
  }

  #snapshot(message) {
    this.#snapshotted = true;
    const present = new Set();
    this.agents.clear();
    for (const raw of message.agents ?? []) {
      const agent = agentOf(raw);
      present.add(agent.id);
      this.#put(agent);
    }
    for (const id of this.rings.keys()) if (!present.has(id)) this.rings.delete(id);
    this.alerts.clear();
    for (const alert of message.alerts ?? []) this.alerts.set(alert.id, alert);
    this.actions.clear();
    for (const action of message.actions ?? []) this.actions.set(action.id, action);
    this.#recordPools(Math.max(0, ...[...this.agents.values()].map((a) => a.ts ?? 0)));
    this.emit('reset');
    this.emit('pending', this.pending().length);
    this.#fetchPending();
  }

  #samples(list = []) {
    const changed = new Set();
    let newest = 0;
    let joined = false;
    for (const raw of list) {
      const agent = agentOf(raw);
      joined ||= !this.agents.has(agent.id);
      this.#put(agent);
      changed.add(agent.id);
      newest = Math.max(newest, agent.ts ?? 0);
    }
    if (joined) this.emit('membership', { event: 'joined' });
    this.#recordPools(newest);
    this.emit('samples', changed);
  }

  /** Stores an agent's latest readings and appends them to its ring when they are new. */
  #put(agent) {
    this.agents.set(agent.id, agent);
    if (agent.ts === null) return;
    const ring = this.ring(agent.id);
    if (agent.ts > ring.last) ring.push(agent.ts, METRICS.map((m) => agent.metrics[m.name]));
  }

  /** Appends each pool's size and mean CPU at `ts` (server time) to its ring. */
  #recordPools(ts) {
    if (!ts) return;
    const totals = new Map();
    for (const agent of this.agents.values()) {
      const t = totals.get(agent.pool) ?? { count: 0, cpu: 0, read: 0 };
      t.count += 1;
      const cpu = agent.metrics.cpu_percent;
      if (cpu !== undefined && cpu !== null) {
        t.cpu += cpu;
        t.read += 1;
      }
      totals.set(agent.pool, t);
    }
    for (const pool of this.pools.keys()) if (!totals.has(pool)) totals.set(pool, { count: 0 });
    for (const [pool, t] of totals) {
      let ring = this.pools.get(pool);
      if (!ring) {
        ring = new Ring(POOL_HISTORY, 2);
        this.pools.set(pool, ring);
      }
      if (ts <= ring.last) continue;
      ring.push(ts, [t.count, t.read ? t.cpu / t.read : null]);
      ring.trim(ts - POOL_WINDOW_MS);
    }
  }

  #fleet(message) {
    const agent = this.agents.get(message.agent);
    if (message.event === 'joined' && !agent) {
      this.agents.set(message.agent, agentOf({
        id: message.agent, pool: message.pool, status: message.status ?? 'starting',
      }));
    } else if (message.event === 'left') {
      this.agents.delete(message.agent);
      this.rings.delete(message.agent);
    } else if (message.event === 'status' && agent) {
      agent.status = message.status;
    }
    if (message.event !== 'status') this.emit('membership', message);
    this.emit('fleet', message);
  }

  /** Takes a changed alert (from the stream, or as an acknowledgement answered it). */
  putAlert(alert) {
    this.alerts.set(alert.id, alert);
    this.#dropOldResolved();
    this.emit('alert', alert);
  }

  #dropOldResolved() {
    const resolved = [...this.alerts.values()]
      .filter((a) => a.state === 'resolved')
      .sort((a, b) => (b.resolved_ms ?? 0) - (a.resolved_ms ?? 0));
    for (const alert of resolved.slice(RESOLVED_KEPT)) this.alerts.delete(alert.id);
  }

  /** An action transition: updates the action, fetching its detail when it starts waiting. */
  #entry(entry) {
    const before = this.pending().length;
    const known = this.actions.get(entry.action_id);
    const action = known ?? {
      id: entry.action_id, kind: entry.kind, pool: entry.pool, agent: entry.agent,
      change: entry.change, inverse: entry.inverse, reason: entry.reason, approvals: [],
      created_ms: entry.ts_ms,
    };
    action.state = entry.to_state;
    action.updated_ms = entry.ts_ms;
    this.actions.set(action.id, action);
    this.emit('entry', entry);
    this.emit('action', action);
    if (entry.to_state === 'pending_approval' && !action.evidence) this.#fetchAction(action.id);
    const after = this.pending().length;
    if (after !== before) this.emit('pending', after);
  }

  /** Merges a full action read over REST, unless the stream has since moved it on. */
  merge(full) {
    const known = this.actions.get(full.id);
    const newer = known && (known.updated_ms ?? 0) > full.updated_ms;
    const before = this.pending().length;
    this.actions.set(full.id, newer ? { ...full, state: known.state, updated_ms: known.updated_ms } : full);
    this.emit('action', this.actions.get(full.id));
    const after = this.pending().length;
    if (after !== before) this.emit('pending', after);
  }

  async #fetchAction(id) {
    try {
      this.merge(await this.#api.get(`/actions/${id}`));
    } catch (error) {
      console.warn(`cannot read action ${id}: ${error.message}`);
    }
  }

  /** The snapshot holds the newest actions only: reads every pending one besides. */
  async #fetchPending() {
    try {
      const pending = await this.#api.all('/actions?status=pending_approval&limit=1000');
      for (const action of pending) this.merge(action);
    } catch (error) {
      console.warn(`cannot read pending actions: ${error.message}`);
    }
  }
}
