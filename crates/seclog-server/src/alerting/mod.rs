//! Delivery of findings: a durable outbox fed from `seclog/alerts`, routed by severity, sent
//! with retry and backoff, de-duplicated and throttled per destination.
//!
//! - The outbox thread follows `seclog/alerts` and, for each finding and each destination whose
//!   threshold it meets, adds a pending delivery keyed by the finding's id, in the same redb
//!   transaction that moves its cursor: a crash neither loses nor doubles a delivery.
//! - One task per destination sends what is due, oldest first. A delivery is marked delivered
//!   only after the receiver accepted it (HTTP 2xx, SMTP accepted, CEF written and flushed); a
//!   failure is retried after 1 s, 2 s, 4 s … up to 5 minutes, until `give_up_secs`.
//! - Receivers de-duplicate on the finding id (`X-Seclog-Finding-Id`, CEF `externalId`, the
//!   e-mail body): a crash between a receiver's acceptance and the mark repeats one delivery.

pub mod config;
mod send;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use seclog_detect::Level;
use seclog_journal::{DurableHeads, JournalReader};
use seclog_meta::{MetaStore, OutboxItem};
use seclog_model::{GroupName, Timestamp};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

pub use config::{AlertingConfig, DestinationConfig, DestinationKind};

use crate::detect::ALERTS_GROUP;

/// The consumer name of the outbox's cursor in `seclog/alerts`.
const CONSUMER: &str = "outbox";
/// Longest wait between two attempts.
const MAX_BACKOFF_MS: i64 = 300_000;

/// The state of one finding at one destination (what `seclog alerts list` shows).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Delivery {
    /// The destination.
    pub destination: String,
    /// The finding's id.
    pub finding_id: String,
    /// Where the finding is stored in `seclog/alerts`.
    pub alerts_seq: u64,
    /// The finding's title.
    pub title: String,
    /// Its OCSF severity.
    pub severity: String,
    /// The finding's time (RFC 3339).
    pub time: String,
    /// Same rule, same group-by values: what `suppress_secs` throttles on.
    pub dedup_key: String,
    /// `pending`, `delivered`, `suppressed` or `failed`.
    pub state: String,
    /// Attempts made.
    pub attempts: u32,
    /// The last failure (safe to show: no URLs or secrets).
    pub last_error: Option<String>,
    /// When it was queued (Unix ms).
    pub queued_ms: i64,
    /// When it was delivered (Unix ms).
    pub delivered_ms: Option<i64>,
}

/// Delivery state of every finding, newest first.
pub fn deliveries(meta: &MetaStore) -> Result<Vec<Delivery>, String> {
    let mut all: Vec<Delivery> = meta
        .outbox_all()
        .map_err(|error| error.to_string())?
        .iter()
        .filter_map(|bytes| serde_json::from_slice(bytes).ok())
        .collect();
    all.sort_by(|a, b| {
        b.alerts_seq
            .cmp(&a.alerts_seq)
            .then(a.destination.cmp(&b.destination))
    });
    Ok(all)
}

/// The running outbox thread and destination tasks.
pub struct Alerting {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl std::fmt::Debug for Alerting {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("Alerting").finish_non_exhaustive()
    }
}

fn alerts_group() -> GroupName {
    GroupName::parse(ALERTS_GROUP).expect("the alerts group name is valid")
}

fn now_ms() -> i64 {
    Timestamp::now().unix_nanos() / 1_000_000
}

impl Alerting {
    /// Starts the outbox thread and one task per destination (call within the runtime).
    pub(crate) fn start(
        config: AlertingConfig,
        meta: Arc<MetaStore>,
        reader: JournalReader,
        heads: Arc<DurableHeads>,
    ) -> Result<Alerting, String> {
        config.validate()?;
        // The first time delivery is enabled it starts at the end of seclog/alerts: findings
        // stored before are not sent (they are in `seclog/alerts` and `hunt`).
        if meta
            .consumer_state(CONSUMER)
            .map_err(|error| error.to_string())?
            .is_none()
        {
            let end = heads.size(&alerts_group());
            meta.outbox_enqueue(CONSUMER, ALERTS_GROUP, end, &[])
                .map_err(|error| error.to_string())?;
            meta.set_consumer_state(CONSUMER, b"started")
                .map_err(|error| error.to_string())?;
        }
        let stop = Arc::new(AtomicBool::new(false));
        let mut tasks = Vec::new();
        for destination in &config.destinations {
            let mut sender = send::Sender::new(destination.clone())
                .map_err(|error| format!("{}: {error}", destination.name))?;
            let (meta, reader, stop) = (Arc::clone(&meta), reader.clone(), Arc::clone(&stop));
            tasks.push(tokio::spawn(async move {
                deliver(&mut sender, &meta, &reader, &stop).await;
            }));
        }
        let thread = {
            let stop = Arc::clone(&stop);
            let destinations = config.destinations;
            std::thread::Builder::new()
                .name("seclog-outbox".into())
                .spawn(move || enqueue(&destinations, &meta, &reader, &heads, &stop))
                .map_err(|error| error.to_string())?
        };
        Ok(Alerting {
            stop,
            thread: Some(thread),
            tasks,
        })
    }

