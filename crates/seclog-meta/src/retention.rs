//! Retention policies (days and mode per group) and legal holds.
//!
//! - `governance`: an admin may shorten the policy, but only by asking for it explicitly
//!   (`shorten`); the change is recorded by the caller in `seclog/access`.
//! - `compliance`: the policy may be lengthened, never shortened, removed or turned back into
//!   governance, by anyone.
//! - A legal hold on a group stops expiry there until it is released.
//! - `seclog/access` takes no policy: it is kept forever.

use redb::{ReadableDatabase, ReadableTable};
use serde::{Deserialize, Serialize};

use crate::{LEGAL_HOLDS, MetaError, MetaStore, RETENTION, RETENTION_MODES, Result, storage};

/// The access log group, which no retention policy may shorten.
const ACCESS_GROUP: &str = "seclog/access";

/// How a retention policy may change.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RetentionMode {
    /// An admin may shorten it, explicitly and recorded.
    #[default]
    Governance,
    /// Nobody may shorten or remove it; it may only be lengthened.
    Compliance,
}

impl RetentionMode {
    /// Parses `governance` or `compliance`.
    pub fn parse(text: &str) -> Result<Self> {
        match text {
            "governance" => Ok(RetentionMode::Governance),
            "compliance" => Ok(RetentionMode::Compliance),
            other => Err(MetaError::Invalid(format!(
                "unknown retention mode {other:?} (governance, compliance)"
            ))),
        }
    }

    /// The mode's name.
    pub fn name(self) -> &'static str {
        match self {
            RetentionMode::Governance => "governance",
            RetentionMode::Compliance => "compliance",
        }
    }
}

/// A group's retention policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetentionPolicy {
    /// The group name.
    pub group: String,
    /// Records older than this many days are deleted (whole segments).
    pub days: u32,
    /// How the policy may change.
    pub mode: RetentionMode,
}

/// A wanted policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetentionChange {
    /// Days to keep.
    pub days: u32,
    /// Mode.
    pub mode: RetentionMode,
    /// The caller explicitly asks to shorten a governance policy.
    pub shorten: bool,
}

impl RetentionChange {
    /// A named preset: `pci-dss` keeps 12 months (365 days) in compliance mode (PCI DSS
    /// 10.5.1: at least twelve months, the last three immediately available; seclog keeps all
    /// of it searchable).
    pub fn preset(name: &str) -> Result<Self> {
        match name {
            "pci-dss" => Ok(RetentionChange {
                days: 365,
                mode: RetentionMode::Compliance,
                shorten: false,
            }),
            other => Err(MetaError::Invalid(format!(
                "unknown retention preset {other:?} (pci-dss)"
            ))),
        }
    }
}

/// A legal hold: expiry of the group is stopped until it is released.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LegalHold {
    /// The group.
    pub group: String,
    /// Why (a case or matter reference).
    pub reason: String,
    /// When it was placed, Unix seconds.
    pub since_unix: i64,
}

/// Why `change` may not replace `previous` for `group`, if it may not.
fn refusal(
    group: &str,
    previous: Option<&RetentionPolicy>,
    change: &RetentionChange,
) -> Option<String> {
    if group == ACCESS_GROUP {
        return Some(format!(
            "{group} records every read and admin action and is kept forever"
        ));
    }
    if change.days == 0 {
        return Some("retention must be at least 1 day".into());
    }
    let previous = previous?;
    match previous.mode {
        RetentionMode::Compliance if change.mode == RetentionMode::Governance => Some(format!(
            "the retention of {group} is in compliance mode and cannot become governance"
        )),
        RetentionMode::Compliance if change.days < previous.days => Some(format!(
            "the retention of {group} is in compliance mode ({} days): it can be lengthened, never shortened",
            previous.days
        )),
        RetentionMode::Governance if change.days < previous.days && !change.shorten => {
            Some(format!(
                "shortening the governance retention of {group} from {} to {} days must be asked for explicitly (\"shorten\": true, or --shorten); it is recorded",
                previous.days, change.days
            ))
        }
        _ => None,
    }
}

