//! A dead-man's switch: the scheduler's own progress pings a URL (a
//! Healthchecks.io-style check) at most once per interval, so a monitor that
//! is down or wedged stops pinging and someone else notices.

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

pub struct Heartbeat {
    url: String,
    every: Duration,
    client: reqwest::Client,
    last: Mutex<Option<Instant>>,
}

impl Heartbeat {
    pub fn new(url: String, every: Duration) -> Result<Heartbeat, reqwest::Error> {
        // Proxy variables of the environment are not honoured (a proxy
        // would see every request); the heartbeat goes direct.
        let client = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(10))
            .build()?;
        Ok(Heartbeat {
            url,
            every,
            client,
            last: Mutex::new(None),
        })
    }

    /// Called on every scheduler tick; pings when an interval has passed.
    /// The ping runs in the background and never holds up the scheduler.
    pub fn beat(&self) {
        let now = Instant::now();
        {
            let mut last = self.last.lock().unwrap_or_else(PoisonError::into_inner);
            if last.is_some_and(|t| now - t < self.every) {
                return;
            }
            *last = Some(now);
        }
        let request = self.client.get(&self.url);
        tokio::spawn(async move {
            match request.send().await {
                Ok(r) if r.status().is_success() => tracing::debug!("heartbeat sent"),
                Ok(r) => tracing::warn!(status = %r.status(), "heartbeat refused"),
                Err(e) => tracing::warn!("heartbeat failed: {e}"),
            }
        });
    }
}
