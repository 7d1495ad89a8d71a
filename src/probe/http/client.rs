//! The shared HTTP clients and the instruments that time their phases.
//!
//! Every check shares the default client; checks with connection options
//! (`[tls]`, `resolve`, `proxy`, which reqwest sets per client) share one
//! client per distinct set of options, built at load by [`Clients::prepare`].
//! Clients are shared, so per-request timings cannot live on them. Instead the probe runs each request future inside [`HOP`] (a
//! task-local holding that request's [`HopTimer`]); the resolver and the
//! connector layer look it up when the client calls them. The connector layer
//! also re-enters the scope around the connection future, so the resolver
//! finds the timer even if that future is ever polled outside the request
//! (hyper may finish a connection in the background).

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::task::{Context, Poll};
use std::time::Duration;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use tokio::time::Instant;

use super::verify;
use crate::check::{Check, Connection, Phases};

tokio::task_local! {
    /// The timer of the request being sent by the current task.
    static HOP: Arc<HopTimer>;
}

/// The default client and one client per distinct [`Connection`]. Cheap to
/// clone; clones share the clients.
#[derive(Debug, Clone)]
pub(crate) struct Clients {
    user_agent: Arc<str>,
    default: reqwest::Client,
    /// Read once per run; written when checks are prepared.
    by_options: Arc<RwLock<HashMap<Connection, reqwest::Client>>>,
}

impl Clients {
    pub(crate) fn new(user_agent: &str) -> Result<Clients, ClientError> {
        Ok(Clients {
            user_agent: user_agent.into(),
            default: build(user_agent, &Connection::default())?,
            by_options: Arc::default(),
        })
    }

    /// The client for `connection`. Options no [`Clients::prepare`] saw get
    /// their client now, kept for every later run.
    pub(crate) fn get(&self, connection: &Connection) -> Result<reqwest::Client, ClientError> {
        if connection.is_default() {
            return Ok(self.default.clone());
        }
        if let Some(client) = self.read().get(connection) {
            return Ok(client.clone());
        }
        let client = build(&self.user_agent, connection)?;
        let mut clients = self.write();
        Ok(clients.entry(connection.clone()).or_insert(client).clone())
    }

