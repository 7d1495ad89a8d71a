//! The incident engine: one task that owns every check's state, turns run
//! results into events, commits them with their outbox rows, and hands the
//! rows it claimed to the delivery worker. If the store cannot be written,
//! events still go out from memory and the store is reconciled when it
//! recovers (with replicas, [`Engine::only_committed`], they wait for it).
//! Runs are recorded by their own path; the engine writes the check states
//! they change.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use chrono::Utc;
use futures_util::stream::{FuturesOrdered, StreamExt as _};
use tokio::sync::{mpsc, oneshot};

use super::machine::{CheckState, Observation};
use super::outage::{Brake, OUTAGE};
use super::quorum::{Locations, Verdict};
use super::store::{Claimer, OutboxItem, Store, StoreError, Transition};
use super::{Affected, Event, Feature, Roles, Streak, Thresholds};
use crate::check::{Check, FastHash, Quorum, RunRecord};
use crate::sink::Sink;

/// How incidents treat one check.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    /// The check, shared with the catalog: its [`Feature`] is copied only
    /// when an incident needs one.
    pub check: Arc<Check>,
    /// Windows covering this check: during one, nothing is declared.
    pub maintenance: Vec<crate::check::maintenance::Window>,
    /// The incident roles of the check's owner.
    pub roles: Roles,
}

pub enum Command {
    /// A counted run (after any re-check) of a check, shared with the run
    /// history, which records it.
    Run {
        run: Arc<RunRecord>,
        policy: Arc<Policy>,
        /// The store's count, when replicas share the checks.
        streak: Option<Streak>,
    },
    /// A run counted at its location but not judged yet: more of the
    /// check's runs read from the store at the same time follow, and the
    /// last of them is a [`Command::Run`]. (Judged one by one, a location
    /// whose newer run came later in the same read looked older than it
    /// is.)
    Seen {
        run: Arc<RunRecord>,
        policy: Arc<Policy>,
        streak: Streak,
    },
    /// The check is gone: resolve its incident with `check_removed`.
    Removed { check: String },
    /// Forgets what was counted of checks without an open incident: an
    /// engine fed only now and then (`store_down = "alone"`, from one
    /// outage of the store to the next) starts each time from zero.
    FreshStart,
    /// Another engine (the leader's, once the store is back) has the
    /// check's incident open under the same key: this one forgets it
    /// without a word, and the receivers' alert carries on.
    HandOver { check: String },
    /// Count the incidents of the last 90 days again (some age out).
    Count,
    /// Resolve an open incident by hand.
    Resolve {
        incident: String,
        note: Option<String>,
        reply: oneshot::Sender<Result<Event, String>>,
    },
}

/// What the engine reports, for metrics and logs.
pub trait EngineObserver: Send + Sync + 'static {
    fn event(&self, event: &Event);
    fn store_up(&self, up: bool);
    /// Incidents declared in the last 90 days, by check: after a count, and
    /// changed by each declaration since.
    fn incident_counts(&self, counts: &BTreeMap<String, u64>);
    /// A check reached its threshold and joined another check's incident
    /// instead of declaring its own; `reason` is `dependency`.
    fn folded(&self, reason: &'static str);
}

/// The longest a failing check holds its declaration for parents asked to
/// run: about one run with its timeout.
const WAIT_FOR_PARENTS: chrono::TimeDelta = chrono::TimeDelta::seconds(60);

/// A check as the engine last saw it run.
struct Known {
    policy: Arc<Policy>,
    seen_at: chrono::DateTime<Utc>,
}

/// A check holding its declaration until these parents have run.
struct Waiting {
    parents: Vec<String>,
    asked_at: chrono::DateTime<Utc>,
}

/// Ancestors followed up `depends_on`, at most: the loader refuses cycles,
/// this bounds the walk whatever the graph.
const MAX_DEPTH: usize = 64;

/// A transition's commit in flight, and the transition.
type Committing =
    Pin<Box<dyn Future<Output = (Transition, Result<Vec<OutboxItem>, StoreError>)> + Send>>;

