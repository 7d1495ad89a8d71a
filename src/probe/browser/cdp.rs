//! A thin client of the Chrome DevTools Protocol over the pipe Chromium
//! opens with `--remote-debugging-pipe`: it reads commands from its fd 3
//! and writes answers and events to its fd 4, each a JSON text ended by a
//! NUL byte. No debugging port is open for anyone else on the host.
//!
//! Messages are kept as `serde_json::Value` and only the fields used are
//! read, so an event this code does not know, or one whose shape a newer
//! Chromium changed, is passed over rather than failing the connection.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::unix::pipe;
use tokio::sync::{mpsc, oneshot};

/// One message is at most this large (a screenshot, a rendered page): a
/// browser sending more is not trusted with more memory.
const MAX_MESSAGE: usize = 64 * 1024 * 1024;

/// Events queued per page; more are dropped. With [`MAX_EVENT`], a page
/// logging in a loop holds at most 64 MiB of the daemon's memory.
const EVENTS_PER_PAGE: usize = 1024;

/// A page's event larger than this is dropped unread: those the steps use
/// (lifecycle, responses, failures, console lines) are far smaller.
const MAX_EVENT: usize = 64 * 1024;

/// Why a command got no answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum CdpError {
    #[error("the browser closed its connection")]
    Closed,
    #[error("{0}")]
    Protocol(String),
}

/// An event of one page's session.
#[derive(Debug)]
pub(crate) struct Event {
    pub method: String,
    pub params: Value,
}

type Pending = HashMap<u64, oneshot::Sender<Result<Value, CdpError>>>;

/// The connection: commands out, answers matched to them by id, events
/// routed to the page whose session they belong to.
#[derive(Debug)]
pub(crate) struct Cdp {
    /// To the writer task: a command is written whole even when its caller
    /// stops waiting, so the next one is not glued to half of it.
    out: mpsc::UnboundedSender<Vec<u8>>,
    shared: Arc<Shared>,
    next_id: AtomicU64,
}

#[derive(Debug, Default)]
struct Shared {
    pending: Mutex<Pending>,
    sessions: Mutex<HashMap<String, mpsc::Sender<Event>>>,
    closed: AtomicBool,
}

impl Shared {
    fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        let pending = std::mem::take(&mut *lock(&self.pending));
        for (_, answer) in pending {
            let _ = answer.send(Err(CdpError::Closed));
        }
        lock(&self.sessions).clear();
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Cdp {
    /// Speaks over `to_browser` (the browser's fd 3) and `from_browser`
    /// (its fd 4); a task reads until the browser closes its end.
    pub(crate) fn new(to_browser: pipe::Sender, from_browser: pipe::Receiver) -> Cdp {
        let shared = Arc::new(Shared::default());
        tokio::spawn(read(from_browser, Arc::clone(&shared)));
        let (out, commands) = mpsc::unbounded_channel();
        tokio::spawn(write(to_browser, commands, Arc::clone(&shared)));
        Cdp {
            out,
            shared,
            next_id: AtomicU64::new(1),
        }
    }

    /// Fails every command waiting and every one to come: the browser is
    /// being killed.
    pub(crate) fn close(&self) {
        self.shared.close();
    }

    /// Whether the browser is gone (its end of the pipe closed).
    pub(crate) fn is_closed(&self) -> bool {
        self.shared.closed.load(Ordering::SeqCst)
    }

    /// Sends `method` to the browser (`session` none) or to a page, and
    /// waits for its answer. Dropping the future forgets the command.
    pub(crate) async fn call(
        &self,
        session: Option<&str>,
        method: &str,
        params: Value,
    ) -> Result<Value, CdpError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        lock(&self.shared.pending).insert(id, tx);
        let _forget = Forget(&self.shared, id);
        if self.is_closed() {
            return Err(CdpError::Closed);
        }
        let mut message = json!({"id": id, "method": method, "params": params});
        if let Some(session) = session {
            message["sessionId"] = Value::from(session);
        }
        let mut bytes =
            serde_json::to_vec(&message).map_err(|e| CdpError::Protocol(e.to_string()))?;
        bytes.push(0);
        if self.out.send(bytes).is_err() {
            return Err(CdpError::Closed);
        }
        rx.await.unwrap_or(Err(CdpError::Closed))
    }

