//! The incident types flattened into column values, before they reach the
//! writer thread: serializing happens on the caller's side, so the writer
//! only writes.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;

use std::borrow::Cow;
use std::sync::Arc;

use crate::check::{Outcome, Reason, Redacted, RunRecord, RunResult};
use crate::incident::Incident;
use crate::incident::machine::CheckState;
use crate::incident::store::{Claimer, DeliveryState, OutboxItem, StoreError, Transition};

/// RFC 3339, UTC, always nine fractional digits: text order is time order.
pub(super) fn ts(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Nanos, true)
}

pub(super) fn delivery_state(s: DeliveryState) -> &'static str {
    match s {
        DeliveryState::Pending => "pending",
        DeliveryState::Delivered => "delivered",
        DeliveryState::Dead => "dead",
        DeliveryState::Disabled => "disabled",
    }
}

/// Text for a plain (not JSON) column: NUL, which a page or a sink's
/// answer may hold and PostgreSQL's `text` refuses (failing the whole
/// batch), becomes U+FFFD, in every backend so that they read back alike.
/// The JSON columns keep every character, escaped.
pub(super) fn text(s: &str) -> Cow<'_, str> {
    if s.contains('\0') {
        Cow::Owned(s.replace('\0', "\u{FFFD}"))
    } else {
        Cow::Borrowed(s)
    }
}

fn owned_text(s: &str) -> String {
    text(s).into_owned()
}

/// `what` names the value in the error, and is only built for one: this
/// runs for every run.
fn json<T: Serialize>(what: impl Fn() -> String, value: &T) -> Result<String, StoreError> {
    // A run's steps take about 250 bytes: one allocation, not four growing.
    let mut buf = Vec::with_capacity(512);
    serde_json::to_writer(&mut buf, value)
        .map_err(|e| StoreError(format!("encoding {} as JSON: {e}", what())))?;
    // Trimmed: a queued run holds its row until the writer's batch commits,
    // and a one-step run's steps take 240 of the 512 bytes.
    buf.shrink_to_fit();
    String::from_utf8(buf).map_err(|e| StoreError(format!("encoding {}: {e}", what())))
}

/// A check's state, keyed by the check.
#[derive(Debug)]
pub(super) struct StateRow {
    pub check: String,
    pub json: String,
}

impl StateRow {
    pub fn new(check: &str, state: &CheckState) -> Result<StateRow, StoreError> {
        Ok(StateRow {
            check: check.to_owned(),
            json: json(|| format!("the state of check {check:?}"), state)?,
        })
    }
}

/// A run's columns that are not plain copies of the record, which the row
/// shares with the engine rather than copying its strings.
#[derive(Debug)]
pub(super) struct RunRow {
    pub run: Arc<RunRecord>,
    pub started_at: String,
    pub duration_ms: f64,
    pub result: &'static str,
    pub reason: Option<&'static str>,
    pub json: String,
    /// Held while the database was unreachable: written to the history
    /// when it is back, but not counted in the check's streak (it may
    /// have been counted before its acknowledgement was lost, and a newer
    /// owner's runs have been counted since).
    pub held: bool,
}

impl RunRow {
    pub fn new(run: Arc<RunRecord>) -> Result<RunRow, StoreError> {
        let res = &run.result;
        let (result, reason) = match &res.outcome {
            Outcome::Success => ("success", None),
            Outcome::Failure { reason, .. } => ("failure", Some(reason.as_str())),
        };
        let json = json(|| format!("the steps of run {}", run.run_id), &res.steps)?;
        Ok(RunRow {
            started_at: ts(&res.started_at),
            duration_ms: crate::check::millis(res.duration),
            result,
            reason,
            json,
            run,
            held: false,
        })
    }

    pub fn check(&self) -> &str {
        &self.run.result.check
    }

    /// The failing step and the failure's message, if it failed, as
    /// [`text`].
    pub fn failure(&self) -> (Option<Cow<'_, str>>, Option<Cow<'_, str>>) {
        match &self.run.result.outcome {
            Outcome::Success => (None, None),
            Outcome::Failure { step, message, .. } => {
                (step.as_deref().map(text), Some(text(message)))
            }
        }
    }
}

#[derive(Debug)]
pub(super) struct IncidentRow {
    pub id: String,
    pub key: String,
    pub check: String,
    pub severity: String,
    pub title: String,
    pub first_failure_at: String,
    pub declared_at: String,
    pub resolved_at: Option<String>,
    pub resolution: Option<String>,
    pub note: Option<String>,
    pub evidence: String,
    pub run_ids: String,
    pub json: String,
    /// When the event carrying this version happened: an older version
    /// never overwrites a newer one.
    pub updated_at: String,
}

impl IncidentRow {
    fn new(i: &Incident, at: &DateTime<Utc>) -> Result<IncidentRow, StoreError> {
        let what = |part: &str| format!("the {part} of incident {}", i.id);
        Ok(IncidentRow {
            id: i.id.clone(),
            key: owned_text(&i.key),
            check: owned_text(&i.feature.check),
            severity: owned_text(&i.severity),
            title: owned_text(&i.title),
            first_failure_at: ts(&i.first_failure_at),
            declared_at: ts(&i.declared_at),
            resolved_at: i.resolved_at.as_ref().map(ts),
            resolution: i.resolution.as_deref().map(owned_text),
            note: i.note.as_deref().map(owned_text),
            evidence: json(|| what("evidence"), &i.evidence)?,
            run_ids: json(|| what("run ids"), &i.run_ids)?,
            json: json(|| format!("incident {}", i.id), i)?,
            updated_at: ts(at),
        })
    }
}