pub struct Engine<S> {
    store: Arc<S>,
    /// `external_url`: where receivers reach this daemon's API.
    links: Option<url::Url>,
    sinks: Vec<Arc<Sink>>,
    outbox: mpsc::UnboundedSender<OutboxItem>,
    /// The delivery worker's: a transition's rows are claimed for it as
    /// they are committed.
    claimer: Claimer,
    observer: Arc<dyn EngineObserver>,
    instance_group: String,
    states: HashMap<String, CheckState, FastHash>,
    /// Each check's policy as of its last run (the parents of a failing
    /// check, what an incident of theirs tells) and when that run came.
    known: HashMap<String, Known, FastHash>,
    /// Checks holding their declaration until parents with no recent result
    /// have run once (asked through `ask_run`).
    waiting: HashMap<String, Waiting, FastHash>,
    /// Each check's locations, while they decide (see [`Engine::judge`]).
    locations: HashMap<String, Locations, FastHash>,
    /// Whether runs come from several locations (replicas): then each
    /// location's runs are counted apart.
    by_location: bool,
    /// Judging by this replica's own runs alone (the store is down): its
    /// location's view is the whole quorum.
    alone: bool,
    /// Asks the scheduler to run a check now; none outside the daemon.
    ask_run: Option<mpsc::UnboundedSender<String>>,
    /// The outage brake, with the roles its incident calls in.
    outage: Option<(Brake, Roles)>,
    /// Transitions the store did not take yet, oldest first.
    unsaved: VecDeque<Transition>,
    /// Commits queued to the store and not answered yet, in order: the
    /// engine goes on with the next run meanwhile, so a burst of
    /// declarations is written in a few transactions, not one each.
    committing: FuturesOrdered<Committing>,
    store_ok: bool,
    /// Whether a transition the store did not take is delivered from
    /// memory meanwhile (one daemon on its own store) or only once
    /// committed (replicas: only the leader's committed transitions go
    /// out, and a leader that lost its lease commits nothing).
    from_memory: bool,
}

impl Policy {
    pub fn in_maintenance(&self, now: chrono::DateTime<Utc>) -> bool {
        self.maintenance.iter().any(|w| w.active(now))
    }

    pub fn thresholds(&self) -> Thresholds {
        Thresholds::of(&self.check.incidents)
    }

    /// What an incident of this check tells about it.
    pub fn feature(&self) -> Feature {
        let c = &self.check;
        Feature {
            check: c.name.clone(),
            description: c.description.clone(),
            owner: c.owner.clone(),
            runbook: c.runbook.clone(),
            labels: c.labels.clone(),
            roles: self.roles.clone(),
        }
    }
}

impl<S: Store> Engine<S> {
    pub fn new(
        store: Arc<S>,
        states: HashMap<String, CheckState, FastHash>,
        sinks: Vec<Arc<Sink>>,
        outbox: mpsc::UnboundedSender<OutboxItem>,
        claimer: Claimer,
        observer: Arc<dyn EngineObserver>,
        instance_group: String,
    ) -> Self {
        Engine {
            store,
            sinks,
            outbox,
            claimer,
            observer,
            instance_group,
            states,
            known: HashMap::default(),
            waiting: HashMap::default(),
            locations: HashMap::default(),
            by_location: false,
            alone: false,
            ask_run: None,
            outage: None,
            unsaved: VecDeque::new(),
            committing: FuturesOrdered::new(),
            store_ok: true,
            from_memory: true,
            links: None,
        }
    }

    /// Links evidence (a screenshot) to this daemon's API at `external`,
    /// which ends in `/`.
    pub fn linked(mut self, external: Option<url::Url>) -> Self {
        self.links = external;
        self
    }

    /// Delivers a transition only once the store has committed it: for
    /// replicas, where an uncommitted transition may be one another leader
    /// makes too.
    pub fn only_committed(mut self) -> Self {
        self.from_memory = false;
        self
    }

