//! The token file of `jicha run --auth FILE`:
//!
//! ```toml
//! [[token]]
//! token = "sha256:9f86d08…"   # or the token itself
//! name = "郑州供电公司-张三"    # the actor recorded for every action
//! role = "operator"           # viewer, operator, auditor, engineer, admin
//! org = "41/4101"             # this unit and every unit below it
//! ```
//!
//! Tokens are held only as SHA-256 digests; a presented token is hashed
//! and compared with every digest in constant time, so neither its value
//! nor which entry matched shows in the timing. Tokens are never logged.

use anyhow::{bail, Context, Result};
use serde::Deserialize;
use std::path::Path;
use subtle::ConstantTimeEq;

/// What a role may do. Each role's rights are a fixed set (see [`Role::may`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Viewer,
    Operator,
    Auditor,
    Engineer,
    Admin,
}

/// A kind of request, as access control sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Right {
    /// Reading work orders, themes, alerts, dead letters, metrics.
    Read,
    /// 签收 and 反馈 on orders of the caller's subtree.
    Handle,
    /// 派发, 审核, 抽检 and reports.
    Audit,
    /// Adding, changing and dry-running themes.
    Themes,
    /// The archive, billing periods and the whitelist.
    Admin,
}

impl Role {
    pub fn may(self, right: Right) -> bool {
        use Right::*;
        match self {
            Role::Admin => true,
            Role::Viewer => right == Read,
            Role::Operator => matches!(right, Read | Handle),
            Role::Auditor => matches!(right, Read | Audit),
            Role::Engineer => matches!(right, Read | Themes),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Auditor => "auditor",
            Role::Engineer => "engineer",
            Role::Admin => "admin",
        }
    }
}

/// Who a valid token belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub name: String,
    pub role: Role,
    pub org: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    token: Vec<Entry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    token: String,
    name: String,
    role: Role,
    org: String,
}

/// The tokens of one reading of the file.
pub struct Tokens {
    entries: Vec<([u8; 32], Grant)>,
}

fn sha256(text: &str) -> [u8; 32] {
    let d = ring::digest::digest(&ring::digest::SHA256, text.as_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

impl Tokens {
    pub fn load(path: &Path) -> Result<Tokens> {
        let text = std::fs::read_to_string(path).with_context(|| {
            format!(
                "cannot read the token file {}; check --auth",
                path.display()
            )
        })?;
        Tokens::parse(&text).with_context(|| format!("token file {}", path.display()))
    }

    pub fn parse(text: &str) -> Result<Tokens> {
        let file: File = toml::from_str(text)
            .context("expected [[token]] entries with token, name, role and org")?;
        if file.token.is_empty() {
            bail!("no [[token]] entries: nobody could use the API; add at least one admin token");
        }
        let mut entries = Vec::with_capacity(file.token.len());
        for (i, e) in file.token.into_iter().enumerate() {
            let at = || format!("[[token]] number {} ({})", i + 1, e.name);
            let digest = match e.token.strip_prefix("sha256:") {
                Some(h) => {
                    let bytes = hex::decode(h.trim())
                        .ok()
                        .filter(|b| b.len() == 32)
                        .with_context(|| {
                            format!("{}: sha256: must be followed by 64 hex digits", at())
                        })?;
                    let mut d = [0u8; 32];
                    d.copy_from_slice(&bytes);
                    d
                }
                None if e.token.len() < 16 => {
                    bail!("{}: a token must be at least 16 characters", at())
                }
                None => sha256(&e.token),
            };
            if e.name.trim().is_empty() {
                bail!("{}: name is empty; it is recorded as the actor", at());
            }
            if e.org.trim().is_empty() {
                bail!(
                    "{}: org is empty; use the province's code for all units",
                    at()
                );
            }
            if entries.iter().any(|(d, _)| d == &digest) {
                bail!("{}: the same token appears twice", at());
            }
            entries.push((
                digest,
                Grant {
                    name: e.name,
                    role: e.role,
                    org: e.org.trim_end_matches('/').to_string(),
                },
            ));
        }
        Ok(Tokens { entries })
    }

    /// The grant of `presented`, if it is one of the tokens.
    pub fn find(&self, presented: &str) -> Option<&Grant> {
        let digest = sha256(presented);
        let mut found = None;
        // Every entry is compared, so the time does not tell which matched.
        for (d, g) in &self.entries {
            if bool::from(d.ct_eq(&digest)) {
                found = Some(g);
            }
        }
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = r#"
[[token]]
token = "plain-token-of-the-admin"
name = "省中心-管理员"
role = "admin"
org = "41"

[[token]]
token = "sha256:ef797c8118f02dfb649607dd5d3f8c7623048c9c063d532cc95c5ed7a898a64f"
name = "county operator"
role = "operator"
org = "41/4107/410727/"
"#;

    #[test]
    fn plain_and_hashed_tokens_match_only_themselves() {
        let t = Tokens::parse(FILE).unwrap();
        let admin = t.find("plain-token-of-the-admin").unwrap();
        assert_eq!((admin.role, admin.org.as_str()), (Role::Admin, "41"));
        // sha256("12345678") is the digest above.
        let op = t.find("12345678").unwrap();
        assert_eq!(
            (op.role, op.org.as_str()),
            (Role::Operator, "41/4107/410727")
        );
        assert!(t.find("plain-token-of-the-admiN").is_none());
        assert!(t.find("").is_none());
    }

    #[test]
    fn bad_files_say_what_to_fix() {
        let e = |text: &str| format!("{:#}", Tokens::parse(text).err().unwrap());
        assert!(e("").contains("no [[token]] entries"));
        assert!(
            e("[[token]]\ntoken = \"short\"\nname = \"a\"\nrole = \"admin\"\norg = \"41\"")
                .contains("at least 16")
        );
        assert!(e(
            "[[token]]\ntoken = \"sha256:abc\"\nname = \"a\"\nrole = \"admin\"\norg = \"41\""
        )
        .contains("64 hex digits"));
        assert!(e(
            "[[token]]\ntoken = \"long-enough-token\"\nname = \"a\"\nrole = \"root\"\norg = \"41\""
        )
        .contains("role"));
    }

    #[test]
    fn the_example_file_reads() {
        let t = Tokens::parse(include_str!("../../deploy/auth.example.toml")).unwrap();
        let admin = t.find("change-me-province-admin-token").unwrap();
        assert_eq!((admin.role, admin.org.as_str()), (Role::Admin, "41"));
    }

    #[test]
    fn roles_have_their_rights_only() {
        assert!(Role::Viewer.may(Right::Read) && !Role::Viewer.may(Right::Handle));
        assert!(Role::Operator.may(Right::Handle) && !Role::Operator.may(Right::Audit));
        assert!(Role::Auditor.may(Right::Audit) && !Role::Auditor.may(Right::Handle));
        assert!(Role::Engineer.may(Right::Themes) && !Role::Engineer.may(Right::Admin));
        assert!(Role::Admin.may(Right::Admin));
    }
}
