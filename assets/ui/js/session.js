// The signed-in session: the token (sessionStorage only, so it dies with the tab) and the
// role the server reported for it, with the permission checks the views use to decide which
// buttons to show (the server checks again).

const KEY = 'swarmpilot.token';
const ROLES = ['viewer', 'operator', 'approver', 'admin'];

export const session = {
  role: null,

  get token() {
    return sessionStorage.getItem(KEY);
  },

  /** Keeps `token` for this tab, with the role the server reported for it. */
  signIn(token, role) {
    sessionStorage.setItem(KEY, token);
    this.role = role;
  },

  /** Forgets the token and role. */
  signOut() {
    sessionStorage.removeItem(KEY);
    this.role = null;
  },

  /** Whether the role is `role` or above. */
  atLeast(role) {
    return ROLES.indexOf(this.role) >= ROLES.indexOf(role);
  },

  /** Acknowledge alerts, manage silences, propose actions. */
  get canOperate() { return this.atLeast('operator'); },
  /** Approve or reject actions. */
  get canApprove() { return this.atLeast('approver'); },
  /** Pause or resume automation, reload the policy. */
  get canAdmin() { return this.atLeast('admin'); },
};
