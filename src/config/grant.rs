//! `[[grant]]` in `config.toml`: what the check files under a directory may
//! reach — environment variables, secrets, files and hosts — and the
//! answers the check reader asks of it for each reference it reads. Check
//! files are written by teams; `config.toml` and its grants by whoever runs
//! the daemon, so owner and labels (written by the teams) grant nothing.
//!
//! Without any `[[grant]]` a check file reaches what the daemon reaches, as
//! before grants existed. Whatever the grants, the daemon's own secrets
//! (every `${secret:}` and `${file:}` that `config.toml` names) are never
//! granted, and link-local and cloud-metadata hosts only when a grant's
//! `hosts` names them.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv6Addr};
use std::path::{Component, Path, PathBuf};

use toml::de::DeValue;

use super::reader::{Ctx, Env, Value};
use crate::template::Placeholder;

/// A name or host pattern where `*` stands for any run of characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Glob(String);

impl Glob {
    /// A pattern of characters `ok` accepts, plus `*`.
    fn parse(text: &str, ok: fn(char) -> bool) -> Result<Glob, String> {
        if text.is_empty() {
            return Err("an empty pattern matches nothing".to_owned());
        }
        if text.contains("**") {
            return Err(format!(
                "{text:?}: write `*` once; it already matches any run"
            ));
        }
        match text.chars().find(|&c| c != '*' && !ok(c)) {
            Some(c) => Err(format!("{text:?}: `{c}` cannot appear here")),
            None => Ok(Glob(text.to_owned())),
        }
    }

    pub fn matches(&self, text: &str) -> bool {
        let mut pieces = self.0.split('*');
        let first = pieces.next().unwrap_or("");
        let Some(mut rest) = text.strip_prefix(first) else {
            return false;
        };
        let pieces: Vec<&str> = pieces.collect();
        let Some((last, middle)) = pieces.split_last() else {
            return rest.is_empty();
        };
        for piece in middle {
            match rest.find(piece) {
                Some(i) => rest = &rest[i + piece.len()..],
                None => return false,
            }
        }
        rest.len() >= last.len() && rest.ends_with(last)
    }
}

fn name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')
}

fn host_char(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '.' | ':')
}

/// One `[[grant]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// Relative to `checks_dir`; empty for every check file.
    dir: PathBuf,
    env: Vec<Glob>,
    secrets: Vec<Glob>,
    /// Canonical path prefixes.
    files: Vec<PathBuf>,
    /// Where requests may go; `None` means anywhere but metadata hosts.
    hosts: Option<Vec<Glob>>,
}

/// The daemon's own secrets: what `config.toml` names outside `[[grant]]`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reserved {
    pub names: BTreeSet<String>,
    /// Canonical paths.
    pub files: Vec<PathBuf>,
}

/// The grants of `config.toml`, where check files live, and the daemon's
/// own secrets.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policy {
    /// `None` without any `[[grant]]`: check files keep the daemon's reach.
    grants: Option<Vec<Grant>>,
    checks_dir: PathBuf,
    reserved: Reserved,
}

/// Said once at start-up and by `validate` when `config.toml` has no grant.
pub const NO_GRANTS: &str = "config.toml has no [[grant]]: every check file may read any environment variable, secret and file the daemon can (see docs/security.md)";

impl Policy {
    pub fn new(grants: Option<Vec<Grant>>, checks_dir: PathBuf, reserved: Reserved) -> Policy {
        Policy {
            grants,
            checks_dir: canonical(&checks_dir),
            reserved,
        }
    }

    /// Whether check files reach everything (no `[[grant]]`).
    pub fn is_open(&self) -> bool {
        self.grants.is_none()
    }

    pub fn reserved(&self) -> &Reserved {
        &self.reserved
    }