#[derive(Debug)]
pub(super) struct OutboxRow {
    pub id: String,
    pub event_id: String,
    pub sink: String,
    pub kind: &'static str,
    pub incident_id: String,
    pub item: String,
    pub state: &'static str,
    pub attempts: u32,
    pub next_attempt_at: String,
    pub created_at: String,
    pub delivered_at: Option<String>,
    pub last_error: Option<String>,
}

impl OutboxRow {
    pub fn new(o: &OutboxItem) -> Result<OutboxRow, StoreError> {
        Ok(OutboxRow {
            id: o.id.clone(),
            event_id: o.event.id.clone(),
            sink: o.sink.clone(),
            kind: o.event.kind.as_str(),
            incident_id: o.event.incident.id.clone(),
            item: json(|| format!("outbox item {}", o.id), o)?,
            state: delivery_state(o.state),
            attempts: o.attempts,
            next_attempt_at: ts(&o.next_attempt_at),
            created_at: ts(&o.created_at),
            delivered_at: o.delivered_at.as_ref().map(ts),
            last_error: o.last_error.as_deref().map(owned_text),
        })
    }
}

/// An event on an incident's timeline.
#[derive(Debug)]
pub(super) struct EventRow {
    pub id: String,
    pub incident_id: String,
    pub kind: &'static str,
    pub at: String,
}

/// A claim as the writer stores it: who, until when, and the time it was
/// taken at, against which other claims count as live or expired.
#[derive(Debug)]
pub(super) struct ClaimRow {
    pub claimer: String,
    pub until: String,
    pub now: String,
}

impl ClaimRow {
    pub fn new(claimer: &Claimer, now: DateTime<Utc>) -> ClaimRow {
        ClaimRow {
            claimer: claimer.id.clone(),
            until: ts(&claimer.until(now)),
            now: ts(&now),
        }
    }
}

/// Everything one [`Transition`] writes, and the claim on its outbox rows.
#[derive(Debug)]
pub(super) struct CommitRows {
    pub state: StateRow,
    pub incident: IncidentRow,
    pub event: EventRow,
    pub outbox: Vec<OutboxRow>,
    pub claim: ClaimRow,
}

impl CommitRows {
    pub fn new(t: &Transition, claim: ClaimRow) -> Result<CommitRows, StoreError> {
        let e = &t.event;
        Ok(CommitRows {
            claim,
            state: StateRow::new(&t.check, &t.state)?,
            incident: IncidentRow::new(&e.incident, &e.at)?,
            event: EventRow {
                id: e.id.clone(),
                incident_id: e.incident.id.clone(),
                kind: e.kind.as_str(),
                at: ts(&e.at),
            },
            outbox: t
                .outbox
                .iter()
                .map(OutboxRow::new)
                .collect::<Result<_, _>>()?,
        })
    }

    /// For error messages: `incident.declared inc_…`.
    pub fn describe(&self) -> String {
        format!("{} {}", self.event.kind, self.incident.id)
    }
}

/// A run's columns as every backend reads them back, in [`RUN_COLUMNS`]'
/// order.
pub(super) struct RunColumns {
    pub run_id: String,
    pub check: String,
    pub started_at: String,
    pub duration_ms: f64,
    pub result: String,
    pub reason: Option<String>,
    pub step: Option<String>,
    pub message: Option<String>,
    pub json: String,
    pub location: String,
}

/// What a backend selects for [`RunColumns`], in its order.
pub(super) const RUN_COLUMNS: &str =
    "run_id, check_name, started_at, duration_ms, result, reason, step, message, json, location";

impl RunColumns {
    /// The run. The store took only redacted runs, so what it gives back
    /// is redacted too. `Err`: what does not decode, for the backend's
    /// error.
    pub fn decode(self) -> Result<RunRecord, String> {
        let run_id = self.run_id;
        let invalid = |what: String| format!("run {run_id}: {what}");
        let started_at = DateTime::parse_from_rfc3339(&self.started_at)
            .map_err(|e| invalid(format!("started_at {:?}: {e}", self.started_at)))?
            .with_timezone(&Utc);
        let ms = self.duration_ms;
        let duration =
            crate::check::from_millis(ms).ok_or_else(|| invalid(format!("duration_ms {ms}")))?;
        let outcome = match self.result.as_str() {
            "success" => Outcome::Success,
            "failure" => {
                let reason = Reason::ALL
                    .into_iter()
                    .find(|r| Some(r.as_str()) == self.reason.as_deref())
                    .ok_or_else(|| invalid(format!("reason {:?}", self.reason)))?;
                Outcome::Failure {
                    reason,
                    step: self.step,
                    message: self.message.unwrap_or_default(),
                }
            }
            other => return Err(invalid(format!("result {other:?}"))),
        };
        let steps = decode(&format!("the steps of run {run_id}"), &self.json)?;
        let run = RunResult {
            check: self.check,
            started_at,
            duration,
            outcome,
            steps,
        };
        Ok(RunRecord {
            run_id,
            result: Redacted::vouched(run),
            location: self.location.into(),
        })
    }
}

/// An event of an incident's timeline from its columns.
pub(super) fn event_row(
    id: String,
    incident_id: &str,
    kind: &str,
    at: &str,
) -> Result<super::model::EventRow, String> {
    let kind = serde_json::from_value(kind.into())
        .map_err(|_| format!("event {id}: unknown kind {kind:?}"))?;
    let at = at
        .parse()
        .map_err(|e| format!("event {id}: time {at:?}: {e}"))?;
    Ok(super::model::EventRow {
        id,
        incident_id: incident_id.to_owned(),
        kind,
        at,
    })
}

/// A stored JSON value; `Err` names `what` did not decode.
pub(super) fn decode<T: serde::de::DeserializeOwned>(what: &str, json: &str) -> Result<T, String> {
    serde_json::from_str(json).map_err(|e| format!("{what} is not valid JSON: {e}"))
}