    /// Counts each location's runs apart and declares by the checks'
    /// quorums: for replicas, whose runs come from every location.
    pub fn by_location(mut self) -> Self {
        self.by_location = true;
        self
    }

    /// Judges by this replica's own runs, whatever the checks' quorums:
    /// for `store_down = "alone"`.
    pub fn alone(mut self) -> Self {
        self.alone = true;
        self
    }

    /// Lets the engine ask the scheduler to run a check now (by name):
    /// parents without a recent result run before a dependent declares.
    pub fn ask_runs(mut self, ask: mpsc::UnboundedSender<String>) -> Self {
        self.ask_run = Some(ask);
        self
    }

    /// Turns on the outage brake: its incident calls in `roles`.
    pub fn outage(mut self, rule: crate::check::OutageRule, roles: Roles) -> Self {
        self.outage = Some((Brake::new(rule), roles));
        self
    }

    /// Handles commands until every sender is gone, then waits for the
    /// commits in flight.
    pub async fn run(mut self, mut commands: mpsc::UnboundedReceiver<Command>) {
        loop {
            let cmd = tokio::select! {
                cmd = commands.recv() => match cmd {
                    Some(cmd) => cmd,
                    None => break,
                },
                Some((t, result)) = self.committing.next(), if !self.committing.is_empty() => {
                    self.committed(t, result);
                    continue;
                }
            };
            // A replay waits for the commits in flight: it must not land
            // before a later transition's commit.
            if !self.unsaved.is_empty() {
                self.settle().await;
                self.reconcile().await;
            }
            match cmd {
                Command::Run {
                    run,
                    policy,
                    streak,
                } => self.on_run(&run, &policy, streak).await,
                Command::Seen {
                    run,
                    policy,
                    streak,
                } => {
                    if self.by_location && !self.alone {
                        self.sites(&run.result.check).observe(
                            &run,
                            Some(streak),
                            policy.thresholds(),
                        );
                    }
                }
                Command::Removed { check } => {
                    self.known.remove(&check);
                    self.locations.remove(&check);
                    self.waiting.remove(&check);
                    let event = self
                        .states
                        .remove(&check)
                        .and_then(|mut s| s.removed(Utc::now()).map(|e| (s, e)));
                    if let Some((state, event)) = event {
                        self.emit(&check, state, event, None);
                    }
                    if let Err(e) = self.store.forget_check(&check).await {
                        tracing::warn!(%check, "{e}");
                    }
                }
                Command::FreshStart => {
                    self.states.retain(|_, s| s.open.is_some());
                    self.locations.clear();
                    self.waiting.clear();
                }
                Command::HandOver { check } => {
                    self.known.remove(&check);
                    self.waiting.remove(&check);
                    self.locations.remove(&check);
                    if let Some(open) = self.states.remove(&check).and_then(|s| s.open) {
                        tracing::info!(%check, incident = %open.id, key = %open.key, "handed over: the store has this incident open again");
                    }
                }
                Command::Resolve {
                    incident,
                    note,
                    reply,
                } => {
                    let _ = reply.send(self.resolve(&incident, note).await);
                }
                Command::Count => self.count().await,
            }
        }
        self.settle().await;
    }

    /// Waits for the commits in flight.
    async fn settle(&mut self) {
        while let Some((t, result)) = self.committing.next().await {
            self.committed(t, result);
        }
    }

    /// Counts the incidents of the last 90 days: those in the store and
    /// those it has not taken yet. Done here, between commands, no
    /// declaration can fall between the count and the report of it.
    async fn count(&mut self) {
        self.settle().await;
        let since = Utc::now() - chrono::TimeDelta::days(90);
        let mut counts = match self.store.incident_counts(since).await {
            Ok(c) => c,
            Err(e) => {
                tracing::debug!("counting incidents: {e}");
                return;
            }
        };
        let declared =
            self.unsaved.iter().map(|t| &t.event).filter(|e| {
                e.kind == super::EventKind::Declared && e.incident.declared_at >= since
            });
        for e in declared {
            *counts.entry(e.incident.feature.check.clone()).or_default() += 1;
        }
        self.observer.incident_counts(&counts);
    }

