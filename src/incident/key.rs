//! An incident's key, `scarecrow:{instance_group}:{check}`: the same for every
//! incident of a check, so replicas and receivers dedupe on it. Written and
//! read back here only, so the two cannot drift apart.

const PREFIX: &str = "scarecrow:";

/// The key of `check`'s incidents in `instance_group`.
pub fn new(instance_group: &str, check: &str) -> String {
    format!("{PREFIX}{instance_group}:{check}")
}

/// The instance group a key names; `None` for a key not written by [`new`].
/// A group never holds `:` (the config allows a-z, 0-9, `_` and `-`).
pub fn instance_group(key: &str) -> Option<&str> {
    let rest = key.strip_prefix(PREFIX)?;
    rest.split_once(':').map(|(group, _)| group)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_group_is_read_back_from_the_key() {
        let key = new("eu-west", "checkout:card");
        assert_eq!(key, "scarecrow:eu-west:checkout:card");
        assert_eq!(instance_group(&key), Some("eu-west"));
        assert_eq!(instance_group("other:eu-west:checkout"), None);
        assert_eq!(instance_group("scarecrow:no-check"), None);
    }
}
