//! API-rate anomalies: a baseline learned per principal and API, findings with the baseline
//! and the observed value. Thresholds are recomputed here from the documented formula.

use seclog_detect::anomaly::{AnomalyConfig, CALL_RATE_ID, ERROR_RATE_ID, RateAnomalies};
use seclog_detect::{Match, MatchKind};
use serde_json::{Value, json};

fn call(principal: &str, name: &str, error: Option<&str>) -> Value {
    let mut event = json!({
        "eventSource": "ec2.amazonaws.com",
        "eventName": name,
        "userIdentity": {"type": "IAMUser", "arn": principal},
    });
    if let Some(code) = error {
        event["errorCode"] = json!(code);
    }
    event
}

/// The documented baseline: exponentially weighted mean and variance of per-bucket counts.
fn baseline(counts: &[f64], alpha: f64) -> (f64, f64) {
    let (mut mean, mut variance) = (0.0f64, 0.0f64);
    for &count in counts {
        let difference = count - mean;
        mean += alpha * difference;
        variance = (1.0 - alpha) * (variance + alpha * difference * difference);
    }
    (mean, variance)
}

fn run(detector: &mut RateAnomalies, events: &[(i64, Value)]) -> Vec<(usize, Match)> {
    let mut found = Vec::new();
    for (index, (time, event)) in events.iter().enumerate() {
        for matched in detector.observe(event.into(), *time, &format!("g:{index}")) {
            found.push((index, matched));
        }
    }
    found
}

#[test]
fn a_burst_of_calls_above_the_learned_baseline_is_reported_once() {
    let config = AnomalyConfig::default();
    let alice = "arn:aws:iam::1:user/alice";
    // 24 quiet buckets: 3, 5, 4, 6 calls in rotation, then a burst of 120 calls.
    let quiet = [3usize, 5, 4, 6];
    let mut events = Vec::new();
    let mut history = Vec::new();
    for bucket in 0..24i64 {
        let count = quiet[bucket as usize % 4];
        history.push(count as f64);
        for i in 0..count {
            events.push((
                bucket * 300 + i as i64,
                call(alice, "DescribeInstances", None),
            ));
        }
    }
    let burst_start = events.len();
    for i in 0..120i64 {
        events.push((24 * 300 + i, call(alice, "DescribeInstances", None)));
    }
    let (mean, variance) = baseline(&history, config.alpha);
    let threshold = (mean + config.sigmas * variance.sqrt()).max(config.min_count as f64);
    // The first call that takes the bucket's count above the threshold.
    let crossing = burst_start + threshold.floor() as usize;

    let found = run(&mut RateAnomalies::new(config), &events);
    assert_eq!(found.len(), 1, "{found:?}");
    let (index, matched) = &found[0];
    assert_eq!(*index, crossing);
    assert_eq!(matched.kind, MatchKind::Anomaly);
    assert_eq!(matched.rule.id.as_deref(), Some(CALL_RATE_ID));
    assert_eq!(
        matched.group_key,
        [
            ("principal".to_string(), alice.to_string()),
            (
                "api".to_string(),
                "ec2.amazonaws.com:DescribeInstances".to_string()
            )
        ]
    );
    let field = |name: &str| {
        matched
            .fields
            .iter()
            .find(|(key, _)| key == name)
            .and_then(|(_, value)| value.as_f64())
            .unwrap()
    };
    assert!((field("baseline_mean") - mean).abs() < 1e-9);
    assert!((field("baseline_stddev") - variance.sqrt()).abs() < 1e-9);
    assert_eq!(field("observed") as usize, crossing - burst_start + 1);
    assert_eq!(matched.evidence.last().unwrap(), &format!("g:{crossing}"));
}

#[test]
fn errors_are_a_separate_baseline_and_other_principals_are_separate_series() {
    let config = AnomalyConfig::default();
    let bob = "arn:aws:iam::1:user/bob";
    let carol = "arn:aws:iam::1:user/carol";
    let mut events = Vec::new();
    for bucket in 0..20i64 {
        for i in 0..10 {
            // Bob succeeds; one call in ten is denied.
            let error = (i == 0).then_some("AccessDenied");
            events.push((bucket * 300 + i, call(bob, "GetObject", error)));
        }
    }
    // Same number of calls, but all denied: an error-rate anomaly, not a call-rate one.
    for i in 0..10 {
        events.push((20 * 300 + i, call(bob, "GetObject", Some("AccessDenied"))));
    }
    // Carol's first calls have no baseline yet: nothing.
    for i in 0..200 {
        events.push((20 * 300 + i, call(carol, "GetObject", None)));
    }
    let found = run(&mut RateAnomalies::new(config), &events);
    // 10 errors against a baseline of ~1 is not above min_count (20): nothing yet.
    assert!(found.is_empty(), "{found:?}");
    let mut events2 = events.clone();
    for i in 0..30 {
        events2.push((
            20 * 300 + 100 + i,
            call(bob, "GetObject", Some("AccessDenied")),
        ));
    }
    let found = run(&mut RateAnomalies::new(config), &events2);
    let mut ids: Vec<&str> = found
        .iter()
        .map(|(_, matched)| matched.rule.id.as_deref().unwrap())
        .collect();
    ids.sort_unstable();
    // 40 calls in the bucket: above min_count and far above bob's call baseline of 10 too.
    assert_eq!(ids, [CALL_RATE_ID, ERROR_RATE_ID]);
    assert!(
        found
            .iter()
            .all(|(_, matched)| matched.group_key[0].1 == bob)
    );
}

#[test]
fn learning_survives_a_snapshot() {
    let config = AnomalyConfig::default();
    let dave = "arn:aws:iam::1:user/dave";
    let mut first = RateAnomalies::new(config);
    for bucket in 0..30i64 {
        first.observe(
            (&call(dave, "ListBuckets", None)).into(),
            bucket * 300,
            "g:0",
        );
    }
    let mut second = RateAnomalies::new(config);
    assert!(second.restore(&first.snapshot()));
    let mut fired = 0;
    for i in 0..50 {
        fired += second
            .observe(
                (&call(dave, "ListBuckets", None)).into(),
                30 * 300 + i,
                "g:1",
            )
            .len();
    }
    assert_eq!(fired, 1);
    // A different configuration does not take the state.
    let other = AnomalyConfig {
        bucket_secs: 60,
        ..config
    };
    assert!(!RateAnomalies::new(other).restore(&first.snapshot()));
}