    /// Stops; pending deliveries stay in the outbox for the next start.
    pub(crate) async fn shutdown(mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for task in self.tasks.drain(..) {
            let _ = task.await;
        }
        if let Some(thread) = self.thread.take() {
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
    }
}

/// The de-duplication key: the rule and the correlation's group-by values.
fn dedup_key(finding: &Value) -> String {
    let mut hash = Sha256::new();
    let analytic = &finding["finding_info"]["analytic"];
    hash.update(
        analytic["uid"]
            .as_str()
            .or(analytic["name"].as_str())
            .unwrap_or(""),
    );
    if let Some(group_by) = finding["unmapped"]["sigma"]["group_by"].as_object() {
        for (key, value) in group_by {
            hash.update([0]);
            hash.update(key);
            hash.update([1]);
            hash.update(value.as_str().unwrap_or(""));
        }
    }
    hex::encode(hash.finalize().get(..12).unwrap_or_default())
}

/// Follows `seclog/alerts`: every finding becomes pending deliveries.
fn enqueue(
    destinations: &[DestinationConfig],
    meta: &MetaStore,
    reader: &JournalReader,
    heads: &DurableHeads,
    stop: &AtomicBool,
) {
    let group = alerts_group();
    while !stop.load(Ordering::SeqCst) {
        let position = match meta.cursor(CONSUMER, ALERTS_GROUP) {
            Ok(position) => position,
            Err(error) => {
                tracing::error!(error = %error, "reading the outbox cursor failed");
                std::thread::sleep(Duration::from_secs(1));
                continue;
            }
        };
        let durable = heads.wait_beyond(&group, position, Duration::from_millis(250));
        if durable <= position {
            continue;
        }
        let stored = match reader.read(&group, position, 1_000, Some(durable)) {
            Ok(stored) => stored,
            Err(error) => {
                tracing::error!(error = %error, "reading seclog/alerts failed");
                std::thread::sleep(Duration::from_secs(1));
                continue;
            }
        };
        let Some(last) = stored.last() else { continue };
        let next = last.seq + 1;
        let queued_ms = now_ms();
        let mut items = Vec::new();
        for event in &stored {
            let Ok(finding) = serde_json::from_slice::<Value>(&event.record.raw) else {
                continue;
            };
            let Some(finding_id) = finding["metadata"]["uid"].as_str() else {
                continue;
            };
            let level = match finding["severity_id"].as_u64() {
                Some(5) => Level::Critical,
                Some(4) => Level::High,
                Some(3) => Level::Medium,
                Some(2) => Level::Low,
                _ => Level::Informational,
            };
            for destination in destinations {
                if level < destination.threshold() {
                    continue;
                }
                let delivery = Delivery {
                    destination: destination.name.clone(),
                    finding_id: finding_id.to_string(),
                    alerts_seq: event.seq,
                    title: finding["finding_info"]["title"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                    severity: finding["severity"].as_str().unwrap_or_default().to_string(),
                    time: event.record.time.to_rfc3339(),
                    dedup_key: dedup_key(&finding),
                    state: "pending".into(),
                    attempts: 0,
                    last_error: None,
                    queued_ms,
                    delivered_ms: None,
                };
                items.push(OutboxItem {
                    queue: destination.name.clone(),
                    id: finding_id.to_string(),
                    value: serde_json::to_vec(&delivery).unwrap_or_default(),
                    due_ms: Some(queued_ms),
                });
            }
        }
        if let Err(error) = meta.outbox_enqueue(CONSUMER, ALERTS_GROUP, next, &items) {
            tracing::error!(error = %error, "queueing deliveries failed");
            std::thread::sleep(Duration::from_secs(1));
        }
    }
}

/// The findings the due deliveries name, by sequence number, when they lie close together.
fn read_findings(
    reader: &JournalReader,
    alerts: &GroupName,
    due: &[OutboxItem],
) -> HashMap<u64, Value> {
    let seqs: Vec<u64> = due
        .iter()
        .filter_map(|item| serde_json::from_slice::<Delivery>(&item.value).ok())
        .map(|delivery| delivery.alerts_seq)
        .collect();
    let (Some(&first), Some(&last)) = (seqs.iter().min(), seqs.iter().max()) else {
        return HashMap::new();
    };
    let span = usize::try_from(last - first + 1).unwrap_or(usize::MAX);
    if span > 10_000 {
        return HashMap::new();
    }
    let wanted: std::collections::HashSet<u64> = seqs.into_iter().collect();
    reader
        .read(alerts, first, span, None)
        .unwrap_or_default()
        .into_iter()
        .filter(|event| wanted.contains(&event.seq))
        .filter_map(|event| {
            serde_json::from_slice::<Value>(&event.record.raw)
                .ok()
                .map(|finding| (event.seq, finding))
        })
        .collect()
}

/// Sends what is due at one destination until stopped.
async fn deliver(
    sender: &mut send::Sender,
    meta: &MetaStore,
    reader: &JournalReader,
    stop: &AtomicBool,
) {
    let name = sender.config.name.clone();
    let mut sent_at: HashMap<String, i64> = HashMap::new();
    let mut recent: std::collections::VecDeque<i64> = std::collections::VecDeque::new();
    let alerts = alerts_group();
    // Consecutive failures of this destination: while it fails, nothing is tried before the
    // backoff has passed (1 s, 2 s, 4 s … 5 min), then the oldest delivery first.
    let mut failures: u32 = 0;
    let mut paused_until: i64 = 0;
    while !stop.load(Ordering::SeqCst) {
        if now_ms() < paused_until {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        }
        let due = match meta.outbox_due(&name, now_ms(), 64) {
            Ok(due) => due,
            Err(error) => {
                tracing::error!(destination = %name, error = %error, "reading the outbox failed");
                Vec::new()
            }
        };
        if due.is_empty() {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        }
        // The due findings, read from seclog/alerts in one pass (a read opens the segment).
        let mut findings = read_findings(reader, &alerts, &due);
        for item in due {
            if stop.load(Ordering::SeqCst) {
                break;
            }
            let Ok(mut delivery) = serde_json::from_slice::<Delivery>(&item.value) else {
                continue;
            };
            let previous_due = item.due_ms;
            let now = now_ms();
            // Throttling: at most max_per_minute sends in any minute; the rest wait.
            let limit = sender.config.max_per_minute as usize;
            while recent.front().is_some_and(|&at| at <= now - 60_000) {
                recent.pop_front();
            }
            let mut next_due = None;
            if limit > 0 && recent.len() >= limit {
                paused_until = recent.front().copied().unwrap_or(now) + 60_000;
                break;
            } else if sender.config.suppress_secs > 0
                && sent_at.get(&delivery.dedup_key).is_some_and(|&at| {
                    now - at < i64::try_from(sender.config.suppress_secs).unwrap_or(i64::MAX) * 1000
                })
            {
                delivery.state = "suppressed".into();
            } else {
                let finding = findings.remove(&delivery.alerts_seq).or_else(|| {
                    reader
                        .read(&alerts, delivery.alerts_seq, 1, None)
                        .ok()
                        .and_then(|mut events| events.pop())
                        .and_then(|event| serde_json::from_slice::<Value>(&event.record.raw).ok())
                });
                let result = match &finding {
                    Some(finding) => {
                        sender
                            .send(&send::Outgoing {
                                finding,
                                finding_id: &delivery.finding_id,
                                dedup_key: &delivery.dedup_key,
                            })
                            .await
                    }
                    None => Err("the finding cannot be read from seclog/alerts".into()),
                };
                delivery.attempts += 1;
                match result {
                    Ok(()) => {
                        failures = 0;
                        delivery.state = "delivered".into();
                        delivery.delivered_ms = Some(now_ms());
                        delivery.last_error = None;
                        sent_at.insert(delivery.dedup_key.clone(), now);
                        recent.push_back(now);
                    }
                    Err(error) => {
                        tracing::warn!(destination = %name, finding = %delivery.finding_id, error = %error, "delivery failed; will retry");
                        delivery.last_error = Some(error);
                        let given_up = now - delivery.queued_ms
                            > i64::try_from(sender.config.give_up().as_millis())
                                .unwrap_or(i64::MAX);
                        if given_up {
                            delivery.state = "failed".into();
                            tracing::error!(destination = %name, finding = %delivery.finding_id, "delivery given up");
                        } else {
                            failures = failures.saturating_add(1);
                            let exponent = failures.saturating_sub(1).min(20);
                            let backoff = (1_000i64 << exponent).min(MAX_BACKOFF_MS);
                            paused_until = now + backoff;
                            // Keeps its place: the oldest is retried first.
                            next_due = previous_due;
                        }
                    }
                }
            }
            let updated = OutboxItem {
                value: serde_json::to_vec(&delivery).unwrap_or_default(),
                due_ms: next_due,
                ..item
            };
            if let Err(error) = meta.outbox_update(&updated, previous_due) {
                tracing::error!(destination = %name, error = %error, "updating the outbox failed");
            }
            if now_ms() < paused_until {
                break;
            }
        }
    }
}
