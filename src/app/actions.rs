//! The actions the HTTP API may ask the daemon for (resolve an incident, run
//! a check now), passed on to the parts that own the state. With replicas,
//! any replica runs a check asked of it; a resolve goes to the leader,
//! through the store when asked of another replica.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, watch};

use crate::incident::Event;
use crate::incident::engine::Command;
use crate::schedule::Request;
use crate::server::{ActionError, ActionFuture, Actions};
use crate::store::Store;
use crate::store::cluster::Cluster;

/// How long a replica that does not lead waits for the leader to carry out
/// a resolve it handed over.
const LEADER_ANSWERS_WITHIN: Duration = Duration::from_secs(10);

/// Requests from the HTTP API, passed on to the parts that own the state.
pub struct DaemonActions {
    pub incidents: mpsc::UnboundedSender<Command>,
    pub scheduler: mpsc::UnboundedSender<Request>,
    /// With replicas: the store, through which a replica that does not
    /// lead hands a resolve to the leader, and whether this one leads.
    pub cluster: Option<(Store, watch::Receiver<Cluster>)>,
}

/// A resolve's outcome as the leader hands it back through the store.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Answer {
    Resolved(Box<Event>),
    Refused(String),
}

impl Actions for DaemonActions {
    fn resolve_incident(&self, incident: String, note: Option<String>) -> ActionFuture {
        if let Some((store, cluster)) = &self.cluster
            && !cluster.borrow().leading
        {
            let store = store.clone();
            return Box::pin(async move {
                let answer = store
                    .ask_leader(incident, note, LEADER_ANSWERS_WITHIN)
                    .await
                    .map_err(|e| ActionError::Unavailable(e.to_string()))?;
                let answer = answer.ok_or_else(|| {
                    ActionError::Unavailable(format!(
                        "the leader did not answer within {} s",
                        LEADER_ANSWERS_WITHIN.as_secs()
                    ))
                })?;
                match serde_json::from_str(&answer) {
                    Ok(Answer::Resolved(event)) => serde_json::to_value(&event)
                        .map_err(|e| ActionError::Unavailable(e.to_string())),
                    Ok(Answer::Refused(message)) => Err(ActionError::NotFound(message)),
                    Err(e) => Err(ActionError::Unavailable(format!(
                        "the leader's answer does not read: {e}"
                    ))),
                }
            });
        }
        let (reply, answer) = tokio::sync::oneshot::channel();
        let sent = self.incidents.send(Command::Resolve {
            incident,
            note,
            reply,
        });
        Box::pin(async move {
            if sent.is_err() {
                return Err(ActionError::Unavailable("shutting down".into()));
            }
            match answer.await {
                Ok(Ok(event)) => serde_json::to_value(&event)
                    .map_err(|e| ActionError::Unavailable(e.to_string())),
                Ok(Err(message)) => Err(ActionError::NotFound(message)),
                Err(_) => Err(ActionError::Unavailable("shutting down".into())),
            }
        })
    }

    fn run_check(&self, name: String) -> ActionFuture {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let sent = self.scheduler.send(Request::RunNow { name, reply });
        Box::pin(async move {
            if sent.is_err() {
                return Err(ActionError::Unavailable("shutting down".into()));
            }
            match answer.await {
                Ok(Ok(result)) => serde_json::to_value(&result)
                    .map_err(|e| ActionError::Unavailable(e.to_string())),
                Ok(Err(message)) => Err(ActionError::NotFound(message)),
                Err(_) => Err(ActionError::Unavailable("the run was cancelled".into())),
            }
        })
    }
}
