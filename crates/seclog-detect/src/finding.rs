//! A match as an OCSF 1.3 Detection Finding (class 2004), the event stored in `seclog/alerts`.

use serde_json::{Map, Value, json};
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
        let (group, seq) = id.rsplit_once(':')?;
        Some(EvidenceRef {
            group: group.to_string(),
            seq: seq.parse().ok()?,
        })
    }
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
fn attacks(tags: &[String]) -> Vec<Value> {
    tags.iter()
        .filter_map(|tag| tag.strip_prefix("attack.t"))
        .filter(|rest| rest.chars().next().is_some_and(|c| c.is_ascii_digit()))
        .map(|rest| json!({ "technique": { "uid": format!("T{}", rest.to_ascii_uppercase()) } }))
        .collect()
}

/// The OCSF Detection Finding for a match; `time_ms` is the time of the (last) evidence event,
/// `first_ms` of the first.
pub fn detection_finding(matched: &Match, first_ms: i64, time_ms: i64) -> Value {
    let id = finding_id(matched);
    let evidence: Vec<Value> = matched
        .evidence
        .iter()
        .filter_map(|id| EvidenceRef::parse(id))
        .map(|at| json!({ "group": at.group, "seq": at.seq }))
        .collect();
    let related: Vec<Value> = matched
        .evidence
        .iter()
        .map(|id| json!({ "uid": id }))
        .collect();
    let mut analytic = Map::new();
    analytic.insert("name".into(), matched.rule.title.clone().into());
    if let Some(rule_id) = &matched.rule.id {
        analytic.insert("uid".into(), rule_id.clone().into());
    }
    let (type_id, type_name) = match matched.kind {
        MatchKind::Detection => (1, "Rule"),
        MatchKind::Correlation(_) => (1, "Rule"),
        MatchKind::Anomaly => (2, "Behavioral"),
    };
    analytic.insert("type_id".into(), type_id.into());
    analytic.insert("type".into(), type_name.into());
    analytic.insert("category".into(), matched.rule.source.clone().into());
    let mut info = Map::new();
    info.insert("uid".into(), id.clone().into());
    info.insert("title".into(), matched.rule.title.clone().into());
    info.insert("analytic".into(), Value::Object(analytic));
    info.insert("types".into(), json!([kind_name(&matched.kind)]));
    info.insert("first_seen_time".into(), first_ms.into());
    info.insert("last_seen_time".into(), time_ms.into());
    info.insert("related_events".into(), Value::Array(related));
    let attacks = attacks(&matched.rule.tags);
    if !attacks.is_empty() {
        info.insert("attacks".into(), Value::Array(attacks));
    }
    let mut sigma = Map::new();
    sigma.insert("level".into(), matched.rule.level.as_str().into());
    sigma.insert("tags".into(), json!(matched.rule.tags));
    let mut unmapped = Map::new();
    if !matched.fields.is_empty() {
        let fields: Map<String, Value> = matched.fields.iter().cloned().collect();
        if matched.kind == MatchKind::Anomaly {
            // The baseline and the observed value.
            unmapped.insert("anomaly".into(), Value::Object(fields));
        } else {
            sigma.insert("matched_fields".into(), Value::Object(fields));
        }
    }
    if !matched.group_key.is_empty() {
        let key: Map<String, Value> = matched
            .group_key
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect();
        sigma.insert("group_by".into(), Value::Object(key));
    }
    if let Some(value) = matched.value {
        sigma.insert("value".into(), json!(value));
    }
    if let Some(span) = matched.timespan_secs {
        sigma.insert("timespan_secs".into(), span.into());
    }
    unmapped.insert("sigma".into(), Value::Object(sigma));
    json!({
        "class_uid": DETECTION_FINDING,
        "class_name": "Detection Finding",
        "category_uid": 2,
        "category_name": "Findings",
        "activity_id": 1,
        "activity_name": "Create",
        "type_uid": DETECTION_FINDING * 100 + 1,
        "type_name": "Detection Finding: Create",
        "time": time_ms,
        "severity_id": matched.rule.level.ocsf_severity_id(),
        "severity": matched.rule.level.ocsf_severity(),
        "status_id": 1,
        "status": "New",
        "message": matched.rule.title,
        "count": matched.evidence.len().max(1),
        "metadata": {
            "version": "1.3.0",
            "uid": id,
            "product": { "name": "seclog", "vendor_name": "seclog" },
        },
        "finding_info": Value::Object(info),
        "evidences": [{ "data": { "events": evidence } }],
        "unmapped": Value::Object(unmapped),
    })
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
        let finding = detection_finding(&sample(&["aws/cloudtrail:7"]), 1000, 1000);
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
    fn finding_ids_depend_on_rule_and_evidence_only() {
        let a = finding_id(&sample(&["g:1"]));
        assert_eq!(a, finding_id(&sample(&["g:1"])));
        assert_ne!(a, finding_id(&sample(&["g:2"])));
        assert_eq!(EvidenceRef::parse("a:b:12").unwrap().group, "a:b");
    }
}