impl MetaStore {
    /// The policy of `group`, if any.
    pub fn retention_policy(&self, group: &str) -> Result<Option<RetentionPolicy>> {
        let txn = self.db.begin_read().map_err(storage)?;
        let days_table = txn.open_table(RETENTION).map_err(storage)?;
        let modes = txn.open_table(RETENTION_MODES).map_err(storage)?;
        let Some(days) = days_table.get(group).map_err(storage)? else {
            return Ok(None);
        };
        let mode = match modes.get(group).map_err(storage)? {
            Some(mode) => RetentionMode::parse(mode.value())?,
            None => RetentionMode::Governance,
        };
        Ok(Some(RetentionPolicy {
            group: group.to_string(),
            days: days.value(),
            mode,
        }))
    }

    /// Checks that `change` may replace the policy of `group`; returns the current policy.
    pub fn check_retention_change(
        &self,
        group: &str,
        change: &RetentionChange,
    ) -> Result<Option<RetentionPolicy>> {
        let previous = self.retention_policy(group)?;
        match refusal(group, previous.as_ref(), change) {
            Some(reason) => Err(MetaError::Invalid(reason)),
            None => Ok(previous),
        }
    }

    /// Replaces the policy of `group` if the rules allow it (checked again in the write
    /// transaction); returns the previous policy.
    pub fn change_retention(
        &self,
        group: &str,
        change: &RetentionChange,
    ) -> Result<Option<RetentionPolicy>> {
        let txn = self.db.begin_write().map_err(storage)?;
        let previous = {
            let mut days_table = txn.open_table(RETENTION).map_err(storage)?;
            let mut modes = txn.open_table(RETENTION_MODES).map_err(storage)?;
            let previous_days = days_table.get(group).map_err(storage)?.map(|d| d.value());
            let previous_mode = match modes.get(group).map_err(storage)? {
                Some(mode) => RetentionMode::parse(mode.value())?,
                None => RetentionMode::Governance,
            };
            let previous = previous_days.map(|days| RetentionPolicy {
                group: group.to_string(),
                days,
                mode: previous_mode,
            });
            if let Some(reason) = refusal(group, previous.as_ref(), change) {
                return Err(MetaError::Invalid(reason));
            }
            days_table.insert(group, change.days).map_err(storage)?;
            modes.insert(group, change.mode.name()).map_err(storage)?;
            previous
        };
        txn.commit().map_err(storage)?;
        Ok(previous)
    }

    /// Sets a governance policy of `days`, refusing to shorten one (as
    /// [`MetaStore::change_retention`] without `shorten`).
    pub fn set_retention(&self, group: &str, days: u32) -> Result<()> {
        let mode = self
            .retention_policy(group)?
            .map_or(RetentionMode::Governance, |policy| policy.mode);
        self.change_retention(
            group,
            &RetentionChange {
                days,
                mode,
                shorten: false,
            },
        )
        .map(|_| ())
    }

    /// Removes a governance policy (the group's records are then kept); a compliance policy
    /// cannot be removed. False if the group had none.
    pub fn remove_retention(&self, group: &str) -> Result<bool> {
        let txn = self.db.begin_write().map_err(storage)?;
        let removed = {
            let mut modes = txn.open_table(RETENTION_MODES).map_err(storage)?;
            // Checked in the transaction that removes: no change can slip in between.
            if modes
                .get(group)
                .map_err(storage)?
                .is_some_and(|mode| mode.value() == RetentionMode::Compliance.name())
            {
                return Err(MetaError::Invalid(format!(
                    "the retention of {group} is in compliance mode and cannot be removed"
                )));
            }
            modes.remove(group).map_err(storage)?;
            txn.open_table(RETENTION)
                .map_err(storage)?
                .remove(group)
                .map_err(storage)?
                .is_some()
        };
        txn.commit().map_err(storage)?;
        Ok(removed)
    }

    /// Every retention policy.
    pub fn retention_policies(&self) -> Result<Vec<RetentionPolicy>> {
        let txn = self.db.begin_read().map_err(storage)?;
        let table = txn.open_table(RETENTION).map_err(storage)?;
        let modes = txn.open_table(RETENTION_MODES).map_err(storage)?;
        let mut policies = Vec::new();
        for entry in table.iter().map_err(storage)? {
            let (group, days) = entry.map_err(storage)?;
            let mode = match modes.get(group.value()).map_err(storage)? {
                Some(mode) => RetentionMode::parse(mode.value())?,
                None => RetentionMode::Governance,
            };
            policies.push(RetentionPolicy {
                group: group.value().to_string(),
                days: days.value(),
                mode,
            });
        }
        Ok(policies)
    }

