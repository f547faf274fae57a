//! Logging-failure alarms (PCI DSS 10.7, NIST AU-5): a source silent beyond its expected
//! interval, a sealer that stopped signing checkpoints, a consumer (indexer, detector) that
//! stopped progressing while records wait, a disk nearly full.
//!
//! Every `interval` the watchdog looks at the server's counters and raises a health event
//! (`seclog/health`, see [`crate::health`]) when an alarm starts, and another when it clears;
//! the built-in rules turn the starts into findings, which alerting delivers. Active alarms
//! are also in `/api/v1/status` and `/metrics` (`seclog_alarm_active`), for monitoring that
//! must not depend on the journal (a stalled sealer cannot store its own alarm: it is written
//! when the journal takes writes again, and logged at once).

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use seclog_model::{GroupName, Timestamp};
use serde_json::json;

use crate::health::{self, Event};
use crate::{AppState, committer::GroupBatch};

/// What the watchdog watches, and when it speaks.
#[derive(Debug, Clone)]
pub struct WatchdogSettings {
    /// How often it looks.
    pub interval: Duration,
    /// Group patterns (`*` matches any run of characters) and the longest silence expected of
    /// each (`--expect 'aws/cloudtrail=15m'`).
    pub expect: Vec<(String, Duration)>,
    /// A consumer that has not progressed this long while records wait is stalled.
    pub stall_after: Duration,
    /// Free space below this percentage of the data directory's file system is an alarm.
    pub disk_min_free_percent: f64,
}

impl Default for WatchdogSettings {
    fn default() -> Self {
        WatchdogSettings {
            interval: Duration::from_secs(10),
            expect: Vec::new(),
            stall_after: Duration::from_secs(300),
            disk_min_free_percent: 5.0,
        }
    }
}

/// What the watchdog saw at one look.
#[derive(Debug, Clone, Default)]
pub struct Observation {
    /// Durable size of every group.
    pub groups: BTreeMap<GroupName, u64>,
    /// Seconds since the newest checkpoint was signed (by the wall clock), if any.
    pub checkpoint_age: Option<Duration>,
    /// The longest time allowed between checkpoints.
    pub heartbeat: Duration,
    /// Progress counters of the consumers (name, counter).
    pub consumers: Vec<(&'static str, u64)>,
    /// Free and total bytes of the data directory's file system.
    pub disk: Option<(u64, u64)>,
}

/// An alarm that is on.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Alarm {
    /// Its kind (`source_silent`, `sealer_stalled`, `consumer_stalled`, `disk_nearly_full`).
    pub kind: &'static str,
    /// What it is about (a group, a consumer, the data directory).
    pub subject: String,
    /// Since when (RFC 3339).
    pub since: String,
}

/// The alarms' memory between looks.
#[derive(Debug)]
pub struct Watchdog {
    settings: WatchdogSettings,
    started: Instant,
    /// Last size of each group and when it last grew.
    groups: BTreeMap<GroupName, (u64, Instant)>,
    /// Last counter of each consumer, when it last moved, and the journal total then.
    consumers: BTreeMap<&'static str, (u64, Instant, u64)>,
    active: BTreeMap<(&'static str, String), Alarm>,
}

fn matches(pattern: &str, text: &str) -> bool {
    seclog_detect::sources::wildcard_match(pattern, text)
}

impl Watchdog {
    /// A watchdog whose clock starts at `now` (nothing is silent before its interval passed).
    pub fn new(settings: WatchdogSettings, now: Instant) -> Self {
        Watchdog {
            settings,
            started: now,
            groups: BTreeMap::new(),
            consumers: BTreeMap::new(),
            active: BTreeMap::new(),
        }
    }

    /// The alarms on now.
    pub fn active(&self) -> Vec<Alarm> {
        self.active.values().cloned().collect()
    }

