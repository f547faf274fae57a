//! API-rate anomalies in the spirit of CloudTrail Insights: per principal and API, the number
//! of calls and of failed calls in fixed buckets of event time is compared with a baseline
//! learned from the earlier buckets.
//!
//! The baseline of a series is an exponentially weighted mean and variance of its per-bucket
//! counts (`alpha`), updated when a bucket ends; buckets without calls count as zero. A series
//! fires when, after `warmup_buckets`, the count of the current bucket exceeds both
//! `min_count` and `mean + sigmas × stddev`; at most once per bucket and kind (calls, errors).

use std::collections::{HashMap, VecDeque};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{EventRef, Level, Match, MatchKind, RuleRef};

/// Id of the call-rate anomaly "rule".
pub const CALL_RATE_ID: &str = "seclog-api-call-rate-anomaly";
/// Id of the error-rate anomaly "rule".
pub const ERROR_RATE_ID: &str = "seclog-api-error-rate-anomaly";

/// How baselines are learned and when a count is anomalous.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AnomalyConfig {
    /// Bucket length in seconds.
    pub bucket_secs: i64,
    /// Weight of the newest bucket in the baseline.
    pub alpha: f64,
    /// Standard deviations above the mean that count as anomalous.
    pub sigmas: f64,
    /// A bucket needs more than this many calls (or errors) to be anomalous at all.
    pub min_count: u64,
    /// Buckets a series needs before its baseline is trusted.
    pub warmup_buckets: u32,
    /// Series (principal × API) kept at most; the least recently seen go first.
    pub max_series: usize,
}

impl Default for AnomalyConfig {
    fn default() -> Self {
        AnomalyConfig {
            bucket_secs: 300,
            alpha: 0.1,
            sigmas: 4.0,
            min_count: 20,
            warmup_buckets: 12,
            max_series: 100_000,
        }
    }
}

/// The learned state of one kind of count in one series.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Baseline {
    /// Exponentially weighted mean count per bucket.
    pub mean: f64,
    /// Exponentially weighted variance.
    pub variance: f64,
}

impl Baseline {
    /// Adds one finished bucket's count.
    pub fn update(&mut self, count: f64, alpha: f64) {
        let difference = count - self.mean;
        let increment = alpha * difference;
        self.mean += increment;
        self.variance = (1.0 - alpha) * (self.variance + difference * increment);
    }