    /// What the check file at `file` may reach: the union of the grants
    /// whose `dir` holds it.
    pub fn access(&self, file: &Path) -> Access<'_> {
        let parent = canonical(file.parent().unwrap_or(Path::new("")));
        let rel = parent.strip_prefix(&self.checks_dir).ok();
        let grants = match (&self.grants, rel) {
            (Some(all), Some(rel)) => all.iter().filter(|g| rel.starts_with(&g.dir)).collect(),
            _ => Vec::new(),
        };
        let shown = match (rel, self.checks_dir.file_name()) {
            (Some(rel), Some(top)) => Path::new(top).join(rel),
            _ => parent.clone(),
        };
        Access {
            policy: self,
            shown: format!("{}/", shown.display().to_string().trim_end_matches('/')),
            dir: rel.map(|r| match r.as_os_str().is_empty() {
                true => ".".to_owned(),
                false => r.display().to_string(),
            }),
            grants,
        }
    }
}

/// What one check file may reach.
pub struct Access<'p> {
    policy: &'p Policy,
    /// Its directory as people know it (`checks/web/`).
    shown: String,
    /// Its directory relative to `checks_dir`, if it is inside.
    dir: Option<String>,
    grants: Vec<&'p Grant>,
}

impl Access<'_> {
    fn open(&self) -> bool {
        self.policy.is_open()
    }

    fn lacks(&self, what: &str, key: &str) -> String {
        let fix = match &self.dir {
            Some(dir) => format!("add it to `{key}` in a [[grant]] with dir = {dir:?}"),
            None => "it is outside checks_dir, where no [[grant]] reaches".to_owned(),
        };
        format!("{what} is not granted to {}: {fix}", self.shown)
    }

    /// A placeholder of a check file, at load: `env` answers `${env:}`
    /// lookups, to compare values with the daemon's secrets.
    pub fn placeholder(&self, p: &Placeholder, env: Env) -> Result<(), String> {
        match p {
            Placeholder::Env { name, .. } => {
                self.reserved_name(&format!("${{env:{name}}}"), name)?;
                let value = env(name).filter(|v| !v.is_empty());
                let same = |n: &String| env(n).filter(|v| !v.is_empty()) == value;
                if value.is_some() && self.policy.reserved.names.iter().any(same) {
                    return Err(format!(
                        "`${{env:{name}}}` holds the value of one of the daemon's own secrets; check files never get those"
                    ));
                }
                self.name(&format!("`${{env:{name}}}`"), name, "env", |g| &g.env)
            }
            Placeholder::Secret(name) => {
                self.reserved_name(&format!("${{secret:{name}}}"), name)?;
                self.name(&format!("`${{secret:{name}}}`"), name, "secrets", |g| {
                    &g.secrets
                })
            }
            Placeholder::File(path) => self.file(Path::new(path)),
            Placeholder::Capture(_) => Ok(()),
        }
    }

    fn reserved_name(&self, written: &str, name: &str) -> Result<(), String> {
        match self.policy.reserved.names.contains(name) {
            true => Err(format!(
                "`{written}` is one of the daemon's own secrets (config.toml uses it); check files never get it, whatever the grants"
            )),
            false => Ok(()),
        }
    }

    fn name(
        &self,
        written: &str,
        name: &str,
        key: &str,
        list: fn(&Grant) -> &Vec<Glob>,
    ) -> Result<(), String> {
        match self.open()
            || self
                .grants
                .iter()
                .any(|g| list(g).iter().any(|p| p.matches(name)))
        {
            true => Ok(()),
            false => Err(self.lacks(written, key)),
        }
    }

    /// A path the check names: `${file:}`, a multipart file, a `[tls]` file.
    /// Messages show the path as the check wrote it; the decision is on
    /// its canonical form, so neither `..` nor a link escapes a prefix.
    pub fn file(&self, path: &Path) -> Result<(), String> {
        let real = canonical(path);
        if self.policy.reserved.files.contains(&real) {
            return Err(format!(
                "file {} holds one of the daemon's own secrets (config.toml uses it); check files never get it, whatever the grants",
                path.display()
            ));
        }
        let granted = self
            .grants
            .iter()
            .any(|g| g.files.iter().any(|f| real.starts_with(f)));
        match self.open() || granted {
            true => Ok(()),
            false => Err(self.lacks(&format!("file {}", path.display()), "files")),
        }
    }

    /// A host a request goes to, as its URL or `resolve` names it:
    /// within `hosts` when every grant of the file limits them.
    pub fn host(&self, host: &url::Host<&str>) -> Result<(), String> {
        let named = self.destination(host)?;
        let limited = !self.grants.is_empty() && self.grants.iter().all(|g| g.hosts.is_some());
        match !limited || named {
            true => Ok(()),
            false => Err(self.lacks(&format!("host {}", host_text(host)), "hosts")),
        }
    }

    /// Where a request may connect (a host, or an address `resolve` gives
    /// it): anywhere but a metadata destination, unless `hosts` names it.
    /// Says whether a grant's `hosts` names it.
    pub fn destination(&self, host: &url::Host<&str>) -> Result<bool, String> {
        let text = host_text(host);
        let named = self
            .grants
            .iter()
            .filter_map(|g| g.hosts.as_ref())
            .any(|hosts| hosts.iter().any(|h| h.matches(&text)));
        if metadata(host) && !named {
            let fix = match &self.dir {
                Some(dir) => {
                    format!("name it in `hosts` of a [[grant]] with dir = {dir:?} to reach it")
                }
                None => "check files outside checks_dir never reach it".to_owned(),
            };
            return Err(format!(
                "host {text} is a link-local or cloud-metadata address: {fix}"
            ));
        }
        Ok(named)
    }
}