    /// Places a legal hold on `group` (replacing the reason of an existing one).
    pub fn place_hold(&self, group: &str, reason: &str, now_unix: i64) -> Result<LegalHold> {
        if reason.trim().is_empty() {
            return Err(MetaError::Invalid(
                "a legal hold needs a reason (a case or matter reference)".into(),
            ));
        }
        let hold = LegalHold {
            group: group.to_string(),
            reason: reason.to_string(),
            since_unix: now_unix,
        };
        let value = serde_json::to_string(&hold).map_err(storage)?;
        let txn = self.db.begin_write().map_err(storage)?;
        txn.open_table(LEGAL_HOLDS)
            .map_err(storage)?
            .insert(group, value.as_str())
            .map_err(storage)?;
        txn.commit().map_err(storage)?;
        Ok(hold)
    }

    /// Releases the legal hold on `group`; `None` if there was none.
    pub fn release_hold(&self, group: &str) -> Result<Option<LegalHold>> {
        let txn = self.db.begin_write().map_err(storage)?;
        let removed = txn
            .open_table(LEGAL_HOLDS)
            .map_err(storage)?
            .remove(group)
            .map_err(storage)?
            .map(|value| serde_json::from_str::<LegalHold>(value.value()))
            .transpose()
            .map_err(storage)?;
        txn.commit().map_err(storage)?;
        Ok(removed)
    }

    /// Every legal hold.
    pub fn legal_holds(&self) -> Result<Vec<LegalHold>> {
        let txn = self.db.begin_read().map_err(storage)?;
        let table = txn.open_table(LEGAL_HOLDS).map_err(storage)?;
        let mut holds = Vec::new();
        for entry in table.iter().map_err(storage)? {
            let (_, value) = entry.map_err(storage)?;
            holds.push(serde_json::from_str(value.value()).map_err(storage)?);
        }
        Ok(holds)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(days: u32, mode: RetentionMode, shorten: bool) -> RetentionChange {
        RetentionChange {
            days,
            mode,
            shorten,
        }
    }

    #[test]
    fn compliance_only_lengthens_and_governance_shortens_only_when_asked() {
        let dir = tempfile::tempdir().unwrap();
        let meta = MetaStore::open(dir.path()).unwrap();
        use RetentionMode::{Compliance, Governance};
        meta.change_retention("app/g", &change(30, Governance, false))
            .unwrap();
        assert!(
            meta.change_retention("app/g", &change(7, Governance, false))
                .is_err()
        );
        let previous = meta
            .change_retention("app/g", &change(7, Governance, true))
            .unwrap()
            .unwrap();
        assert_eq!(previous.days, 30);
        assert!(meta.remove_retention("app/g").unwrap());

        let pci = RetentionChange::preset("pci-dss").unwrap();
        meta.change_retention("card/x", &pci).unwrap();
        for refused in [
            change(364, Compliance, true),
            change(365, Governance, true),
            change(1000, Governance, false),
        ] {
            assert!(
                meta.check_retention_change("card/x", &refused).is_err(),
                "{refused:?}"
            );
            assert!(
                meta.change_retention("card/x", &refused).is_err(),
                "{refused:?}"
            );
        }
        assert!(meta.remove_retention("card/x").is_err());
        meta.change_retention("card/x", &change(400, Compliance, false))
            .unwrap();
        assert_eq!(
            meta.retention_policy("card/x").unwrap().unwrap(),
            RetentionPolicy {
                group: "card/x".into(),
                days: 400,
                mode: Compliance
            }
        );
        assert!(
            meta.change_retention("seclog/access", &change(3650, Compliance, false))
                .is_err()
        );
        drop(meta);
        let meta = MetaStore::open(dir.path()).unwrap();
        assert!(
            meta.change_retention("card/x", &change(365, Compliance, false))
                .is_err()
        );
    }

    #[test]
    fn legal_holds_are_placed_listed_and_released() {
        let dir = tempfile::tempdir().unwrap();
        let meta = MetaStore::open(dir.path()).unwrap();
        assert!(meta.place_hold("app/x", " ", 1).is_err());
        let hold = meta
            .place_hold("app/x", "case 2026-114", 1_700_000_000)
            .unwrap();
        assert_eq!(meta.legal_holds().unwrap(), vec![hold.clone()]);
        assert_eq!(meta.release_hold("app/x").unwrap(), Some(hold));
        assert_eq!(meta.release_hold("app/x").unwrap(), None);
        assert!(meta.legal_holds().unwrap().is_empty());
    }
}
