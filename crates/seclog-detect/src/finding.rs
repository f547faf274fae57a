//! A match as an OCSF 1.3 Detection Finding (class 2004), the event stored in `seclog/alerts`.

use serde::Serialize;
use serde::ser::SerializeMap;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::{Match, MatchKind};

/// OCSF class of findings.
pub const DETECTION_FINDING: u32 = 2004;

/// Where a piece of evidence is: a group and a sequence number in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvidenceRef {
    /// The group.
    pub group: String,
    /// The event's sequence number.
    pub seq: u64,
}

impl EvidenceRef {
    /// The `group:seq` form matches carry.
    pub fn id(&self) -> String {
        format!("{}:{}", self.group, self.seq)
    }

    /// Parses the `group:seq` form (groups may contain `:`; the number is after the last).
    pub fn parse(id: &str) -> Option<EvidenceRef> {
        let (group, seq) = split_evidence(id)?;
        Some(EvidenceRef {
            group: group.to_string(),
            seq,
        })
    }
}

/// The group and sequence number of a `group:seq` evidence id, borrowed.
fn split_evidence(id: &str) -> Option<(&str, u64)> {
    let (group, seq) = id.rsplit_once(':')?;
    Some((group, seq.parse().ok()?))
}

/// The finding's stable identifier: the same rule on the same evidence gives the same id, so a
/// re-run after a crash recognises findings it already stored, and delivery de-duplicates on it.
pub fn finding_id(matched: &Match) -> String {
    let mut hash = Sha256::new();
    hash.update(matched.rule.id.as_deref().unwrap_or(&matched.rule.title));
    hash.update([0]);
    hash.update(kind_name(&matched.kind));
    for evidence in &matched.evidence {
        hash.update([0]);
        hash.update(evidence);
    }
    for (key, value) in &matched.group_key {
        hash.update([1]);
        hash.update(key);
        hash.update([2]);
        hash.update(value);
    }
    let digest = hash.finalize();
    hex::encode(digest.get(..16).unwrap_or_default())
}

fn kind_name(kind: &MatchKind) -> &str {
    match kind {
        MatchKind::Detection => "detection",
        MatchKind::Correlation(kind) => kind,
        MatchKind::Anomaly => "anomaly",
    }
}

/// MITRE ATT&CK technique ids from Sigma tags (`attack.t1078.004` → `T1078.004`).
fn attacks(tags: &[String]) -> Vec<Attack> {
    tags.iter()
        .filter_map(|tag| tag.strip_prefix("attack.t"))
        .filter(|rest| rest.chars().next().is_some_and(|c| c.is_ascii_digit()))
        .map(|rest| Attack {
            technique: Uid {
                uid: format!("T{}", rest.to_ascii_uppercase()),
            },
        })
        .collect()
}

/// An OCSF 1.3 Detection Finding (class 2004) for a match, serialized straight from the match
/// (findings are written for every matching event, so no JSON tree is built for them).
#[derive(Debug, Serialize)]
pub struct DetectionFinding<'a> {
    class_uid: u32,
    class_name: &'static str,
    category_uid: u32,
    category_name: &'static str,
    activity_id: u32,
    activity_name: &'static str,
    type_uid: u32,
    type_name: &'static str,
    time: i64,
    severity_id: u8,
    severity: &'static str,
    status_id: u8,
    status: &'static str,
    message: &'a str,
    count: usize,
    metadata: Metadata,
    finding_info: FindingInfo<'a>,
    evidences: [Evidences<'a>; 1],
    unmapped: Unmapped<'a>,
}

impl DetectionFinding<'_> {
    /// Its stable id ([`finding_id`]).
    pub fn uid(&self) -> &str {
        &self.metadata.uid
    }

    /// The finding as JSON text. Written with sonic-rs (its string escaping is vectorised; a
    /// finding is mostly strings and one is written for every matching event); the same JSON
    /// serde_json writes.
    pub fn to_json(&self) -> Result<Vec<u8>, String> {
        sonic_rs::to_vec(self).map_err(|error| error.to_string())
    }
}

#[derive(Debug, Serialize)]
struct Metadata {
    version: &'static str,
    uid: String,
    product: Product,
}

#[derive(Debug, Serialize)]
struct Product {
    name: &'static str,
    vendor_name: &'static str,
}

#[derive(Debug, Serialize)]
struct FindingInfo<'a> {
    uid: String,
    title: &'a str,
    analytic: Analytic<'a>,
    types: [&'a str; 1],
    first_seen_time: i64,
    last_seen_time: i64,
    related_events: Vec<Uid<&'a str>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    attacks: Vec<Attack>,
}

#[derive(Debug, Serialize)]
struct Analytic<'a> {
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    uid: Option<&'a str>,
    type_id: u8,
    #[serde(rename = "type")]
    type_name: &'static str,
    category: &'a str,
}

#[derive(Debug, Serialize)]
struct Uid<T> {
    uid: T,
}

