//! Who is called in when an incident is declared: written in `config.toml`,
//! globally and per owner, and copied into each incident as it is.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Incident roles: names, handles or channels.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Roles {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub coordinator: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operations: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub communications: Option<String>,
}

/// `[roles]`: the global roles and those of each owner.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoleConfig {
    pub global: Roles,
    /// Per owner; a role an owner does not name falls back to the global one.
    pub owners: BTreeMap<String, Roles>,
}

impl RoleConfig {
    /// The roles for a check of `owner`.
    pub fn for_owner(&self, owner: Option<&str>) -> Roles {
        let own = owner.and_then(|o| self.owners.get(o));
        let pick = |f: fn(&Roles) -> &Option<String>| {
            own.and_then(|r| f(r).clone())
                .or_else(|| f(&self.global).clone())
        };
        Roles {
            coordinator: pick(|r| &r.coordinator),
            operations: pick(|r| &r.operations),
            communications: pick(|r| &r.communications),
        }
    }
}