    async fn on_run(&mut self, run: &Arc<RunRecord>, policy: &Arc<Policy>, streak: Option<Streak>) {
        let now = Utc::now();
        let verdict = self.judge(run, policy, streak, now);
        // The locations' verdict stands for the run: the machine counts
        // it, and a failing one shows a failing location's latest failure.
        let (run, streak) = match &verdict {
            Some(v) => (
                v.evidence.as_ref().filter(|_| v.failing).unwrap_or(run),
                Some(v.streak(policy.thresholds())),
            ),
            None => (run, streak),
        };
        let result = &run.result;
        let check = &result.check;
        match self.known.get_mut(check) {
            Some(k) => {
                if !Arc::ptr_eq(&k.policy, policy) {
                    k.policy = Arc::clone(policy);
                    if let Some(sites) = self.locations.get_mut(check) {
                        sites.retain(&policy.check);
                    }
                }
                k.seen_at = now;
            }
            None => {
                self.known.insert(
                    check.clone(),
                    Known {
                        policy: Arc::clone(policy),
                        seen_at: now,
                    },
                );
            }
        }
        let failed = verdict
            .as_ref()
            .map_or(!result.outcome.is_success(), |v| v.failing);
        let has_parents = !policy.check.depends_on.is_empty();
        let root = match failed && has_parents {
            true => self.failing_root(check).or_else(|| self.joined_open(check)),
            false => None,
        };
        let in_maintenance =
            policy.in_maintenance(now) || (has_parents && self.ancestor_in_maintenance(check, now));
        let thresholds = policy.thresholds();
        let would_declare = failed
            && has_parents
            && root.is_none()
            && policy.check.critical
            && !in_maintenance
            && self.states.get(check).is_none_or(|s| {
                let failures = streak.map_or(s.consecutive_failures + 1, |s| s.failures);
                s.open.is_none() && failures >= thresholds.failure.max(1)
            });
        if !failed && !self.waiting.is_empty() {
            self.waiting.remove(check);
        }
        let waits = would_declare && self.waits_for_parents(check, now);
        // While an outage incident is open, critical checks join it.
        let in_outage = self.outage.is_some()
            && policy.check.critical
            && self.states.get(OUTAGE).is_some_and(|s| s.open.is_some());
        // Looked up before inserting: `entry` would copy the name every run.
        if !self.states.contains_key(check) {
            self.states.insert(check.clone(), CheckState::default());
        }
        let Some(state) = self.states.get_mut(check) else {
            return;
        };
        let settled = state.is_settled(thresholds);
        let failures_before = state.consecutive_failures;
        let event = state.observe(&Observation {
            in_maintenance,
            run_id: &run.run_id,
            result,
            critical: policy.check.critical,
            thresholds,
            feature: &|| policy.feature(),
            key: &|| super::key::new(&self.instance_group, check),
            now,
            held: root.is_some() || waits || in_outage,
            streak,
            verdict: verdict.as_ref(),
            links: self.links.as_ref(),
        });
        // Crossed, not hit: the store's counts (replicas) can jump past
        // the threshold between two runs the engine sees.
        let threshold = thresholds.failure.max(1);
        let reached = policy.check.critical
            && !in_maintenance
            && failed
            && failures_before < threshold
            && state.consecutive_failures >= threshold;
        let recovered =
            !failed && in_outage && state.consecutive_successes >= thresholds.success.max(1);
        let joins = root.filter(|_| {
            policy.check.critical
                && !in_maintenance
                && state.open.is_none()
                && state.consecutive_failures >= thresholds.failure.max(1)
        });
        // The check's name and state go with the event when there is one
        // (rarely).
        let emit = event.map(|e| (check.clone(), state.clone(), e));
        if let Some(root) = joins {
            self.join(&root, check, now);
        }
        let Some(state) = self.states.get(check) else {
            return;
        };
        // A check that keeps passing has its state written once, not on
        // every run, and a transition writes the state itself. Queued, not
        // awaited: one transaction per run would make the store the
        // engine's bottleneck; the writer batches them.
        let changed = !(settled && state.is_settled(thresholds));
        let queued = if changed && emit.is_none() {
            self.store.queue_state(check, state)
        } else {
            Ok(())
        };
        match queued {
            Ok(()) => {
                let healthy = self.store.healthy() && self.unsaved.is_empty();
                self.note_store(healthy, None);
            }
            Err(e) => self.note_store(false, Some(e)),
        }
        if let Some((check, state, event)) = emit {
            self.emit(&check, state, event, Some(policy));
        }
        if !self.waiting.is_empty() {
            self.parent_ran(check, now);
        }
        if reached && self.outage.is_some() {
            self.outage_reached(check, now);
        }
        if recovered {
            self.outage_recovered(check, now);
        }
    }