#[derive(Debug, Serialize)]
struct Attack {
    technique: Uid<String>,
}

#[derive(Debug, Serialize)]
struct Evidences<'a> {
    data: EvidenceData<'a>,
}

#[derive(Debug, Serialize)]
struct EvidenceData<'a> {
    events: Vec<EvidenceEvent<'a>>,
}

#[derive(Debug, Serialize)]
struct EvidenceEvent<'a> {
    group: &'a str,
    seq: u64,
}

#[derive(Debug, Serialize)]
struct Unmapped<'a> {
    /// The baseline and the observed value of an anomaly.
    #[serde(skip_serializing_if = "Option::is_none")]
    anomaly: Option<Pairs<'a, Value>>,
    sigma: SigmaFacts<'a>,
}

#[derive(Debug, Serialize)]
struct SigmaFacts<'a> {
    level: &'static str,
    tags: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    matched_fields: Option<Pairs<'a, Value>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    group_by: Option<Pairs<'a, String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    value: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    timespan_secs: Option<u64>,
}

/// Name-value pairs written as a JSON object; a name given twice keeps its first place and its
/// last value.
#[derive(Debug)]
struct Pairs<'a, V>(&'a [(String, V)]);

impl<V: Serialize> Serialize for Pairs<'_, V> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let pairs = self.0;
        let mut map = serializer.serialize_map(None)?;
        for (index, (name, _)) in pairs.iter().enumerate() {
            if pairs[..index].iter().any(|(earlier, _)| earlier == name) {
                continue;
            }
            let last = pairs
                .iter()
                .rev()
                .find(|(other, _)| other == name)
                .map_or(&pairs[index].1, |(_, value)| value);
            map.serialize_entry(name, last)?;
        }
        map.end()
    }
}

