//! The actions the HTTP API may ask the daemon for (resolve an incident, run
//! a check now), passed on to the parts that own the state.

use tokio::sync::mpsc;

use crate::incident::engine::Command;
use crate::schedule::Request;
use crate::server::{ActionError, ActionFuture, Actions};

/// Requests from the HTTP API, passed on to the parts that own the state.
pub struct DaemonActions {
    pub incidents: mpsc::UnboundedSender<Command>,
    pub scheduler: mpsc::UnboundedSender<Request>,
}

impl Actions for DaemonActions {
    fn resolve_incident(&self, incident: String, note: Option<String>) -> ActionFuture {
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