    /// Counts the run at its location and says what the check's locations
    /// say, when they decide: with replicas, once more than one location
    /// ran the check, or with a quorum other than one location. `None`:
    /// the run decides, as on one daemon.
    fn judge(
        &mut self,
        run: &Arc<RunRecord>,
        policy: &Policy,
        streak: Option<Streak>,
        now: chrono::DateTime<Utc>,
    ) -> Option<Verdict> {
        let quorum = policy.check.incidents.quorum;
        let one = quorum == Quorum::default();
        if self.alone || (!self.by_location && one) {
            return None;
        }
        let check = &run.result.check;
        let open = self.states.get(check).is_some_and(|s| s.open.is_some());
        let sites = self.sites(check);
        sites.observe(run, streak, policy.thresholds());
        if one && !sites.several() {
            return None;
        }
        Some(sites.verdict(&policy.check, quorum, now, open))
    }

    /// The check's locations, made at its first run. (Judged by location
    /// with replicas, whose runs come at most once a second a check from
    /// the store, or for a check with a quorum other than one location,
    /// rare on one daemon: the name's copy costs nothing that counts.)
    fn sites(&mut self, check: &str) -> &mut Locations {
        self.locations.entry(check.to_owned()).or_default()
    }

    /// The root-most failing ancestor of `check`: its first failing parent
    /// in `depends_on` order, then that one's, and so on. A check is failing
    /// when its last run failed. Parents the engine has not seen run are
    /// not failing.
    fn failing_root(&self, check: &str) -> Option<String> {
        let mut at = check;
        let mut root = None;
        for _ in 0..MAX_DEPTH {
            let Some(parents) = self.known.get(at).map(|k| &k.policy.check.depends_on) else {
                break;
            };
            let failing = parents.iter().find(|p| {
                self.states
                    .get(p.as_str())
                    .is_some_and(|s| s.consecutive_failures > 0)
            });
            match failing {
                Some(parent) => {
                    root = Some(parent);
                    at = parent;
                }
                None => break,
            }
        }
        root.cloned()
    }

    /// The ancestor whose incident `check` joined, while that incident is
    /// still open: an ancestor that passes again has not recovered until
    /// its incident is resolved.
    fn joined_open(&self, check: &str) -> Option<String> {
        let (root, id) = self.states.get(check)?.joined.as_ref()?;
        let open = self.states.get(root)?.open.as_ref()?;
        (open.id == *id).then(|| root.clone())
    }