fn host_text(host: &url::Host<&str>) -> String {
    match host {
        url::Host::Domain(d) => d.trim_end_matches('.').to_ascii_lowercase(),
        url::Host::Ipv4(ip) => ip.to_string(),
        url::Host::Ipv6(ip) => ip.to_string(),
    }
}

/// Cloud instance-metadata names: their answers hold credentials.
const METADATA_NAMES: &[&str] = &[
    "metadata",
    "metadata.google.internal",
    "metadata.goog",
    "metadata.azure.com",
    "instance-data",
    "instance-data.ec2.internal",
];

/// Link-local addresses (169.254.0.0/16, fe80::/10), AWS's IPv6 metadata
/// address and the metadata names.
fn metadata(host: &url::Host<&str>) -> bool {
    match host {
        url::Host::Domain(d) => {
            let d = d.trim_end_matches('.').to_ascii_lowercase();
            METADATA_NAMES.contains(&d.as_str())
        }
        url::Host::Ipv4(ip) => ip.is_link_local(),
        url::Host::Ipv6(ip) => link_local_v6(ip),
    }
}

fn link_local_v6(ip: &Ipv6Addr) -> bool {
    let aws = Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254);
    (ip.segments()[0] & 0xffc0) == 0xfe80
        || *ip == aws
        || ip.to_ipv4_mapped().is_some_and(|v4| v4.is_link_local())
}

/// An address `resolve` maps a host to.
pub fn ip_host(ip: IpAddr) -> url::Host<&'static str> {
    match ip {
        IpAddr::V4(v4) => url::Host::Ipv4(v4),
        IpAddr::V6(v6) => url::Host::Ipv6(v6),
    }
}

