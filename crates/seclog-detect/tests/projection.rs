//! Parsing only the fields the rules read changes nothing they find: SigmaHQ's AWS rules, the
//! built-in pack and the rate anomalies over every real CloudTrail record in
//! `../shared/data/cloudtrail` give the same matches, record by record, from projected events as
//! from whole ones.

use std::path::{Path, PathBuf};

use seclog_detect::event::{OCSF_ATTR, Shape, detection_event, projected_event};
use seclog_detect::{AnomalyConfig, Detector, EventRef, RuleLibrary, SigmaEngine, Sources};
use serde_json::{Map, Value};

fn shared(relative: &str) -> Option<PathBuf> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data")
        .join(relative);
    if path.exists() {
        Some(path)
    } else {
        eprintln!(
            "skipped: {} is absent (the shared data set)",
            path.display()
        );
        None
    }
}

fn json_files(dir: &Path, found: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("readable directory")
        .map(|entry| entry.expect("entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            json_files(&path, found);
        } else if path.extension().is_some_and(|ext| ext == "json")
            && !path.to_string_lossy().ends_with(".meta.json")
        {
            found.push(path);
        }
    }
}

/// The CloudTrail records of a file: `{"Records": [...]}`, an array, or one record per line.
fn records(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).expect("readable file");
    match serde_json::from_str::<Value>(&text) {
        Ok(Value::Object(mut object)) => match object.remove("Records") {
            Some(Value::Array(records)) => records,
            _ => vec![Value::Object(object)],
        },
        Ok(Value::Array(records)) => records,
        _ => text
            .lines()
            .filter_map(|line| serde_json::from_str(line).ok())
            .collect(),
    }
}

fn engine(rules: &Path) -> SigmaEngine {
    let mut library = RuleLibrary::builtin();
    library.add_path(rules).expect("rules load");
    let (engine, _) = SigmaEngine::routed(&library, Sources::default_sources(), &[]);
    engine.with_rate_anomalies(AnomalyConfig::default())
}

#[test]
fn projected_cloudtrail_events_match_exactly_like_whole_ones() {
    let (Some(rules), Some(cloudtrail)) = (
        shared("sigma/rules/cloud/aws/cloudtrail"),
        shared("cloudtrail"),
    ) else {
        return;
    };
    let mut files = Vec::new();
    json_files(&cloudtrail, &mut files);
    let group = "aws/cloudtrail";
    let mut whole = engine(&rules);
    let mut projected = engine(&rules);
    let fields = projected
        .reads(group)
        .and_then(|reads| reads.fields)
        .expect("the CloudTrail rules are projectable");
    let (mut events, mut matches, mut smaller) = (0usize, 0usize, 0usize);
    for file in &files {
        for (index, record) in records(file).iter().enumerate() {
            let raw = serde_json::to_vec(record).expect("serializable");
            // Stored attributes as import writes them: fields, then the OCSF event last (which
            // these rules do not read).
            let mut attrs = Map::new();
            attrs.insert("object".into(), Value::String(file.display().to_string()));
            attrs.insert(
                OCSF_ATTR.into(),
                serde_json::json!({"class_uid": 6003, "raw": record}),
            );
            let attrs_raw = serde_json::to_vec(&attrs).expect("serializable");
            let full = detection_event(Shape::Json, &raw, &attrs, false).expect("whole event");
            let part = projected_event(&raw, &attrs_raw, false, &fields).expect("projected event");
            if Value::Object(part.to_json()) != full {
                smaller += 1;
            }
            // Any times do, the same for both: five seconds apart keeps windows filling.
            let time = 1_700_000_000 + 5 * events as i64;
            let evidence = format!("{}:{index}", file.display());
            let expected = whole.process(group, &full, time, &evidence);
            let got = projected.process_event(group, EventRef::Projected(&part), time, &evidence);
            assert_eq!(got, expected, "{evidence}");
            matches += expected.len();
            events += 1;
        }
    }
    assert!(events > 1_000, "only {events} records");
    assert!(matches > 100, "only {matches} matches");
    // The projection does leave things out (else this test shows nothing).
    assert!(
        smaller * 2 > events,
        "{smaller} of {events} events were smaller"
    );
    eprintln!("{events} records, {matches} matches, {smaller} projected smaller");
}