    /// The failing dependent `affected` joins `root`'s incident, declaring
    /// it if none is open.
    fn join(&mut self, root: &str, child: &str, now: chrono::DateTime<Utc>) {
        let Some(affected) = self.affected(child) else {
            return;
        };
        let (Some(policy), Some(state)) = (
            self.known.get(root).map(|k| Arc::clone(&k.policy)),
            self.states.get_mut(root),
        ) else {
            return;
        };
        let group = &self.instance_group;
        let Some(event) = state.join(
            affected,
            &|| policy.feature(),
            &|| super::key::new(group, root),
            now,
        ) else {
            return;
        };
        let state = state.clone();
        if let Some(s) = self.states.get_mut(child) {
            s.joined = Some((root.to_owned(), event.incident.id.clone()));
        }
        self.observer.folded("dependency");
        tracing::info!(check = %child, incident = %event.incident.id, parent = %root, "joined the incident of a failing check it depends on");
        // Routed as a critical incident: a critical check joined it.
        self.emit(root, state, event, None);
    }

    /// Whether a parent or further ancestor of `check` is in a
    /// maintenance window: planned work upstream puts its dependents in
    /// maintenance too.
    fn ancestor_in_maintenance(&self, check: &str, now: chrono::DateTime<Utc>) -> bool {
        let mut todo = vec![check];
        let mut seen = 0;
        while let Some(at) = todo.pop() {
            let Some(k) = self.known.get(at) else {
                continue;
            };
            for parent in &k.policy.check.depends_on {
                seen += 1;
                if seen > MAX_DEPTH {
                    return false;
                }
                if self
                    .known
                    .get(parent)
                    .is_some_and(|p| p.policy.in_maintenance(now))
                {
                    return true;
                }
                todo.push(parent);
            }
        }
        false
    }

    /// Before a failing check with no failing ancestor declares on its own,
    /// each parent without a result within its interval runs once: a
    /// slow-scheduled gateway is not overtaken by a fast feature. True
    /// while the check waits for them.
    fn waits_for_parents(&mut self, check: &str, now: chrono::DateTime<Utc>) -> bool {
        let Some(ask) = &self.ask_run else {
            return false;
        };
        if let Some(w) = self.waiting.get(check) {
            // Parents that never answer do not hold a check for long.
            if now - w.asked_at < WAIT_FOR_PARENTS {
                return true;
            }
            self.waiting.remove(check);
            return false;
        }
        let Some(k) = self.known.get(check) else {
            return false;
        };
        let stale: Vec<String> = k
            .policy
            .check
            .depends_on
            .iter()
            .filter(|p| match self.known.get(p.as_str()) {
                None => true,
                Some(parent) => match &parent.policy.check.schedule {
                    crate::check::Schedule::Every(every) => (now - parent.seen_at)
                        .to_std()
                        .is_ok_and(|age| age > *every),
                    crate::check::Schedule::Cron(_) => false,
                },
            })
            .cloned()
            .collect();
        if stale.is_empty() {
            return false;
        }
        for parent in &stale {
            tracing::debug!(%check, %parent, "running a parent before declaring");
            let _ = ask.send(parent.clone());
        }
        self.waiting.insert(
            check.to_owned(),
            Waiting {
                parents: stale,
                asked_at: now,
            },
        );
        true
    }

    /// A run of `parent` came: checks waiting only for it decide now —
    /// joining a failing ancestor's incident, or declaring their own.
    fn parent_ran(&mut self, parent: &str, now: chrono::DateTime<Utc>) {
        let ready: Vec<String> = self
            .waiting
            .iter_mut()
            .filter_map(|(child, w)| {
                w.parents.retain(|p| p != parent);
                w.parents.is_empty().then(|| child.clone())
            })
            .collect();
        for child in ready {
            self.waiting.remove(&child);
            let Some(policy) = self.known.get(&child).map(|k| Arc::clone(&k.policy)) else {
                continue;
            };
            let root = self.failing_root(&child);
            let group = self.instance_group.clone();
            let Some(state) = self.states.get_mut(&child) else {
                continue;
            };
            let failing = state.consecutive_failures >= policy.thresholds().failure.max(1);
            if !failing || state.open.is_some() || policy.in_maintenance(now) {
                continue;
            }
            match root {
                Some(root) => self.join(&root, &child, now),
                None => {
                    let Some(event) = state.declare_held(
                        &|| policy.feature(),
                        &|| super::key::new(&group, &child),
                        now,
                    ) else {
                        continue;
                    };
                    let state = state.clone();
                    self.emit(&child, state, event, Some(&policy));
                }
            }
        }
    }