/// The path with links resolved if it exists, else made absolute and
/// cleaned of `.` and `..` as written.
pub fn canonical(path: &Path) -> PathBuf {
    if let Ok(p) = std::fs::canonicalize(path) {
        return p;
    }
    let absolute = match path.is_absolute() {
        true => path.to_owned(),
        false => std::env::current_dir().unwrap_or_default().join(path),
    };
    let mut out = PathBuf::new();
    for c in absolute.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// `[[grant]]`: an array of tables; paths in `files` are relative to
/// `base`, the directory of `config.toml`.
pub(super) fn read(cx: &mut Ctx, v: &Value, base: &Path) -> Vec<Grant> {
    let Some(items) = cx.array(v) else {
        return Vec::new();
    };
    items
        .iter()
        .filter_map(|item| grant(cx, item, base))
        .collect()
}

fn grant(cx: &mut Ctx, v: &Value, base: &Path) -> Option<Grant> {
    let t = cx.table(v, "[[grant]]")?;
    let dir = match t.get("dir") {
        Some(d) => dir(cx, d),
        None => {
            cx.error(
                t.span.clone(),
                "a [[grant]] needs a `dir` (relative to checks_dir)",
            );
            None
        }
    };
    let mut globs = |key: &'static str, ok: fn(char) -> bool| -> Option<Vec<Glob>> {
        let v = t.get(key)?;
        let mut out = Vec::new();
        for (text, span) in cx.strings(v) {
            let text = if key == "hosts" {
                text.to_ascii_lowercase()
            } else {
                text.to_owned()
            };
            match Glob::parse(&text, ok) {
                Ok(g) => out.push(g),
                Err(e) => cx.error(span, format!("invalid pattern in `{key}`: {e}")),
            }
        }
        Some(out)
    };
    let env = globs("env", name_char).unwrap_or_default();
    let secrets = globs("secrets", name_char).unwrap_or_default();
    let hosts = globs("hosts", host_char);
    let files = t.get("files").map_or_else(Vec::new, |v| {
        let mut out = Vec::new();
        for (text, span) in cx.strings(v) {
            match text.is_empty() {
                true => cx.error(span, "an empty path grants nothing; write a directory"),
                false => out.push(canonical(&base.join(text))),
            }
        }
        out
    });
    t.finish(cx);
    Some(Grant {
        dir: dir?,
        env,
        secrets,
        files,
        hosts,
    })
}

/// `dir`: a directory under `checks_dir`, written relative to it.
fn dir(cx: &mut Ctx, v: &Value) -> Option<PathBuf> {
    let s = cx.str(v)?;
    let p = Path::new(s);
    let inside = p
        .components()
        .all(|c| matches!(c, Component::Normal(_) | Component::CurDir));
    if !inside {
        cx.error(
            v.span(),
            format!("dir {s:?} is relative to checks_dir and stays inside it (no `/` at the start, no `..`)"),
        );
        return None;
    }
    Some(
        p.components()
            .filter(|c| matches!(c, Component::Normal(_)))
            .collect(),
    )
}

