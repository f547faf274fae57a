//! Log group names: the unit of ownership, retention and access control.

use std::fmt;

/// A validated log group name such as `aws/cloudtrail` or `seclog/dead-letter`.
///
/// One to eight `/`-separated parts of `[A-Za-z0-9._-]`, at most 128 bytes, no part `.` or `..`.
/// Names beginning `seclog/` are internal.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GroupName(String);

/// Why a group name was refused.
#[derive(Debug, thiserror::Error)]
#[error("invalid group name {name:?}: {reason}")]
pub struct GroupNameError {
    name: String,
    reason: &'static str,
}

const MAX_LEN: usize = 128;
const MAX_PARTS: usize = 8;
/// Replaces `/` in on-disk directory names; `%` never occurs in a valid name.
const DIR_SEPARATOR: &str = "%2F";

impl GroupName {
    /// Group holding records that could not be parsed, kept raw with the reason.
    pub const DEAD_LETTER: &'static str = "seclog/dead-letter";
    /// The group every read of log data and every admin action is recorded in.
    pub const ACCESS: &'static str = "seclog/access";

    /// Validates a group name.
    pub fn parse(name: &str) -> Result<Self, GroupNameError> {
        let fail = |reason| {
            Err(GroupNameError {
                name: name.chars().take(MAX_LEN + 8).collect(),
                reason,
            })
        };
        if name.is_empty() {
            return fail("empty");
        }
        if name.len() > MAX_LEN {
            return fail("longer than 128 bytes");
        }
        let parts: Vec<&str> = name.split('/').collect();
        if parts.len() > MAX_PARTS {
            return fail("more than 8 parts");
        }
        for part in parts {
            if part.is_empty() {
                return fail("empty part (leading, trailing or double '/')");
            }
            if part == "." || part == ".." {
                return fail("'.' and '..' are not allowed as parts");
            }
            let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
            if !part.chars().all(allowed) {
                return fail("only A-Z a-z 0-9 . _ - and '/' are allowed");
            }
        }
        Ok(GroupName(name.to_owned()))
    }

    /// The dead-letter group.
    pub fn dead_letter() -> Self {
        GroupName(Self::DEAD_LETTER.to_owned())
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// True for the group that records every read and admin action (`seclog/access`): no
    /// retention policy applies to it and nothing deletes it.
    pub fn is_access_log(&self) -> bool {
        self.0 == Self::ACCESS
    }

    /// True for groups that seclog writes itself (`seclog/...`).
    pub fn is_internal(&self) -> bool {
        self.0.starts_with("seclog/")
    }

    /// The single directory-name form of this group (`/` becomes `%2F`).
    pub fn to_dir_name(&self) -> String {
        self.0.replace('/', DIR_SEPARATOR)
    }

    /// Inverse of [`GroupName::to_dir_name`]; validates the result.
    pub fn from_dir_name(dir_name: &str) -> Result<Self, GroupNameError> {
        Self::parse(&dir_name.replace(DIR_SEPARATOR, "/"))
    }
}

impl fmt::Display for GroupName {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_usual_names_and_round_trips_dir_names() {
        for name in [
            "aws/cloudtrail",
            "app/payments",
            "seclog/dead-letter",
            "a.b_c-d",
        ] {
            let group = GroupName::parse(name).unwrap();
            assert_eq!(
                GroupName::from_dir_name(&group.to_dir_name()).unwrap(),
                group
            );
            assert!(!group.to_dir_name().contains('/'));
        }
        assert!(GroupName::parse("seclog/access").unwrap().is_internal());
    }

    #[test]
    fn refuses_traversal_and_odd_characters() {
        for name in [
            "",
            "/a",
            "a/",
            "a//b",
            "..",
            "a/../b",
            "a b",
            "a%2Fb",
            "é",
            &"x".repeat(129),
        ] {
            assert!(
                GroupName::parse(name).is_err(),
                "{name:?} should be refused"
            );
        }
    }
}
