// The fleet view: a card per pool (size against bounds, and load) above the table of agents
// with their live readings.

import { agentTable } from './fleet-table.js';
import { poolCards } from './fleet-pools.js';

/** The page title. */
export const title = () => 'Fleet';

/** Shows the pool cards and the agent table in `root`, kept current until `scope` closes. */
export function mount(root, { store, scope }) {
  root.append(poolCards(store, scope), agentTable(store, scope));
}