/// Every `${secret:}` name and `${file:}` path of `config.toml` outside
/// `[[grant]]`: the daemon's own secrets. Paths are canonical as a run
/// reads them, relative to the working directory.
pub(super) fn reserved(root: &toml::de::DeTable) -> Reserved {
    let mut r = Reserved::default();
    let mut pending: Vec<&DeValue> = root
        .iter()
        .filter(|(k, _)| k.get_ref() != "grant")
        .map(|(_, v)| v.get_ref())
        .collect();
    while let Some(v) = pending.pop() {
        match v {
            DeValue::String(s) => {
                for (p, _, _) in crate::template::placeholders(s) {
                    match p {
                        Placeholder::Secret(n) => {
                            r.names.insert(n.to_owned());
                        }
                        Placeholder::File(f) => r.files.push(canonical(Path::new(f))),
                        Placeholder::Env { .. } | Placeholder::Capture(_) => {}
                    }
                }
            }
            DeValue::Array(a) => pending.extend(a.iter().map(|x| x.get_ref())),
            DeValue::Table(t) => pending.extend(t.values().map(|x| x.get_ref())),
            _ => {}
        }
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn glob(s: &str) -> Glob {
        Glob::parse(s, name_char).unwrap()
    }

    #[test]
    fn globs_match_any_run_where_a_star_is() {
        assert!(glob("WEB_*").matches("WEB_TOKEN"));
        assert!(glob("WEB_*").matches("WEB_"));
        assert!(!glob("WEB_*").matches("API_TOKEN"));
        assert!(glob("*_TOKEN").matches("WEB_TOKEN"));
        assert!(glob("A*B*C").matches("AxxBxxC"));
        assert!(!glob("A*B*C").matches("AxxC"));
        assert!(!glob("AB*BA").matches("ABA"));
        assert!(glob("EXACT").matches("EXACT"));
        assert!(!glob("EXACT").matches("EXACTLY"));
        assert!(Glob::parse("A**", name_char).is_err());
        assert!(Glob::parse("A B", name_char).is_err());
        assert!(Glob::parse("", name_char).is_err());
    }

    fn host(s: &str) -> url::Host<&str> {
        url::Host::Domain(s)
    }

    #[test]
    fn a_file_gets_the_union_of_the_grants_whose_dir_holds_it() {
        let grant = |dir: &str, secrets: &[&str], files: &[&str], hosts: Option<&[&str]>| Grant {
            dir: PathBuf::from(dir),
            env: Vec::new(),
            secrets: secrets.iter().map(|s| glob(s)).collect(),
            files: files.iter().map(PathBuf::from).collect(),
            hosts: hosts.map(|h| h.iter().map(|s| glob(s)).collect()),
        };
        let reserved = Reserved {
            names: ["API_TOKEN".to_owned()].into(),
            files: vec![PathBuf::from("/run/secrets/web/daemon")],
        };
        let policy = Policy::new(
            Some(vec![
                grant("web", &["WEB_*", "API_TOKEN"], &["/run/secrets/web"], None),
                grant(
                    "web/shop",
                    &["SHOP_*"],
                    &[],
                    Some(&["*.example.org", "metadata"]),
                ),
                grant("ops", &[], &[], Some(&["ops.example.org"])),
            ]),
            PathBuf::from("/nonexistent-scarecrow/checks"),
            reserved,
        );
        let secret = |a: &Access, n| a.placeholder(&Placeholder::Secret(n), &|_| None);
        let shop = policy.access(Path::new("/nonexistent-scarecrow/checks/web/shop/a.toml"));
        assert!(secret(&shop, "WEB_TOKEN").is_ok() && secret(&shop, "SHOP_KEY").is_ok());
        assert!(
            secret(&shop, "API_TOKEN")
                .unwrap_err()
                .contains("daemon's own")
        );
        assert!(shop.file(Path::new("/run/secrets/web/token")).is_ok());
        assert!(shop.file(Path::new("/run/secrets/web/../other")).is_err());
        assert!(shop.file(Path::new("/run/secrets/website")).is_err());
        assert!(shop.file(Path::new("/run/secrets/web/daemon")).is_err());
        // One of its grants sets no `hosts`: not limited, metadata named.
        assert!(shop.host(&host("anywhere.test")).is_ok());
        assert!(shop.host(&host("metadata")).is_ok());
        let web = policy.access(Path::new("/nonexistent-scarecrow/checks/web/a.toml"));
        assert!(
            secret(&web, "SHOP_KEY")
                .unwrap_err()
                .contains("dir = \"web\"")
        );
        assert!(web.host(&host("metadata.google.internal")).is_err());
        let ops = policy.access(Path::new("/nonexistent-scarecrow/checks/ops/a.toml"));
        assert!(ops.host(&host("ops.example.org")).is_ok());
        assert!(
            ops.host(&host("www.example.org"))
                .unwrap_err()
                .contains("`hosts`")
        );
        let ip = ip_host("10.0.0.7".parse().unwrap());
        assert_eq!(ops.destination(&ip), Ok(false));
        assert!(
            ops.destination(&ip_host("169.254.169.254".parse().unwrap()))
                .is_err()
        );
    }

    #[test]
    fn link_local_and_metadata_hosts_are_recognised() {
        for url in [
            "http://169.254.169.254/latest/",
            "http://[fe80::1]/",
            "http://[fd00:ec2::254]/",
            "http://metadata.google.internal/",
            "http://METADATA.azure.com./",
            "http://[::ffff:169.254.1.1]/",
        ] {
            let u = url::Url::parse(url).unwrap();
            assert!(metadata(&u.host().unwrap()), "{url}");
        }
        let u = url::Url::parse("http://example.org/").unwrap();
        assert!(!metadata(&u.host().unwrap()));
    }
}