    /// Routes the events of `session` to the returned receiver until it is
    /// dropped or [`Cdp::unsubscribe`] is called.
    pub(crate) fn subscribe(&self, session: &str) -> mpsc::Receiver<Event> {
        let (tx, rx) = mpsc::channel(EVENTS_PER_PAGE);
        lock(&self.shared.sessions).insert(session.to_owned(), tx);
        rx
    }

    pub(crate) fn unsubscribe(&self, session: &str) {
        lock(&self.shared.sessions).remove(session);
    }
}

/// Removes a command's entry when its caller stops waiting.
struct Forget<'a>(&'a Shared, u64);

impl Drop for Forget<'_> {
    fn drop(&mut self) {
        lock(&self.0.pending).remove(&self.1);
    }
}

/// Reads NUL-ended messages until the browser closes its end or sends one
/// larger than [`MAX_MESSAGE`], then fails every command still waiting.
async fn read(mut from: pipe::Receiver, shared: Arc<Shared>) {
    let mut frames = Frames::default();
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        frames.feed(&chunk[..n], |m| dispatch(m, &shared));
    }
    shared.close();
}

/// Writes each command, whole, until the browser closes its end.
async fn write(
    mut to: pipe::Sender,
    mut commands: mpsc::UnboundedReceiver<Vec<u8>>,
    shared: Arc<Shared>,
) {
    while let Some(bytes) = commands.recv().await {
        if to.write_all(&bytes).await.is_err() {
            break;
        }
    }
    shared.close();
}

/// The pipe's bytes cut into messages at each NUL. A message over
/// [`MAX_MESSAGE`] is skipped to its end: its caller times out, and the
/// connection, which every check's pages share, stays.
#[derive(Default)]
struct Frames {
    /// The start of a message whose end has not come yet.
    partial: Vec<u8>,
    /// Within a message too large to keep, until its end.
    skipping: bool,
}

impl Frames {
    /// Hands each message `chunk` completes to `message`, in order.
    fn feed(&mut self, chunk: &[u8], mut message: impl FnMut(&[u8])) {
        let mut rest = chunk;
        while let Some(end) = rest.iter().position(|b| *b == 0) {
            if self.skipping {
                self.skipping = false;
            } else if self.partial.is_empty() {
                message(&rest[..end]);
            } else {
                self.partial.extend_from_slice(&rest[..end]);
                message(&self.partial);
                self.partial.clear();
            }
            rest = &rest[end + 1..];
        }
        if self.skipping {
            return;
        }
        if self.partial.len() + rest.len() > MAX_MESSAGE {
            tracing::warn!(
                "the browser sent a message over {} MiB; it is skipped",
                MAX_MESSAGE >> 20
            );
            self.partial = Vec::new();
            self.skipping = true;
            return;
        }
        self.partial.extend_from_slice(rest);
    }
}

/// Reads `bytes` as if the browser had written them to the pipe, in chunks
/// of the first byte's size, with one page's session (`"S"`) listening;
/// the number of events routed to it. The fuzz target's way in.
pub(crate) fn replay(bytes: &[u8]) -> usize {
    let Some((size, rest)) = bytes.split_first() else {
        return 0;
    };
    let shared = Shared::default();
    let (page, mut events) = mpsc::channel(EVENTS_PER_PAGE);
    lock(&shared.sessions).insert("S".to_owned(), page);
    let mut frames = Frames::default();
    for chunk in rest.chunks(usize::from(*size).max(1)) {
        frames.feed(chunk, |m| dispatch(m, &shared));
    }
    let mut routed = 0;
    while events.try_recv().is_ok() {
        routed += 1;
    }
    routed
}

