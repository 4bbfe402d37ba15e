//! `PolicyKeeper`: keeps the policy in force. It watches the policy directory (debounced),
//! reloads on a change or on request, swaps a valid policy in atomically for every actor,
//! keeps the running one when the new one is invalid, and records each effective version
//! with its diff.

use std::path::PathBuf;
use std::time::Duration;

use actix::{Actor, AsyncContext, Context, Handler, Message, MessageResult, SpawnHandle};
use notify::Watcher;
use serde::Serialize;

use crate::clock::{self, Clock};
use crate::policy::{self, LoadError, LoadedPolicy, OverlayEntry, PolicyError, PolicyHandle};
use crate::store::Store;

/// Quiet time after the last file event before a reload, so an editor's burst of writes is
/// one reload.
const DEBOUNCE: Duration = Duration::from_millis(300);

/// Where the policy comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(tag = "type", content = "path", rename_all = "snake_case")]
pub enum PolicySource {
    /// The embedded `policies/default.toml`.
    Embedded,
    /// A directory (or one file) of TOML files.
    Path(PathBuf),
}

/// Why the last reload was refused.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct ReloadFailure {
    /// When, epoch milliseconds.
    pub at_ms: i64,
    /// RFC 3339 form of `at_ms`.
    pub time: String,
    /// Every error found.
    pub errors: Vec<PolicyError>,
}

/// Asks for a reload now; `actor` is recorded as who caused it.
#[derive(Debug, Message)]
#[rtype(result = "Result<ReloadOutcome, LoadError>")]
pub struct ReloadPolicy {
    /// Who asked: `watcher` or a user.
    pub actor: String,
}

/// What a successful reload did.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct ReloadOutcome {
    /// The version in force after it.
    pub version: String,
    /// Whether the version changed.
    pub changed: bool,
}

/// Asks for the policy in force and the last reload failure.
#[derive(Debug, Message)]
#[rtype(result = "PolicyStatus")]
pub struct GetPolicyStatus;

/// The policy in force and what happened to the last reload.
#[derive(Debug, Clone, Serialize)]
pub struct PolicyStatus {
    /// Where it comes from.
    pub source: PolicySource,
    /// The policy in force.
    pub loaded: LoadedPolicy,
    /// Why the last reload was refused, if it was.
    pub last_reload_error: Option<ReloadFailure>,
}

/// Adds an overlay entry or removes one action's entries, then reloads; refused (and the
/// overlay left as it was) when the result would not load.
#[derive(Debug, Message)]
#[rtype(result = "Result<ReloadOutcome, LoadError>")]
pub struct ChangeOverlay {
    /// An entry to add (replacing any entry for the same rule).
    pub add: Option<OverlayEntry>,
    /// Remove the entries this action set.
    pub remove_action: Option<i64>,
    /// Who caused the change, for the policy history.
    pub actor: String,
}

#[derive(Debug, Message)]
#[rtype(result = "()")]
struct FilesChanged;

/// The policy keeper actor.
pub struct PolicyKeeper {
    /// The span every handler of this actor runs in.
    span: tracing::Span,
    clock: Clock,
    handle: PolicyHandle,
    source: PolicySource,
    data_dir: PathBuf,
    store: Store,
    last_error: Option<ReloadFailure>,
    watcher: Option<notify::RecommendedWatcher>,
    pending: Option<SpawnHandle>,
}

impl PolicyKeeper {
    /// Reads the time from `clock` instead of the system's.
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// A keeper of `handle`, whose policy was loaded from `source`, with the overlay of
    /// `data_dir`.
    pub fn new(
        handle: PolicyHandle,
        source: PolicySource,
        data_dir: PathBuf,
        store: Store,
    ) -> Self {
        PolicyKeeper {
            span: tracing::info_span!("actor", actor = "policy"),
            clock: Clock::system(),
            handle,
            source,
            data_dir,
            store,
            last_error: None,
            watcher: None,
            pending: None,
        }
    }

    fn load(&self) -> Result<LoadedPolicy, LoadError> {
        let overlay = crate::store::overlay::read_overlay(&self.data_dir).map_err(overlay_error)?;
        self.load_with(overlay)
    }

    /// The operator's files with `overlay` on top.
    fn load_with(&self, overlay: Vec<OverlayEntry>) -> Result<LoadedPolicy, LoadError> {
        let files = match &self.source {
            PolicySource::Embedded => policy::load_embedded(),
            PolicySource::Path(path) => policy::load_dir(path),
        }?;
        policy::overlaid(files, overlay)
    }

    fn record(&self, previous: Option<&LoadedPolicy>, loaded: &LoadedPolicy, actor: &str) {
        let diff = previous
            .map(|old| diff(&old.policy, &loaded.policy))
            .unwrap_or_default();
        if let Err(error) =
            self.store
                .record_policy_version(&loaded.version, &loaded.files, &diff, actor)
        {
            tracing::error!(message = "Cannot record the policy version.", %error);
        }
    }

    fn reload(&mut self, actor: &str) -> Result<ReloadOutcome, LoadError> {
        let loaded = self.load();
        self.put_in_force(loaded, actor)
    }