    /// The count above which a bucket is anomalous.
    pub fn threshold(&self, config: &AnomalyConfig) -> f64 {
        (self.mean + config.sigmas * self.variance.max(0.0).sqrt()).max(config.min_count as f64)
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Series {
    bucket: i64,
    buckets_seen: u32,
    calls: u64,
    errors: u64,
    call_baseline: Baseline,
    error_baseline: Baseline,
    fired_calls: bool,
    fired_errors: bool,
    /// Evidence of the current bucket (the most recent calls).
    recent: VecDeque<String>,
    last_seen: i64,
}

/// Evidence kept per series for the current bucket.
const EVIDENCE: usize = 20;

/// The anomaly detector over CloudTrail-shaped events.
#[derive(Debug, Clone, Default)]
pub struct RateAnomalies {
    config: AnomalyConfig,
    series: HashMap<String, Series>,
    /// A buffer for the key of the series an event belongs to.
    key: String,
}

#[derive(Serialize, Deserialize)]
struct Snapshot {
    config: AnomalyConfig,
    series: Vec<(String, Series)>,
}

impl RateAnomalies {
    /// The CloudTrail fields it reads.
    pub const FIELDS: &[&str] = &[
        "eventSource",
        "eventName",
        "userIdentity.arn",
        "userIdentity.principalId",
        "userIdentity.type",
        "errorCode",
    ];

    /// A detector with `config`.
    pub fn new(config: AnomalyConfig) -> RateAnomalies {
        RateAnomalies {
            config,
            series: HashMap::default(),
            key: String::new(),
        }
    }

    /// Counts one CloudTrail event (others are ignored) and returns the anomalies it completes.
    pub fn observe(&mut self, event: EventRef<'_>, time_secs: i64, evidence: &str) -> Vec<Match> {
        let (Some(source), Some(name)) = (event.text(&["eventSource"]), event.text(&["eventName"]))
        else {
            return Vec::new();
        };
        let principal = event
            .text(&["userIdentity", "arn"])
            .or_else(|| event.text(&["userIdentity", "principalId"]))
            .or_else(|| event.text(&["userIdentity", "type"]))
            .unwrap_or("unknown");
        let failed = event.is_set("errorCode");
        let config = self.config;
        let bucket = time_secs.div_euclid(config.bucket_secs.max(1));
        // The series key, built in a reused buffer: most events belong to a known series.
        let mut wanted = std::mem::take(&mut self.key);
        wanted.clear();
        for part in [principal, "\u{0}", source, ":", name] {
            wanted.push_str(part);
        }
        if !self.series.contains_key(&wanted) {
            if self.series.len() >= config.max_series {
                self.evict();
            }
            self.series.insert(
                wanted.clone(),
                Series {
                    bucket,
                    ..Series::default()
                },
            );
        }
        let series = self.series.get_mut(&wanted).expect("inserted above");
        self.key = wanted;
        series.last_seen = time_secs;
        if bucket > series.bucket {
            // Close the bucket that ended and the empty ones after it (at most a day's worth).
            let gap = (bucket - series.bucket).min(86_400 / config.bucket_secs.max(1) + 1);
            for index in 0..gap {
                let (calls, errors) = if index == 0 {
                    (series.calls as f64, series.errors as f64)
                } else {
                    (0.0, 0.0)
                };
                series.call_baseline.update(calls, config.alpha);
                series.error_baseline.update(errors, config.alpha);
                series.buckets_seen = series.buckets_seen.saturating_add(1);
            }
            series.bucket = bucket;
            series.calls = 0;
            series.errors = 0;
            series.fired_calls = false;
            series.fired_errors = false;
            series.recent.clear();
        } else if bucket < series.bucket {
            // Late events count in the current bucket.
        }
        series.calls += 1;
        if failed {
            series.errors += 1;
        }
        // The oldest reference's string is reused for the newest.
        let mut reference = if series.recent.len() == EVIDENCE {
            series.recent.pop_front().unwrap_or_default()
        } else {
            String::new()
        };
        reference.clear();
        reference.push_str(evidence);
        series.recent.push_back(reference);
        let mut matches = Vec::new();
        if series.buckets_seen < config.warmup_buckets {
            return matches;
        }
        let checks = [
            (
                CALL_RATE_ID,
                "AWS API call rate anomaly",
                series.calls,
                series.call_baseline.clone(),
                &mut series.fired_calls,
            ),
            (
                ERROR_RATE_ID,
                "AWS API error rate anomaly",
                series.errors,
                series.error_baseline.clone(),
                &mut series.fired_errors,
            ),
        ];
        for (id, title, observed, baseline, fired) in checks {
            if *fired || (observed as f64) <= baseline.threshold(&config) {
                continue;
            }
            *fired = true;
            let recent: Vec<String> = series.recent.iter().cloned().collect();
            matches.push(Match {
                rule: RuleRef {
                    id: Some(id.to_string()),
                    title: title.to_string(),
                    level: Level::Medium,
                    tags: vec!["attack.discovery".into(), "attack.impact".into()],
                    source: "cloudtrail".into(),
                },
                kind: MatchKind::Anomaly,
                evidence: recent,
                fields: vec![
                    ("observed".into(), observed.into()),
                    ("baseline_mean".into(), baseline.mean.into()),
                    (
                        "baseline_stddev".into(),
                        baseline.variance.max(0.0).sqrt().into(),
                    ),
                    ("threshold".into(), baseline.threshold(&config).into()),
                    ("bucket_secs".into(), config.bucket_secs.into()),
                    ("bucket_start".into(), (bucket * config.bucket_secs).into()),
                ],
                group_key: vec![
                    ("principal".into(), principal.to_string()),
                    ("api".into(), format!("{source}:{name}")),
                ],
                value: Some(observed as f64),
                timespan_secs: u64::try_from(config.bucket_secs).ok(),
            });
        }
        matches
    }

    fn evict(&mut self) {
        let oldest = self
            .series
            .iter()
            .min_by_key(|(_, series)| series.last_seen)
            .map(|(key, _)| key.clone());
        if let Some(key) = oldest {
            self.series.remove(&key);
        }
    }

    /// The learned state.
    pub fn snapshot(&self) -> Value {
        serde_json::to_value(Snapshot {
            config: self.config,
            series: self
                .series
                .iter()
                .map(|(key, series)| (key.clone(), series.clone()))
                .collect(),
        })
        .unwrap_or(Value::Null)
    }

    /// Restores [`RateAnomalies::snapshot`]; `false` if it does not fit the configuration.
    pub fn restore(&mut self, snapshot: &Value) -> bool {
        match serde_json::from_value::<Snapshot>(snapshot.clone()) {
            Ok(saved) if saved.config == self.config => {
                self.series = saved.series.into_iter().collect();
                true
            }
            _ => false,
        }
    }
}