    /// A critical check reached its threshold: it joins the open outage
    /// incident, or completes an outage and the incident is declared,
    /// listing every check that reached its threshold within the window
    /// and every check with an incident open.
    fn outage_reached(&mut self, check: &str, now: chrono::DateTime<Utc>) {
        let Some(affected) = self.affected(check) else {
            return;
        };
        let group = self.instance_group.clone();
        let open = self.states.get(OUTAGE).is_some_and(|s| s.open.is_some());
        let Some((brake, roles)) = &mut self.outage else {
            return;
        };
        if open {
            let Some(state) = self.states.get_mut(OUTAGE) else {
                return;
            };
            let Some(event) = state.add_affected(affected, now) else {
                return;
            };
            let state = state.clone();
            self.observer.folded("outage");
            self.emit(OUTAGE, state, event, None);
            return;
        }
        let reached = brake.reached(check, now);
        let critical = self
            .known
            .values()
            .filter(|k| k.policy.check.critical)
            .count();
        if !brake.rule.holds(reached.len(), critical) {
            return;
        }
        brake.clear();
        let window = crate::check::words::human(brake.rule.window);
        let roles = roles.clone();
        let mut listed: Vec<String> = reached.into_iter().map(|(_, c)| c).collect();
        for (name, s) in &self.states {
            if s.open.is_some() && name != OUTAGE && !listed.contains(name) {
                listed.push(name.clone());
            }
        }
        let affected_all: Vec<Affected> = listed.iter().filter_map(|c| self.affected(c)).collect();
        let Some(evidence) = self
            .states
            .get(check)
            .and_then(|s| s.last_failure.as_deref().cloned())
        else {
            return;
        };
        let feature = Feature {
            check: OUTAGE.to_owned(),
            description: Some(format!(
                "Outage: {} of {critical} critical checks failed within {window}",
                affected_all.len()
            )),
            roles,
            ..Feature::default()
        };
        let key = super::key::new(&group, OUTAGE);
        let state = self.states.entry(OUTAGE.to_owned()).or_default();
        let event = state.declare_with(evidence, affected_all, feature, key, now);
        let state = state.clone();
        tracing::warn!(incident = %event.incident.id, checks = listed.len(), "outage: declared one incident for the failing critical checks");
        self.emit(OUTAGE, state, event, None);
    }

    /// A check the outage incident lists recovered: an update, or the
    /// resolution once all have.
    fn outage_recovered(&mut self, check: &str, now: chrono::DateTime<Utc>) {
        let Some(state) = self.states.get_mut(OUTAGE) else {
            return;
        };
        let Some(event) = state.listed_recovered(check, now) else {
            return;
        };
        let state = state.clone();
        self.emit(OUTAGE, state, event, None);
    }

    /// `check` as an affected feature of another incident: its last
    /// failure.
    fn affected(&self, check: &str) -> Option<Affected> {
        let e = self.states.get(check)?.last_failure.as_deref()?;
        let description = self
            .known
            .get(check)
            .and_then(|k| k.policy.check.description.clone());
        Some(Affected {
            check: check.to_owned(),
            description,
            at: e.at,
            reason: e.reason.clone(),
            step: e.step.clone(),
            message: e.message.clone(),
            recovered_at: None,
        })
    }

    async fn resolve(&mut self, incident: &str, note: Option<String>) -> Result<Event, String> {
        let (check, state) = self
            .states
            .iter_mut()
            .find(|(_, s)| s.open.as_ref().is_some_and(|i| i.id == incident))
            .ok_or_else(|| format!("no open incident {incident}"))?;
        let check = check.clone();
        let event = state.resolve_manually(note, Utc::now()).ok_or("not open")?;
        let state = state.clone();
        self.emit(&check, state, event.clone(), None);
        // Answered once durable: whoever asked may read it back at once.
        self.settle().await;
        // With replicas a resolve the store did not take is not done: it
        // goes out only once committed, and only if this one still leads.
        if !self.from_memory && self.unsaved.iter().any(|t| t.event.id == event.id) {
            return Err(
                "resolved here, but the store has not taken it yet; it goes out once it has (see scarecrow_store_up)"
                    .to_owned(),
            );
        }
        Ok(event)
    }

