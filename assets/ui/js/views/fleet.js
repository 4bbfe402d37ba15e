// The fleet view: a card per pool (size against bounds, and load) above the table of agents
// with their live readings.

import { agentTable } from './fleet-table.js';
import { poolCards } from './fleet-pools.js';

export const title = () => 'Fleet';

export function mount(root, { store, scope }) {
  root.append(poolCards(store, scope), agentTable(store, scope));
}