    /// Compares `seen` with the previous looks; returns the health events of alarms that
    /// started or cleared.
    pub fn look(&mut self, seen: &Observation, now: Instant) -> Vec<Event> {
        let mut on: BTreeMap<(&'static str, String), Event> = BTreeMap::new();
        // Sources.
        for (group, size) in &seen.groups {
            let entry = self
                .groups
                .entry(group.clone())
                .or_insert((*size, self.started));
            if *size != entry.0 {
                *entry = (*size, now);
            }
        }
        for (pattern, expected) in &self.settings.expect {
            let mut watched: Vec<(String, Instant)> = self
                .groups
                .iter()
                .filter(|(group, _)| matches(pattern, group.as_str()))
                .map(|(group, (_, grew))| (group.to_string(), *grew))
                .collect();
            if watched.is_empty() && !pattern.contains('*') {
                // A source that never sent anything.
                watched.push((pattern.clone(), self.started));
            }
            for (group, grew) in watched {
                let silent = now.saturating_duration_since(grew);
                if silent > *expected {
                    on.insert(
                        ("source_silent", group.clone()),
                        Event::new(
                            "source_silent",
                            "high",
                            &format!(
                                "{group} has received nothing for {}s (expected at least every {}s)",
                                silent.as_secs(),
                                expected.as_secs()
                            ),
                        )
                        .with("group", json!(group))
                        .with("silent_secs", json!(silent.as_secs()))
                        .with("expected_secs", json!(expected.as_secs())),
                    );
                }
            }
        }
        // The sealer: a checkpoint is signed at least every heartbeat.
        let limit = seen.heartbeat * 2 + Duration::from_secs(10);
        let stalled_for = match seen.checkpoint_age {
            Some(age) => (age > limit).then_some(age),
            None => {
                let running = now.saturating_duration_since(self.started);
                (running > limit).then_some(running)
            }
        };
        if let Some(age) = stalled_for {
            on.insert(
                ("sealer_stalled", "journal".into()),
                Event::new(
                    "sealer_stalled",
                    "critical",
                    &format!(
                        "no checkpoint has been signed for {}s (at least every {}s expected): acknowledged events are not being sealed",
                        age.as_secs(),
                        seen.heartbeat.as_secs()
                    ),
                )
                .with("stalled_secs", json!(age.as_secs())),
            );
        }
        // Consumers: stalled when records arrived after their last progress and they have not
        // moved for `stall_after`.
        let total: u64 = seen.groups.values().sum();
        for (name, counter) in &seen.consumers {
            let entry = self
                .consumers
                .entry(name)
                .or_insert((*counter, self.started, total));
            if *counter != entry.0 {
                *entry = (*counter, now, total);
            }
            let idle = now.saturating_duration_since(entry.1);
            if total > entry.2 && idle > self.settings.stall_after {
                on.insert(
                    ("consumer_stalled", (*name).to_string()),
                    Event::new(
                        "consumer_stalled",
                        "high",
                        &format!(
                            "the {name} has not progressed for {}s while {} new records wait",
                            idle.as_secs(),
                            total - entry.2
                        ),
                    )
                    .with("consumer", json!(name))
                    .with("stalled_secs", json!(idle.as_secs())),
                );
            }
        }
        // The disk.
        if let Some((free, total_bytes)) = seen.disk
            && total_bytes > 0
        {
            let percent = free as f64 * 100.0 / total_bytes as f64;
            if percent < self.settings.disk_min_free_percent {
                on.insert(
                    ("disk_nearly_full", "data directory".into()),
                    Event::new(
                        "disk_nearly_full",
                        "high",
                        &format!(
                            "the data directory's file system has {percent:.1}% free ({free} of {total_bytes} bytes; alarm below {}%)",
                            self.settings.disk_min_free_percent
                        ),
                    )
                    .with("free_bytes", json!(free))
                    .with("free_percent", json!((percent * 10.0).round() / 10.0)),
                );
            }
        }
        let mut events = Vec::new();
        let now_text = Timestamp::now().to_rfc3339();
        for (key, event) in &on {
            if !self.active.contains_key(key) {
                self.active.insert(
                    key.clone(),
                    Alarm {
                        kind: key.0,
                        subject: key.1.clone(),
                        since: now_text.clone(),
                    },
                );
                events.push(
                    event
                        .clone()
                        .with("state", json!("raised"))
                        .with("subject", json!(key.1)),
                );
            }
        }
        let cleared: Vec<(&'static str, String)> = self
            .active
            .keys()
            .filter(|key| !on.contains_key(key))
            .cloned()
            .collect();
        for key in cleared {
            self.active.remove(&key);
            events.push(
                Event::new(key.0, "info", &format!("{} {} cleared", key.0, key.1))
                    .with("subject", json!(key.1))
                    .with("state", json!("cleared")),
            );
        }
        events
    }
}

/// Free and total bytes of the file system holding `path`.
fn disk_space(path: &std::path::Path) -> Option<(u64, u64)> {
    let stat = rustix::fs::statvfs(path).ok()?;
    Some((
        stat.f_bavail.saturating_mul(stat.f_frsize),
        stat.f_blocks.saturating_mul(stat.f_frsize),
    ))
}

/// The alarms on now, shared with the status endpoint and the metrics.
pub type ActiveAlarms = Arc<Mutex<Vec<Alarm>>>;

/// Runs the watchdog until the task is aborted.
pub(crate) fn start(
    state: &AppState,
    settings: WatchdogSettings,
    data_root: std::path::PathBuf,
) -> (tokio::task::JoinHandle<()>, ActiveAlarms) {
    let active: ActiveAlarms = Arc::default();
    let shared = Arc::clone(&active);
    let state = state.clone();
    let task = tokio::spawn(async move {
        let interval = settings.interval;
        let mut watchdog = Watchdog::new(settings, Instant::now());
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut unsent: Vec<Vec<u8>> = Vec::new();
        loop {
            ticker.tick().await;
            let stats = state.commit.stats.snapshot();
            let checkpoint_age = stats.last_checkpoint_time.as_deref().and_then(|time| {
                let signed = Timestamp::parse_rfc3339(time).ok()?;
                let age = Timestamp::now().unix_nanos() - signed.unix_nanos();
                Some(Duration::from_nanos(u64::try_from(age).unwrap_or(0)))
            });
            let mut consumers = Vec::new();
            if let Some(index) = &state.index_stats {
                consumers.push(("indexer", index.indexed.load(Ordering::Relaxed)));
            }
            if let Some(detection) = &state.detection_stats {
                consumers.push(("detector", detection.events.load(Ordering::Relaxed)));
            }
            let groups = state
                .journal
                .as_ref()
                .map(|(heads, _)| heads.snapshot())
                .unwrap_or_default()
                .into_iter()
                .filter(|(group, _)| !group.is_internal())
                .collect();
            let root = data_root.clone();
            let disk = tokio::task::spawn_blocking(move || disk_space(&root))
                .await
                .ok()
                .flatten();
            let seen = Observation {
                groups,
                checkpoint_age,
                heartbeat: state.commit.settings.heartbeat,
                consumers,
                disk,
            };
            for event in watchdog.look(&seen, Instant::now()) {
                tracing::warn!(alarm = %event.summary(), "logging-failure alarm");
                unsent.push(event.record());
            }
            if let Ok(mut slot) = shared.lock() {
                *slot = watchdog.active();
            }
            if !unsent.is_empty() {
                let batch = GroupBatch {
                    group: health::health_group(),
                    records: unsent.clone(),
                };
                // A stalled journal cannot take its own alarm: it is kept and sent again.
                match state
                    .commit
                    .submit(vec![batch], Duration::from_secs(5))
                    .await
                {
                    Ok(_) => unsent.clear(),
                    Err(error) => {
                        tracing::error!(error = %error, pending = unsent.len(), "the journal does not take health events; they are kept and retried");
                    }
                }
            }
        }
    });
    (task, active)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(name: &str) -> GroupName {
        GroupName::parse(name).unwrap()
    }

    fn kinds(events: &[Event]) -> Vec<String> {
        events.iter().map(Event::summary).collect()
    }

    #[test]
    fn a_silent_source_is_raised_once_and_cleared_when_it_sends_again() {
        let start = Instant::now();
        let mut watchdog = Watchdog::new(
            WatchdogSettings {
                expect: vec![
                    ("aws/*".into(), Duration::from_secs(60)),
                    ("app/never".into(), Duration::from_secs(60)),
                ],
                ..WatchdogSettings::default()
            },
            start,
        );
        let mut seen = Observation {
            heartbeat: Duration::from_secs(30),
            checkpoint_age: Some(Duration::from_secs(1)),
            ..Observation::default()
        };
        seen.groups.insert(group("aws/cloudtrail"), 10);
        assert!(
            watchdog
                .look(&seen, start + Duration::from_secs(30))
                .is_empty()
        );
        let raised = watchdog.look(&seen, start + Duration::from_secs(61));
        assert_eq!(
            kinds(&raised),
            [
                "source_silent raised: app/never",
                "source_silent raised: aws/cloudtrail"
            ]
        );
        assert!(
            watchdog
                .look(&seen, start + Duration::from_secs(90))
                .is_empty(),
            "raised once"
        );
        seen.groups.insert(group("aws/cloudtrail"), 11);
        let cleared = watchdog.look(&seen, start + Duration::from_secs(100));
        assert_eq!(kinds(&cleared), ["source_silent cleared: aws/cloudtrail"]);
        assert_eq!(watchdog.active().len(), 1);
    }

    #[test]
    fn sealer_consumer_and_disk_alarms() {
        let start = Instant::now();
        let mut watchdog = Watchdog::new(
            WatchdogSettings {
                stall_after: Duration::from_secs(60),
                disk_min_free_percent: 10.0,
                ..WatchdogSettings::default()
            },
            start,
        );
        let mut seen = Observation {
            heartbeat: Duration::from_secs(30),
            checkpoint_age: Some(Duration::from_secs(5)),
            consumers: vec![("indexer", 100)],
            disk: Some((50, 100)),
            ..Observation::default()
        };
        seen.groups.insert(group("app/x"), 100);
        assert!(
            watchdog
                .look(&seen, start + Duration::from_secs(10))
                .is_empty()
        );
        // Records arrive, the indexer does not move; the sealer stops; the disk fills.
        seen.groups.insert(group("app/x"), 150);
        seen.checkpoint_age = Some(Duration::from_secs(71));
        seen.disk = Some((5, 100));
        let raised = watchdog.look(&seen, start + Duration::from_secs(80));
        assert_eq!(
            kinds(&raised),
            [
                "consumer_stalled raised: indexer",
                "disk_nearly_full raised: data directory",
                "sealer_stalled raised: journal"
            ]
        );
        // The indexer moves again and the sealer signs: both clear.
        seen.consumers = vec![("indexer", 150)];
        seen.checkpoint_age = Some(Duration::from_secs(1));
        let cleared = watchdog.look(&seen, start + Duration::from_secs(90));
        assert_eq!(
            kinds(&cleared),
            [
                "consumer_stalled cleared: indexer",
                "sealer_stalled cleared: journal"
            ]
        );
        // An idle consumer with nothing waiting is not stalled.
        assert!(
            watchdog
                .look(&seen, start + Duration::from_secs(900))
                .is_empty()
        );
    }
}