    /// Queues the commit of the event with its outbox rows; once answered,
    /// delivery gets what it claimed (see [`Engine::committed`]). Behind a
    /// transition the store did not take, it waits its turn in memory.
    fn emit(&mut self, check: &str, state: CheckState, event: Event, policy: Option<&Policy>) {
        let feature = &event.incident.feature;
        // An incident critical checks joined is routed as critical, from
        // its declaration to its resolution, whatever its own check is.
        let critical =
            policy.is_none_or(|p| p.check.critical) || !event.incident.affected.is_empty();
        let now = Utc::now();
        let outbox: Vec<OutboxItem> = self
            .sinks
            .iter()
            .filter(|s| s.accepts(feature, critical))
            .map(|s| OutboxItem::new(&event, s.name(), now))
            .collect();
        self.observer.event(&event);
        let t = Transition {
            check: check.to_owned(),
            state,
            event,
            outbox,
        };
        if self.unsaved.is_empty() {
            let commit = self.store.commit(t.clone(), &self.claimer);
            self.committing
                .push_back(Box::pin(async move { (t, commit.await) }));
        } else {
            if self.from_memory {
                for item in &t.outbox {
                    let _ = self.outbox.send(item.clone());
                }
            }
            self.unsaved.push_back(t);
        }
    }

    /// Hands delivery what a commit claimed for it (with older pending
    /// items of the same incident and sink, so they go first), or every row
    /// if the store did not take them. A transition committed behind one
    /// that failed is replayed after it, in order.
    fn committed(&mut self, t: Transition, result: Result<Vec<OutboxItem>, StoreError>) {
        let deliver = match result {
            Ok(claimed) if self.unsaved.is_empty() => {
                self.note_store(true, None);
                claimed
            }
            Ok(_) => {
                let outbox = t.outbox.clone();
                self.unsaved.push_back(t);
                match self.from_memory {
                    true => outbox,
                    // Delivered when replayed, after the transitions
                    // before it.
                    false => Vec::new(),
                }
            }
            Err(e) => {
                self.note_store(false, Some(e));
                let outbox = t.outbox.clone();
                self.unsaved.push_back(t);
                match self.from_memory {
                    true => outbox,
                    false => Vec::new(),
                }
            }
        };
        for item in deliver {
            let _ = self.outbox.send(item);
        }
    }

    /// Replays transitions the store missed, in order, once it works again.
    async fn reconcile(&mut self) {
        while let Some(t) = self.unsaved.front() {
            // Delivery has had the rows since the event: the claim only
            // records that it holds them.
            match self.store.commit(t.clone(), &self.claimer).await {
                Ok(claimed) => {
                    self.unsaved.pop_front();
                    self.note_store(true, None);
                    if !self.from_memory {
                        for item in claimed {
                            let _ = self.outbox.send(item);
                        }
                    }
                }
                Err(e) => {
                    self.note_store(false, Some(e));
                    return;
                }
            }
        }
    }

    /// Logs when the store goes down or comes back, not on every write.
    fn note_store(&mut self, ok: bool, error: Option<StoreError>) {
        match (self.store_ok, ok, error) {
            (true, false, Some(e)) => {
                tracing::error!("{e}; incidents are kept in memory until the store recovers");
            }
            (true, false, None) => {
                tracing::error!(
                    "the store cannot be written; incidents are kept in memory until it recovers"
                );
            }
            (false, true, _) => tracing::info!("store writable again; reconciled"),
            _ => {}
        }
        self.store_ok = ok;
        self.observer.store_up(ok);
    }
}
