// The dashboard's entry point: the token form, the signed-in shell (header, router, live
// stream and store), and signing out, by hand or when the server refuses the token.

import { api, onUnauthorized } from './api.js';
import { h, replace } from './dom.js';
import * as header from './header.js';
import { Router } from './router.js';
import { session } from './session.js';
import { Store } from './store.js';
import { Stream } from './stream.js';
import * as agent from './views/agent.js';
import * as alerts from './views/alerts.js';
import * as approvals from './views/approvals.js';
import * as fleet from './views/fleet.js';
import * as log from './views/log.js';
import * as policy from './views/policy.js';

const $ = (id) => document.getElementById(id);

/** Waits between checks of a kept token the server could not answer: 1 s doubling to 30 s. */
const RETRY_FIRST_MS = 1000;
const RETRY_MAX_MS = 30_000;

const store = new Store(api);
const stream = new Stream(async () => (await api.ticket()).ticket);
const views = { fleet, agent, alerts, approvals, log, policy };
const router = new Router($('view'), views, { store, session }, (name) => {
  header.showRoute(name);
  header.refreshAutomation();
});

stream.on('message', (message) => store.receive(message));
stream.on('state', header.showConnection);
store.on('pending', header.showPending);
const countFiring = () => header.showFiring(
  [...store.alerts.values()].filter((a) => a.state === 'firing').length);
store.on('reset', countFiring);
store.on('alert', countFiring);
store.on('reset', () => header.refreshAutomation());

/** Counts sign-ins and sign-outs: only the latest sign-in may enter or try again. */
let generation = 0;
let retryTimer = null;

onUnauthorized((error) => {
  if (session.token) signOut(`Signed out: ${error.message}`);
});

/** Shows the token form, with `message` when there is one. */
function showLogin(message = '') {
  $('shell').hidden = true;
  $('login').hidden = false;
  const error = $('login-error');
  error.hidden = !message;
  error.textContent = message;
  $('token-input').value = '';
  $('token-input').focus();
}

/** Enters the dashboard with a checked token; `ticket` opens the stream the first time. */
function enter(ticket) {
  $('login').hidden = true;
  $('shell').hidden = false;
  header.showRole();
  store.loadSettings().catch((error) => console.warn(`settings: ${error.message}`));
  store.preloadAgents();
  stream.start(ticket);
  router.start();
}

/** Leaves the dashboard and forgets the token, showing `message` on the token form. */
function signOut(message = '') {
  generation += 1;
  clearTimeout(retryTimer);
  stream.stop();
  router.stop();
  store.clear();
  session.signOut();
  showLogin(message);
}

/** Checks a token by asking for a stream ticket, which also says the token's role. */
async function signIn(token, attempt = ++generation) {
  clearTimeout(retryTimer);
  const ticket = await api.ticket(token);
  if (attempt !== generation) return;
  session.signIn(token, ticket.role);
  enter(ticket.ticket);
}

/**
 * Signs in again with the token kept over a reload: only a refusal (401) signs out; any other
 * failure (the controller restarting, the network) is shown and tried again after `delay`.
 */
async function resume(delay = RETRY_FIRST_MS) {
  const attempt = ++generation;
  try {
    await signIn(session.token, attempt);
  } catch (error) {
    if (attempt !== generation) return;
    if (error.status === 401) {
      signOut(`Signed out: ${error.message}`);
      return;
    }
    showRetrying(error.message, delay);
    retryTimer = setTimeout(() => resume(Math.min(delay * 2, RETRY_MAX_MS)), delay);
  }
}

/** Shows why the kept token could not be checked yet, when the next try is, and a way out. */
function showRetrying(message, delay) {
  $('shell').hidden = true;
  $('login').hidden = false;
  const error = $('login-error');
  error.hidden = false;
  replace(error, `Cannot sign in with the saved token: ${message}. Trying again in ${delay / 1000} s. `,
    h('button', { type: 'button', class: 'ghost', onclick: () => signOut() }, 'Sign out'));
}

$('token-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  const token = $('token-input').value.trim();
  const button = $('token-submit');
  button.disabled = true;
  try {
    await signIn(token);
  } catch (error) {
    showLogin(error.status === 401 ? `Token refused: ${error.message}` : error.message);
  } finally {
    button.disabled = false;
  }
});

$('sign-out').addEventListener('click', () => signOut());

// A change of light/dark theme redraws the view, so charts take the new colours.
matchMedia('(prefers-color-scheme: dark)').addEventListener('change', () => {
  if (session.role) router.render();
});

if (session.token) {
  resume();
} else {
  showLogin();
}
