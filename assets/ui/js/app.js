// The dashboard's entry point: the token form, the signed-in shell (header, router, live
// stream and store), and signing out, by hand or when the server refuses the token.

import { api, onUnauthorized } from './api.js';
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

function signOut(message = '') {
  stream.stop();
  router.stop();
  store.clear();
  session.signOut();
  showLogin(message);
}

/** Checks a token by asking for a stream ticket, which also says the token's role. */
async function signIn(token) {
  const ticket = await api.ticket(token);
  session.signIn(token, ticket.role);
  enter(ticket.ticket);
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
  signIn(session.token).catch((error) => signOut(error.message));
} else {
  showLogin();
}