    fn put_in_force(
        &mut self,
        loaded: Result<LoadedPolicy, LoadError>,
        actor: &str,
    ) -> Result<ReloadOutcome, LoadError> {
        let current = self.handle.current();
        match loaded {
            Ok(loaded) => {
                self.last_error = None;
                for warning in &loaded.warnings {
                    tracing::warn!(message = "Policy warning.", %warning);
                }
                let changed = loaded.version != current.version;
                let version = loaded.version.clone();
                if changed {
                    if loaded.policy.store != current.policy.store {
                        tracing::warn!(
                            message = "The [store] settings changed: they take \
                            effect at the next start; the store in use stays until then."
                        );
                    }
                    self.record(Some(&current), &loaded, actor);
                    self.handle.replace(loaded);
                    tracing::info!(message = "Policy reloaded.", %version, %actor);
                }
                Ok(ReloadOutcome { version, changed })
            }
            Err(error) => {
                for problem in &error.errors {
                    tracing::error!(message = "Policy reload refused; the running policy stays.", %problem);
                }
                let now = self.clock.now_ms();
                self.last_error = Some(ReloadFailure {
                    at_ms: now,
                    time: clock::rfc3339(now),
                    errors: error.errors.clone(),
                });
                Err(error)
            }
        }
    }

    fn watch(&mut self, ctx: &mut Context<Self>) {
        let PolicySource::Path(path) = &self.source else {
            return;
        };
        let addr = ctx.address();
        let watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
            let relevant = event.is_ok_and(|e| {
                !e.kind.is_access()
                    && e.paths
                        .iter()
                        .any(|p| p.extension().is_some_and(|x| x == "toml"))
            });
            if relevant {
                addr.do_send(FilesChanged);
            }
        });
        let result = watcher.and_then(|mut watcher| {
            watcher.watch(path, notify::RecursiveMode::NonRecursive)?;
            Ok(watcher)
        });
        match result {
            Ok(watcher) => self.watcher = Some(watcher),
            Err(error) => {
                tracing::warn!(message = "Cannot watch the policy directory; reload by API only.",
                path = %path.display(), %error)
            }
        }
    }
}

/// A corrupt or unreadable overlay, as a load error naming the file.
pub fn overlay_error(error: crate::store::overlay::OverlayError) -> LoadError {
    let message = match std::error::Error::source(&error) {
        Some(cause) => format!("{error}: {cause}"),
        None => error.to_string(),
    };
    LoadError {
        errors: vec![PolicyError {
            severity: policy::Severity::Error,
            file: policy::OVERLAY_FILE.to_string(),
            line: None,
            col: None,
            field: None,
            message,
        }],
        warnings: Vec::new(),
    }
}

/// A unified diff of two policies' TOML renderings.
pub fn diff(old: &policy::Policy, new: &policy::Policy) -> String {
    let render = |p: &policy::Policy| toml::to_string_pretty(p).unwrap_or_default();
    let (old, new) = (render(old), render(new));
    similar::TextDiff::from_lines(&old, &new)
        .unified_diff()
        .context_radius(2)
        .header("before", "after")
        .to_string()
}

impl Actor for PolicyKeeper {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        let _span = self.span.clone().entered();
        let current = self.handle.current();
        let latest = self
            .store
            .policy_versions(1)
            .ok()
            .and_then(|rows| rows.into_iter().next());
        if latest
            .as_ref()
            .is_none_or(|row| row.version != current.version)
        {
            self.record(None, &current, "startup");
        }
        self.watch(ctx);
    }
}

// === impl Handler ===

impl Handler<FilesChanged> for PolicyKeeper {
    type Result = ();

    fn handle(&mut self, _msg: FilesChanged, ctx: &mut Context<Self>) {
        let _span = self.span.clone().entered();
        if let Some(pending) = self.pending.take() {
            ctx.cancel_future(pending);
        }
        self.pending = Some(ctx.run_later(DEBOUNCE, |keeper, _| {
            let _span = keeper.span.clone().entered();
            keeper.pending = None;
            // Errors are logged and kept for the API by `reload`.
            let _ = keeper.reload("watcher");
        }));
    }
}

impl Handler<ReloadPolicy> for PolicyKeeper {
    type Result = Result<ReloadOutcome, LoadError>;

    fn handle(&mut self, msg: ReloadPolicy, _ctx: &mut Context<Self>) -> Self::Result {
        let _span = self.span.clone().entered();
        self.reload(&msg.actor)
    }
}

impl Handler<ChangeOverlay> for PolicyKeeper {
    type Result = Result<ReloadOutcome, LoadError>;

    fn handle(&mut self, msg: ChangeOverlay, _ctx: &mut Context<Self>) -> Self::Result {
        let _span = self.span.clone().entered();
        let mut entries =
            crate::store::overlay::read_overlay(&self.data_dir).map_err(overlay_error)?;
        if let Some(action) = msg.remove_action {
            entries.retain(|e| e.action_id != action);
        }
        if let Some(entry) = msg.add {
            entries.retain(|e| e.rule != entry.rule);
            entries.push(entry);
        }
        // Check before writing: a refused change leaves the overlay file as it was.
        let loaded = self.load_with(entries.clone())?;
        crate::store::overlay::write_overlay(&self.data_dir, &entries).map_err(overlay_error)?;
        self.put_in_force(Ok(loaded), &msg.actor)
    }
}

impl Handler<GetPolicyStatus> for PolicyKeeper {
    type Result = MessageResult<GetPolicyStatus>;

    fn handle(&mut self, _msg: GetPolicyStatus, _ctx: &mut Context<Self>) -> Self::Result {
        let _span = self.span.clone().entered();
        MessageResult(PolicyStatus {
            source: self.source.clone(),
            loaded: (*self.handle.current()).clone(),
            last_reload_error: self.last_error.clone(),
        })
    }
}