    /// Builds a client for each distinct option set of `checks` that has
    /// none yet, and drops the clients no check in `checks` uses (after a
    /// reload). Returns each option set whose client could not be built,
    /// with the checks that use it.
    pub(crate) fn prepare<'c>(
        &self,
        checks: impl IntoIterator<Item = &'c Check>,
    ) -> Vec<(Vec<&'c Check>, ClientError)> {
        let mut wanted: HashMap<&Connection, Vec<&Check>> = HashMap::new();
        for check in checks {
            if !check.connection.is_default() {
                wanted.entry(&check.connection).or_default().push(check);
            }
        }
        let built: HashSet<Connection> = self.read().keys().cloned().collect();
        let mut new = Vec::new();
        let mut failed = Vec::new();
        for (connection, users) in &wanted {
            if built.contains(*connection) {
                continue;
            }
            match build(&self.user_agent, connection) {
                Ok(client) => new.push(((*connection).clone(), client)),
                Err(e) => failed.push((users.clone(), e)),
            }
        }
        let mut clients = self.write();
        clients.retain(|connection, _| wanted.contains_key(connection));
        clients.extend(new);
        failed
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<Connection, reqwest::Client>> {
        // A panic while the lock was held leaves the map whole (each update
        // is a single insert or retain), so poisoning is ignored.
        self.by_options
            .read()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<Connection, reqwest::Client>> {
        self.by_options
            .write()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// Builds a client: no proxy but the check's (proxy variables of the
/// environment are ignored: a proxy sees every request, credentials
/// included), no pooled connections (each run connects like a new
/// visitor), no automatic redirects (the probe follows them itself, per step
/// policy, with the run's cookie jar), the peer certificate kept on each
/// response, the probe's own TLS config and the check's connection options.
fn build(user_agent: &str, connection: &Connection) -> Result<reqwest::Client, ClientError> {
    let builder = reqwest::Client::builder()
        .no_proxy()
        .user_agent(user_agent)
        .pool_max_idle_per_host(0)
        .redirect(reqwest::redirect::Policy::none())
        .tls_info(true)
        .dns_resolver(TimedResolver)
        .connector_layer(ConnectTimerLayer);
    Ok(configure(builder, connection)?.build()?)
}

/// Applies a check's `[tls]`, `resolve` and `proxy` to a client builder.
/// The files were read and parsed at load; what fails here is what only
/// the TLS library can judge (a key that does not fit its certificate).
fn configure(
    mut builder: reqwest::ClientBuilder,
    connection: &Connection,
) -> Result<reqwest::ClientBuilder, ClientError> {
    let tls = verify::client_config(&connection.tls).map_err(ClientError::Tls)?;
    builder = builder.tls_backend_preconfigured(tls);
    for (host, addr) in &connection.resolve {
        builder = builder.resolve(host, *addr);
    }
    if let Some(proxy) = &connection.proxy {
        let no_proxy = reqwest::NoProxy::from_string(&connection.no_proxy.join(","));
        builder = builder.proxy(reqwest::Proxy::all(proxy.as_str())?.no_proxy(no_proxy));
    }
    Ok(builder)
}

/// Why a client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The `[tls]` files did not suit the TLS library (a key that does not
    /// fit its certificate), or the system has no CA certificates.
    #[error("TLS settings: {0}")]
    Tls(rustls::Error),
    #[error(transparent)]
    Http(#[from] reqwest::Error),
}

/// Runs `fut` (one request, up to its response headers) with `timer`
/// receiving its timings.
pub(super) async fn timed<F: Future>(timer: Arc<HopTimer>, fut: F) -> F::Output {
    timer.update(|h| h.sent = Some(Instant::now()));
    HOP.scope(timer, fut).await
}

/// Timings of one request, written by the resolver and connector.
#[derive(Debug, Default)]
pub(super) struct HopTimer(Mutex<HopTimes>);

#[derive(Debug, Default, Clone, Copy)]
pub(super) struct HopTimes {
    sent: Option<Instant>,
    dns_started: Option<Instant>,
    dns: Option<Duration>,
    connect_started: Option<Instant>,
    /// Everything the connector did, name lookup included.
    connect: Option<Duration>,
}

impl HopTimer {
    fn update(&self, f: impl FnOnce(&mut HopTimes)) {
        f(&mut self.0.lock().unwrap_or_else(PoisonError::into_inner));
    }

    pub(super) fn snapshot(&self) -> HopTimes {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl HopTimes {
    /// The phases until now: a phase still in progress (at a timeout)
    /// counts up to now; connect excludes the lookup it contains; TTFB is
    /// the wait for headers once connected.
    pub(super) fn phases(&self) -> Phases {
        let now = Instant::now();
        let since = |t: Option<Instant>| t.map(|t| now.saturating_duration_since(t));
        let dns = self.dns.or(since(self.dns_started));
        let connecting = self.connect.or(since(self.connect_started));
        let ttfb = match self.stuck() {
            None => {
                since(self.sent).map(|w| w.saturating_sub(connecting.or(dns).unwrap_or_default()))
            }
            Some(_) => None,
        };
        Phases {
            dns,
            connect: connecting.map(|c| c.saturating_sub(dns.unwrap_or_default())),
            ttfb,
            transfer: None,
        }
    }

    /// What the request was doing if it has not connected yet.
    pub(super) fn stuck(&self) -> Option<&'static str> {
        if self.dns_started.is_some() && self.dns.is_none() {
            Some("resolving the host name")
        } else if self.connect_started.is_some() && self.connect.is_none() {
            Some("connecting (TCP and TLS handshake)")
        } else {
            None
        }
    }
}

/// A name lookup that failed; classified as [`crate::check::Reason::Dns`].
#[derive(Debug, thiserror::Error)]
pub(super) enum DnsError {
    #[error("DNS lookup of {host} failed: {source}")]
    Lookup {
        host: String,
        source: std::io::Error,
    },
    #[error("DNS lookup of {host} returned no addresses")]
    Empty { host: String },
}

/// The system resolver (`getaddrinfo` via tokio), timed.
struct TimedResolver;

impl Resolve for TimedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let timer = HOP.try_with(Arc::clone).ok();
        let host = name.as_str().to_owned();
        Box::pin(async move {
            if let Some(t) = &timer {
                t.update(|h| h.dns_started = Some(Instant::now()));
            }
            let started = Instant::now();
            let found = tokio::net::lookup_host((host.as_str(), 0))
                .await
                .map(Iterator::collect::<Vec<SocketAddr>>);
            if let Some(t) = &timer {
                t.update(|h| h.dns = Some(started.elapsed()));
            }
            let addrs = match found {
                Ok(addrs) => addrs,
                Err(source) => return Err(DnsError::Lookup { host, source }.into()),
            };
            if addrs.is_empty() {
                return Err(DnsError::Empty { host }.into());
            }
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

/// Times the connector (lookup, TCP connect, TLS handshake).
#[derive(Debug, Clone, Copy)]
struct ConnectTimerLayer;

impl<S> tower_layer::Layer<S> for ConnectTimerLayer {
    type Service = ConnectTimer<S>;

    fn layer(&self, inner: S) -> ConnectTimer<S> {
        ConnectTimer { inner }
    }
}

#[derive(Debug, Clone)]
struct ConnectTimer<S> {
    inner: S,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S, R> tower_service::Service<R> for ConnectTimer<S>
where
    S: tower_service::Service<R>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<Result<S::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: R) -> Self::Future {
        let timer = HOP.try_with(Arc::clone).ok();
        let connecting = self.inner.call(req);
        Box::pin(async move {
            let Some(timer) = timer else {
                return connecting.await;
            };
            timer.update(|h| h.connect_started = Some(Instant::now()));
            let started = Instant::now();
            let conn = HOP.scope(Arc::clone(&timer), connecting).await;
            timer.update(|h| h.connect = Some(started.elapsed()));
            conn
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Defaults, Source, read_check};

    fn check(name: &str, keys: &str) -> Check {
        let text = format!("{keys}\n[[step]]\nurl = \"https://shop.test/\"\n");
        let src = Source::new(format!("checks/{name}.toml"), text);
        let (check, diags) = read_check(&src, &Defaults::default(), &|_| None);
        check.unwrap_or_else(|| panic!("{diags:?}"))
    }

    #[tokio::test]
    async fn checks_with_equal_options_share_one_client_built_at_prepare() {
        let clients = Clients::new("scarecrow-test").unwrap();
        let a = check("a", r#"resolve = { "shop.test" = "127.0.0.1" }"#);
        let b = check("b", r#"resolve = { "SHOP.test" = "127.0.0.1" }"#);
        let c = check("c", r#"proxy = "http://127.0.0.1:3128""#);
        let plain = check("plain", "");
        assert!(clients.prepare([&a, &b, &c, &plain]).is_empty());
        assert_eq!(clients.read().len(), 2);

        // A reload without `c` drops its client; a run of it builds one again.
        assert!(clients.prepare([&a, &plain]).is_empty());
        assert_eq!(clients.read().len(), 1);
        clients.get(&c.connection).unwrap();
        clients.get(&c.connection).unwrap();
        assert_eq!(clients.read().len(), 2);
        clients.get(&plain.connection).unwrap();
        assert_eq!(clients.read().len(), 2);
    }
}