fn dispatch(message: &[u8], shared: &Shared) {
    // An event names its session before its parameters: a large one is
    // dropped without being parsed.
    if message.len() > MAX_EVENT && !message.starts_with(b"{\"id\"") {
        return;
    }
    let Ok(mut value) = serde_json::from_slice::<Value>(message) else {
        return;
    };
    if let Some(id) = value.get("id").and_then(Value::as_u64) {
        let answer = match value.get_mut("error") {
            Some(error) => Err(CdpError::Protocol(
                error
                    .get("message")
                    .and_then(Value::as_str)
                    .unwrap_or("error")
                    .to_owned(),
            )),
            None => Ok(value
                .get_mut("result")
                .map(Value::take)
                .unwrap_or(Value::Null)),
        };
        if let Some(waiting) = lock(&shared.pending).remove(&id) {
            let _ = waiting.send(answer);
        }
        return;
    }
    let (Some(method), Some(session)) = (
        value.get("method").and_then(Value::as_str),
        value.get("sessionId").and_then(Value::as_str),
    ) else {
        return;
    };
    let sessions = lock(&shared.sessions);
    if let Some(page) = sessions.get(session) {
        // A full queue drops the event: the page floods, its step will
        // time out waiting for what was dropped.
        let _ = page.try_send(Event {
            method: method.to_owned(),
            params: value
                .get_mut("params")
                .map(Value::take)
                .unwrap_or(Value::Null),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cut(chunks: &[&[u8]]) -> Vec<String> {
        let mut frames = Frames::default();
        let mut got = Vec::new();
        for chunk in chunks {
            frames.feed(chunk, |m| got.push(String::from_utf8_lossy(m).into_owned()));
        }
        got
    }

    #[test]
    fn messages_are_cut_at_each_nul_however_the_pipe_splits_them() {
        assert_eq!(
            cut(&[b"{\"id\":1}\0{\"id\":2}\0"]),
            ["{\"id\":1}", "{\"id\":2}"]
        );
        assert_eq!(
            cut(&[b"{\"me", b"thod\":\"x\"}\0{", b"}", b"\0"]),
            ["{\"method\":\"x\"}", "{}"]
        );
        assert_eq!(cut(&[b"\0\0"]), ["", ""]);
        assert!(cut(&[b"no end yet"]).is_empty());
    }

    #[test]
    fn a_message_past_the_cap_is_skipped_and_the_next_one_read() {
        let big = vec![b'x'; MAX_MESSAGE / 2 + 1];
        assert_eq!(cut(&[&big, &big, b"xx\0{\"id\":3}\0"]), ["{\"id\":3}"]);
        // Up to the cap it is kept, and ends as one message.
        let half = vec![b'x'; MAX_MESSAGE / 2];
        assert_eq!(cut(&[&half, &half, b"\0"])[0].len(), MAX_MESSAGE);
    }

    #[test]
    fn answers_go_to_their_caller_and_unknown_or_broken_messages_are_passed_over() {
        let shared = Shared::default();
        let (tx, mut rx) = oneshot::channel();
        lock(&shared.pending).insert(7, tx);
        let (events, mut page) = mpsc::channel(4);
        lock(&shared.sessions).insert("S".to_owned(), events);
        for m in [
            &b"not json"[..],
            b"{\"method\":\"Some.futureEvent\",\"params\":{\"x\":[1,2]}}",
            b"{\"method\":\"Page.lifecycleEvent\",\"sessionId\":\"S\",\"params\":{\"name\":\"load\"}}",
            b"{\"method\":\"Page.lifecycleEvent\",\"sessionId\":\"other\",\"params\":{}}",
            b"{\"id\":99,\"result\":{}}",
            b"{\"id\":7,\"error\":{\"code\":-32000,\"message\":\"No target\"}}",
        ] {
            dispatch(m, &shared);
        }
        assert_eq!(
            rx.try_recv(),
            Ok(Err(CdpError::Protocol("No target".to_owned())))
        );
        let event = page.try_recv().expect("the page's event");
        assert_eq!(event.method, "Page.lifecycleEvent");
        assert_eq!(event.params["name"], "load");
        assert!(page.try_recv().is_err(), "only its own");
    }
}