/// The OCSF Detection Finding for a match; `time_ms` is the time of the (last) evidence event,
/// `first_ms` of the first.
pub fn detection_finding(matched: &Match, first_ms: i64, time_ms: i64) -> DetectionFinding<'_> {
    let id = finding_id(matched);
    let events = matched
        .evidence
        .iter()
        .filter_map(|id| split_evidence(id))
        .map(|(group, seq)| EvidenceEvent { group, seq })
        .collect();
    let related_events = matched
        .evidence
        .iter()
        .map(|id| Uid { uid: id.as_str() })
        .collect();
    let (type_id, type_name) = match matched.kind {
        MatchKind::Detection | MatchKind::Correlation(_) => (1, "Rule"),
        MatchKind::Anomaly => (2, "Behavioral"),
    };
    let fields = (!matched.fields.is_empty()).then_some(Pairs(&matched.fields));
    let (anomaly, matched_fields) = if matched.kind == MatchKind::Anomaly {
        (fields, None)
    } else {
        (None, fields)
    };
    DetectionFinding {
        class_uid: DETECTION_FINDING,
        class_name: "Detection Finding",
        category_uid: 2,
        category_name: "Findings",
        activity_id: 1,
        activity_name: "Create",
        type_uid: DETECTION_FINDING * 100 + 1,
        type_name: "Detection Finding: Create",
        time: time_ms,
        severity_id: matched.rule.level.ocsf_severity_id(),
        severity: matched.rule.level.ocsf_severity(),
        status_id: 1,
        status: "New",
        message: &matched.rule.title,
        count: matched.evidence.len().max(1),
        metadata: Metadata {
            version: "1.3.0",
            uid: id.clone(),
            product: Product {
                name: "seclog",
                vendor_name: "seclog",
            },
        },
        finding_info: FindingInfo {
            uid: id,
            title: &matched.rule.title,
            analytic: Analytic {
                name: &matched.rule.title,
                uid: matched.rule.id.as_deref(),
                type_id,
                type_name,
                category: &matched.rule.source,
            },
            types: [kind_name(&matched.kind)],
            first_seen_time: first_ms,
            last_seen_time: time_ms,
            related_events,
            attacks: attacks(&matched.rule.tags),
        },
        evidences: [Evidences {
            data: EvidenceData { events },
        }],
        unmapped: Unmapped {
            anomaly,
            sigma: SigmaFacts {
                level: matched.rule.level.as_str(),
                tags: &matched.rule.tags,
                matched_fields,
                group_by: (!matched.group_key.is_empty()).then_some(Pairs(&matched.group_key)),
                value: matched.value,
                timespan_secs: matched.timespan_secs,
            },
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Level, RuleRef};

    fn sample(evidence: &[&str]) -> Match {
        Match {
            rule: RuleRef {
                id: Some("r1".into()),
                title: "Root account use".into(),
                level: Level::High,
                tags: vec![
                    "attack.t1078.004".into(),
                    "attack.privilege-escalation".into(),
                ],
                source: "cloudtrail".into(),
            },
            kind: MatchKind::Detection,
            evidence: evidence.iter().map(|e| e.to_string()).collect(),
            fields: vec![],
            group_key: vec![],
            value: None,
            timespan_secs: None,
        }
    }

    #[test]
    fn finding_names_rule_severity_and_evidence() {
        let finding = serde_json::to_value(detection_finding(
            &sample(&["aws/cloudtrail:7"]),
            1000,
            1000,
        ))
        .unwrap();
        assert_eq!(finding["class_uid"], 2004);
        assert_eq!(finding["severity_id"], 4);
        assert_eq!(finding["finding_info"]["analytic"]["uid"], "r1");
        assert_eq!(
            finding["finding_info"]["attacks"][0]["technique"]["uid"],
            "T1078.004"
        );
        assert_eq!(
            finding["evidences"][0]["data"]["events"][0]["group"],
            "aws/cloudtrail"
        );
        assert_eq!(finding["evidences"][0]["data"]["events"][0]["seq"], 7);
    }

    #[test]
    fn a_correlation_finding_in_full() {
        let mut matched = sample(&["aws/cloudtrail:7", "aws/cloudtrail:9"]);
        matched.kind = MatchKind::Correlation("event_count".into());
        matched.group_key = vec![("user".into(), "alice".into())];
        matched.value = Some(2.0);
        matched.timespan_secs = Some(300);
        matched.fields = vec![
            ("a".into(), Value::from(1)),
            ("b".into(), Value::from("x")),
            ("a".into(), Value::from(2)),
        ];
        let id = finding_id(&matched);
        let finding = serde_json::to_value(detection_finding(&matched, 500, 1000)).unwrap();
        let written = detection_finding(&matched, 500, 1000).to_json().unwrap();
        assert_eq!(
            serde_json::from_slice::<Value>(&written).unwrap(),
            finding,
            "the stored text says the same"
        );
        let expected = serde_json::json!({
            "class_uid": 2004, "class_name": "Detection Finding",
            "category_uid": 2, "category_name": "Findings",
            "activity_id": 1, "activity_name": "Create",
            "type_uid": 200401, "type_name": "Detection Finding: Create",
            "time": 1000, "severity_id": 4, "severity": "High", "status_id": 1, "status": "New",
            "message": "Root account use", "count": 2,
            "metadata": {"version": "1.3.0", "uid": id, "product": {"name": "seclog", "vendor_name": "seclog"}},
            "finding_info": {
                "uid": id, "title": "Root account use",
                "analytic": {"name": "Root account use", "uid": "r1", "type_id": 1, "type": "Rule", "category": "cloudtrail"},
                "types": ["event_count"], "first_seen_time": 500, "last_seen_time": 1000,
                "related_events": [{"uid": "aws/cloudtrail:7"}, {"uid": "aws/cloudtrail:9"}],
                "attacks": [{"technique": {"uid": "T1078.004"}}],
            },
            "evidences": [{"data": {"events": [{"group": "aws/cloudtrail", "seq": 7}, {"group": "aws/cloudtrail", "seq": 9}]}}],
            "unmapped": {"sigma": {
                "level": "high", "tags": ["attack.t1078.004", "attack.privilege-escalation"],
                "matched_fields": {"a": 2, "b": "x"}, "group_by": {"user": "alice"},
                "value": 2.0, "timespan_secs": 300,
            }},
        });
        assert_eq!(finding, expected);
        // The written keys keep their order (first place of a repeated name, its last value).
        let text = serde_json::to_string(&detection_finding(&matched, 500, 1000)).unwrap();
        assert!(text.starts_with(r#"{"class_uid":2004,"class_name":"Detection Finding""#));
        assert!(
            text.contains(r#""matched_fields":{"a":2,"b":"x"}"#),
            "{text}"
        );
        let mut anomaly = sample(&["g:1"]);
        anomaly.kind = MatchKind::Anomaly;
        anomaly.fields = vec![
            ("observed".into(), Value::from(40)),
            ("baseline_mean".into(), Value::from(0.1 + 0.2)),
            ("text".into(), Value::from("tab\t quote\" é \u{1} \u{2028}")),
        ];
        let finding = serde_json::to_value(detection_finding(&anomaly, 0, 0)).unwrap();
        let written = detection_finding(&anomaly, 0, 0).to_json().unwrap();
        assert_eq!(serde_json::from_slice::<Value>(&written).unwrap(), finding);
        assert_eq!(finding["unmapped"]["anomaly"]["observed"], 40);
        assert_eq!(
            finding["unmapped"]["anomaly"]["baseline_mean"],
            0.30000000000000004
        );
        assert!(finding["unmapped"]["sigma"].get("matched_fields").is_none());
        assert_eq!(finding["finding_info"]["analytic"]["type"], "Behavioral");
    }

    #[test]
    fn finding_ids_depend_on_rule_and_evidence_only() {
        let a = finding_id(&sample(&["g:1"]));
        assert_eq!(a, finding_id(&sample(&["g:1"])));
        assert_ne!(a, finding_id(&sample(&["g:2"])));
        assert_eq!(EvidenceRef::parse("a:b:12").unwrap().group, "a:b");
    }
}
