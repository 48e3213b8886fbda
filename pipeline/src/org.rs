//! Org codes (单位编码) are paths, province/city/county[/station], e.g.
//! `41/4107/410727`. A unit covers itself and every unit below it, matched
//! by whole path segments: `41/410` does not cover `41/4107`.

/// Whether `unit` is `org` or one of its ancestors.
pub fn covers(unit: &str, org: &str) -> bool {
    let unit = unit.trim_end_matches('/');
    match org.strip_prefix(unit) {
        Some(rest) => rest.is_empty() || rest.starts_with('/'),
        None => false,
    }
}

/// The county of an org path (`41/4107/410727/01` → `41/4107/410727`).
pub fn county(org: &str) -> String {
    org.split('/').take(3).collect::<Vec<_>>().join("/")
}

/// What a caller may see and act on: everything, or one unit's subtree.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Scope {
    /// No access control (`jicha run` without `--auth`, tests, replay).
    #[default]
    All,
    /// A unit and every unit below it.
    Unit(String),
}

impl Scope {
    pub fn covers(&self, org: &str) -> bool {
        match self {
            Scope::All => true,
            Scope::Unit(u) => covers(u, org),
        }
    }

    /// Whether it sees records that belong to no unit (dead letters of
    /// unknown meters, say): only the whole province does.
    pub fn sees_unowned(&self) -> bool {
        match self {
            Scope::All => true,
            Scope::Unit(u) => !u.trim_end_matches('/').contains('/'),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_segments_only() {
        assert!(covers("41", "41/4107/410727"));
        assert!(covers("41/4107", "41/4107"));
        assert!(covers("41/4107/", "41/4107/410727"));
        assert!(!covers("41/410", "41/4107"));
        assert!(!covers("41/4107/410727", "41/4107"));
        assert!(!covers("42", "41/4107"));
        assert!(Scope::Unit("41".into()).sees_unowned());
        assert!(!Scope::Unit("41/4107".into()).sees_unowned());
        assert!(Scope::All.covers("anything"));
    }
}
