//! `seclog hunt` and `seclog rules check` on real data: SigmaHQ's rules and the real
//! CloudTrail, sshd and web logs in `../shared/data`. Expectations are computed here from the
//! rule texts and the events, independently of seclog's engine.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use common::{describe, run};
use serde_json::Value;

fn shared(path: &str) -> Option<PathBuf> {
    let full = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data")
        .join(path);
    if full.exists() {
        Some(full)
    } else {
        eprintln!("skipped: {} is absent", full.display());
        None
    }
}

fn json_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .filter(|path| !path.to_string_lossy().ends_with(".meta.json"))
        .collect();
    files.sort();
    files
}

/// The records of a CloudTrail file in file order (a delivery file or an array).
fn records(path: &Path) -> Vec<Value> {
    let value: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    match value {
        Value::Array(records) => records,
        Value::Object(mut object) => match object.remove("Records") {
            Some(Value::Array(records)) => records,
            _ => vec![Value::Object(object)],
        },
        _ => panic!("{} is not CloudTrail", path.display()),
    }
}

/// (file, record index) of every record of `inputs` for which `predicate` holds.
fn matching(inputs: &[PathBuf], predicate: &dyn Fn(&Value) -> bool) -> BTreeSet<(String, u64)> {
    let mut found = BTreeSet::new();
    for input in inputs {
        for (index, record) in records(input).iter().enumerate() {
            if predicate(record) {
                found.insert((input.to_string_lossy().into_owned(), index as u64));
            }
        }
    }
    found
}

/// Runs hunt and returns its NDJSON lines.
fn hunt(args: &[&str]) -> Vec<Value> {
    let output = run(["hunt"].iter().copied().chain(args.iter().copied()));
    assert!(output.status.success(), "{}", describe(&output));
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

/// A field by dotted path (nested objects only, as these rules need).
fn field<'a>(event: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(event, |value, key| value.get(key))
}

/// Sigma's default comparison: whole value, case-insensitive.
fn is(event: &Value, path: &str, expected: &str) -> bool {
    field(event, path).is_some_and(|value| match value {
        Value::String(text) => text.eq_ignore_ascii_case(expected),
        Value::Bool(flag) => flag.to_string().eq_ignore_ascii_case(expected),
        Value::Number(number) => number.to_string() == expected,
        _ => false,
    })
}

fn one_of(event: &Value, path: &str, expected: &[&str]) -> bool {
    expected.iter().any(|value| is(event, path, value))
}

/// `field: null`: missing or JSON null.
fn null(event: &Value, path: &str) -> bool {
    field(event, path).is_none_or(Value::is_null)
}

type Predicate = fn(&Value) -> bool;

/// Each rule's detection, written out from its YAML in SigmaHQ/sigma.
fn sigmahq_expectations() -> Vec<(&'static str, &'static str, Predicate)> {
    vec![
        // aws_cloudtrail_disable_logging.yml
        (
            "4db60cc0-36fb-42b7-9b58-a5b53019fb74",
            "disable logging",
            |e| {
                is(e, "eventSource", "cloudtrail.amazonaws.com")
                    && one_of(
                        e,
                        "eventName",
                        &["StopLogging", "UpdateTrail", "DeleteTrail"],
                    )
            },
        ),
        // aws_snapshot_backup_exfiltration.yml
        (
            "abae8fec-57bd-4f87-aff6-6e3db989843d",
            "snapshot exfiltration",
            |e| {
                is(e, "eventSource", "ec2.amazonaws.com")
                    && is(e, "eventName", "ModifySnapshotAttribute")
            },
        ),
        // aws_cloudtrail_console_login_success_without_mfa.yml
        (
            "77caf516-34e5-4df9-b4db-20744fea0a60",
            "console login without MFA",
            |e| {
                is(e, "eventName", "ConsoleLogin")
                    && is(e, "additionalEventData.MFAUsed", "NO")
                    && is(e, "responseElements.ConsoleLogin", "Success")
            },
        ),
        // aws_root_account_usage.yml
        (
            "8ad1600d-e9dc-4251-b0ee-a65268f29add",
            "root account usage",
            |e| is(e, "userIdentity.type", "Root") && !is(e, "eventType", "AwsServiceEvent"),
        ),
        // aws_cloudtrail_vpc_flow_logs_deleted.yml: success written as `errorCode: null`.
        (
            "e386b9b5-af12-450e-afff-761730fb8a98",
            "flow logs deleted",
            |e| {
                is(e, "eventName", "DeleteFlowLogs")
                    && (is(e, "errorCode", "Success") || null(e, "errorCode"))
            },
        ),
        // aws_cloudtrail_ssm_malicious_usage.yml
        (
            "38e7f511-3f74-41d4-836e-f57dfa18eead",
            "ssm send command",
            |e| {
                is(e, "eventName", "SendCommand")
                    && is(e, "eventSource", "ssm.amazonaws.com")
                    && (is(e, "errorCode", "Success") || null(e, "errorCode"))
            },
        ),
        // aws_sts_assumerole_misuse.yml
        (
            "905d389b-b853-46d0-9d3d-dea0d3a3cd49",
            "assumed role session",
            |e| {
                is(e, "userIdentity.type", "AssumedRole")
                    && is(e, "userIdentity.sessionContext.sessionIssuer.type", "Role")
            },
        ),
        // aws_cloudtrail_security_group_change_ingress_egress.yml
        (
            "6fb77778-040f-4015-9440-572aa9b6b580",
            "security group rules",
            |e| {
                is(e, "eventSource", "ec2.amazonaws.com")
                    && one_of(
                        e,
                        "eventName",
                        &[
                            "AuthorizeSecurityGroupEgress",
                            "AuthorizeSecurityGroupIngress",
                            "RevokeSecurityGroupEgress",
                            "RevokeSecurityGroupIngress",
                        ],
                    )
            },
        ),
        // aws_iam_backdoor_users_keys.yml: the filter compares with a literal string, never
        // with the other field, so every CreateAccessKey matches (a defect of the rule).
        (
            "0a5177f4-6ca9-44c2-aacf-d3f3d8b6e4d2",
            "backdoor user keys",
            |e| {
                is(e, "eventSource", "iam.amazonaws.com")
                    && is(e, "eventName", "CreateAccessKey")
                    && !field(e, "userIdentity.arn")
                        .and_then(Value::as_str)
                        .is_some_and(|arn| {
                            arn.to_ascii_lowercase()
                                .contains("responseelements.accesskey.username")
                        })
            },
        ),
    ]
}

#[test]
fn sigmahq_aws_rules_find_what_their_text_says_in_real_cloudtrail() {
    let (Some(rules), Some(cloudtrail)) = (
        shared("sigma/rules/cloud/aws/cloudtrail"),
        shared("cloudtrail"),
    ) else {
        return;
    };
    let mut inputs = json_files(&cloudtrail.join("stratus"));
    inputs.extend(json_files(&cloudtrail.join("invictus")));
    inputs.extend(json_files(&cloudtrail.join("panther")));
    let mut args: Vec<String> = vec![
        "--no-builtin".into(),
        "--rules".into(),
        rules.to_string_lossy().into(),
        "--format".into(),
        "cloudtrail".into(),
        "--input".into(),
    ];
    args.extend(
        inputs
            .iter()
            .map(|path| path.to_string_lossy().into_owned()),
    );
    let lines = hunt(&args.iter().map(String::as_str).collect::<Vec<_>>());

    // What seclog found, per rule id: (input, record index).
    let mut found: BTreeMap<String, BTreeSet<(String, u64)>> = BTreeMap::new();
    for line in &lines {
        let id = line["rule"]["id"].as_str().unwrap().to_string();
        let input = line["input"].as_str().unwrap().to_string();
        let index = line["record_index"].as_u64().unwrap();
        // The event printed is the record at that index.
        let record = &records(Path::new(&input))[index as usize];
        assert_eq!(line["event"]["eventID"], record["eventID"], "{line}");
        found.entry(id).or_default().insert((input, index));
    }
    let mut total = 0;
    for (id, what, predicate) in sigmahq_expectations() {
        let expected = matching(&inputs, &predicate);
        assert!(!expected.is_empty(), "{what}: the data has no example");
        let got = found.remove(id).unwrap_or_default();
        assert_eq!(got, expected, "rule {id} ({what})");
        total += expected.len();
    }
    assert!(total > 100, "only {total} expected matches");
    // Techniques whose detonation the rules are written for are found in their files.
    let stratus_hits: BTreeSet<String> = lines
        .iter()
        .filter_map(|line| line["input"].as_str())
        .filter(|input| input.contains("/stratus/"))
        .map(|input| {
            Path::new(input)
                .file_name()
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    for technique in [
        "aws.defense-evasion.cloudtrail-stop.json",
        "aws.defense-evasion.cloudtrail-delete.json",
        "aws.defense-evasion.vpc-remove-flow-logs.json",
        "aws.exfiltration.ec2-share-ebs-snapshot.json",
        "aws.initial-access.console-login-without-mfa.json",
        "aws.persistence.iam-backdoor-user.json",
        "aws.privilege-escalation.iam-update-user-login-profile.json",
        "aws.execution.ssm-send-command.json",
    ] {
        assert!(
            stratus_hits.contains(technique),
            "nothing found in {technique}"
        );
    }
}

#[test]
fn builtin_cis_rules_on_real_cloudtrail() {
    let Some(cloudtrail) = shared("cloudtrail") else {
        return;
    };
    let mut inputs = json_files(&cloudtrail.join("stratus"));
    inputs.extend(json_files(&cloudtrail.join("invictus")));
    let mut args: Vec<String> = vec!["--format".into(), "cloudtrail".into(), "--input".into()];
    args.extend(
        inputs
            .iter()
            .map(|path| path.to_string_lossy().into_owned()),
    );
    let lines = hunt(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let count = |title: &str| {
        lines
            .iter()
            .filter(|line| line["rule"]["title"] == title)
            .map(|line| {
                (
                    line["input"].as_str().unwrap().to_string(),
                    line["record_index"].as_u64().unwrap(),
                )
            })
            .collect::<BTreeSet<_>>()
    };
    let expect = |predicate: &dyn Fn(&Value) -> bool| matching(&inputs, predicate);
    // CIS 4.5: the CloudTrail metric filter's event names.
    let trail = expect(&|e| {
        is(e, "eventSource", "cloudtrail.amazonaws.com")
            && one_of(
                e,
                "eventName",
                &[
                    "CreateTrail",
                    "UpdateTrail",
                    "DeleteTrail",
                    "StartLogging",
                    "StopLogging",
                    "PutEventSelectors",
                ],
            )
    });
    assert!(!trail.is_empty());
    assert_eq!(count("AWS CloudTrail configuration changed"), trail);
    // CIS 4.1: errorCode "*UnauthorizedOperation" or "AccessDenied*".
    let denied = expect(&|e| {
        field(e, "errorCode")
            .and_then(Value::as_str)
            .is_some_and(|code| {
                code.to_ascii_lowercase().ends_with("unauthorizedoperation")
                    || code.to_ascii_lowercase().starts_with("accessdenied")
            })
    });
    assert!(denied.len() > 10);
    assert_eq!(count("Unauthorized AWS API calls"), denied);
    // CIS 4.2: console login of an IAM user, successful, without "MFAUsed: Yes".
    let no_mfa = expect(&|e| {
        is(e, "eventName", "ConsoleLogin")
            && is(e, "userIdentity.type", "IAMUser")
            && is(e, "responseElements.ConsoleLogin", "Success")
            && !is(e, "additionalEventData.MFAUsed", "Yes")
    });
    assert!(!no_mfa.is_empty());
    assert_eq!(count("AWS console sign-in without MFA"), no_mfa);
    // CIS 4.10: security group changes.
    let groups = expect(&|e| {
        is(e, "eventSource", "ec2.amazonaws.com")
            && one_of(
                e,
                "eventName",
                &[
                    "AuthorizeSecurityGroupIngress",
                    "AuthorizeSecurityGroupEgress",
                    "RevokeSecurityGroupIngress",
                    "RevokeSecurityGroupEgress",
                    "CreateSecurityGroup",
                    "DeleteSecurityGroup",
                ],
            )
    });
    assert!(!groups.is_empty());
    assert_eq!(count("AWS security group changed"), groups);
}

/// Parses `Mon DD HH:MM:SS` into seconds since the start of the (unknown) year.
fn syslog_seconds(line: &str) -> i64 {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    const DAYS_BEFORE: [i64; 12] = [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334];
    let month = MONTHS.iter().position(|m| line.starts_with(m)).unwrap();
    let day: i64 = line[4..6].trim().parse().unwrap();
    let hour: i64 = line[7..9].parse().unwrap();
    let minute: i64 = line[10..12].parse().unwrap();
    let second: i64 = line[13..15].parse().unwrap();
    ((DAYS_BEFORE[month] + day - 1) * 24 + hour) * 3600 + minute * 60 + second
}

#[test]
fn ssh_brute_force_fires_exactly_where_the_windows_say() {
    let Some(log) = shared("web/sshd-auth.log") else {
        return;
    };
    let text = std::fs::read_to_string(&log).unwrap();
    // The built-in rules: 10 failed logins (Failed password/publickey/keyboard-interactive,
    // also inside "message repeated N times: [ … ]", which counts once) from one source or for
    // one user within 5 minutes (a window of [t - 300 s, t]); after firing, a key's window
    // starts empty.
    let failure = regex_lite(&text);
    let expected_for = |key_of: &dyn Fn(&Failure) -> String| {
        let mut windows: BTreeMap<String, Vec<i64>> = BTreeMap::new();
        let mut fired = BTreeSet::new();
        for item in &failure {
            let window = windows.entry(key_of(item)).or_default();
            window.retain(|&t| t >= item.1 - 300);
            window.push(item.1);
            if window.len() >= 10 {
                fired.insert((item.0 as u64, key_of(item)));
                window.clear();
            }
        }
        fired
    };
    let by_source = expected_for(&|item| item.2.clone());
    let by_user = expected_for(&|item| item.3.clone());
    assert!(by_source.len() >= 3, "{by_source:?}");
    assert!(!by_user.is_empty());

    let lines = hunt(&["--format", "syslog", "--input", log.to_str().unwrap()]);
    let fired = |title: &str, key: &str| {
        lines
            .iter()
            .filter(|line| line["rule"]["title"] == title)
            .map(|line| {
                assert_eq!(line["correlation"]["type"], "event_count");
                assert_eq!(
                    line["correlation"]["evidence"].as_array().unwrap().len(),
                    10
                );
                (
                    line["record_index"].as_u64().unwrap(),
                    line["correlation"]["group_by"][key]
                        .as_str()
                        .unwrap()
                        .to_string(),
                )
            })
            .collect::<BTreeSet<_>>()
    };
    assert_eq!(
        fired("SSH brute force from one source", "source.ip"),
        by_source
    );
    assert_eq!(
        fired("SSH brute force against one user", "user.name"),
        by_user
    );
    // The base rule only feeds the correlations.
    assert!(
        !lines
            .iter()
            .any(|line| line["rule"]["title"] == "SSH login failure")
    );
}

/// (line index, seconds, source, user) of a failed sshd login.
type Failure = (usize, i64, String, String);

/// (line index, seconds, source, user) of every failed sshd login, found without regex crates:
/// the words after "Failed <method> for [invalid user] ".
fn regex_lite(text: &str) -> Vec<Failure> {
    let mut out = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let Some(at) = line.find("sshd[") else {
            continue;
        };
        let Some(colon) = line[at..].find("]: ") else {
            continue;
        };
        let mut message = &line[at + colon + 3..];
        if let Some(rest) = message.strip_prefix("message repeated ") {
            let Some(open) = rest.find("[ ") else {
                continue;
            };
            message = &rest[open + 2..];
        }
        let Some(rest) = message.strip_prefix("Failed ") else {
            continue;
        };
        let Some((method, rest)) = rest.split_once(" for ") else {
            continue;
        };
        if ![
            "password",
            "publickey",
            "keyboard-interactive/pam",
            "none",
            "hostbased",
            "gssapi-with-mic",
        ]
        .contains(&method)
        {
            continue;
        }
        let rest = rest.strip_prefix("invalid user ").unwrap_or(rest);
        let Some((user, rest)) = rest.rsplit_once(" from ") else {
            continue;
        };
        let source = rest.split(' ').next().unwrap().to_string();
        out.push((index, syslog_seconds(line), source, user.to_string()));
    }
    out
}

#[test]
fn rules_check_loads_sigmahq_or_says_why_not() {
    let Some(sigma) = shared("sigma") else {
        return;
    };
    let output = run([
        "rules",
        "check",
        "--rules",
        sigma.join("rules").to_str().unwrap(),
        "--rules",
        sigma.join("rules-emerging-threats").to_str().unwrap(),
        "--rules",
        sigma.join("rules-threat-hunting").to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let summary = stdout.lines().next().unwrap();
    // "<files> files: <rules> rules, <correlations> correlations, … ; <n> unsupported"
    let number = |after: &str| -> usize {
        let start = summary.find(after).unwrap();
        summary[..start]
            .split(|c: char| !c.is_ascii_digit())
            .rfind(|part| !part.is_empty())
            .unwrap()
            .parse()
            .unwrap()
    };
    let loaded = number(" rules,");
    let unsupported = number(" unsupported");
    // Every SigmaHQ document is a rule that loaded or a listed refusal; the pack adds 26 rules.
    let sigmahq: usize = ["rules", "rules-emerging-threats", "rules-threat-hunting"]
        .iter()
        .map(|dir| count_detection_documents(&sigma.join(dir)))
        .sum();
    assert_eq!(loaded + unsupported, sigmahq + 26, "{stdout}");
    assert!(unsupported < 20, "{stdout}");
    let reasons: Vec<&str> = stdout
        .lines()
        .skip_while(|line| *line != "unsupported:")
        .skip(1)
        .collect();
    assert_eq!(reasons.len(), unsupported);
    assert!(
        reasons
            .iter()
            .all(|line| line.contains(".yml: ") && line.len() > 40)
    );
    assert_eq!(
        output.status.code(),
        Some(if unsupported == 0 { 0 } else { 1 })
    );
}

/// Documents with a `detection:` key, counted from the YAML text.
fn count_detection_documents(dir: &Path) -> usize {
    let mut count = 0;
    for path in common::walk_files(dir) {
        if path.extension().is_none_or(|ext| ext != "yml") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        count += text
            .split("\n---")
            .filter(|doc| doc.lines().any(|line| line.starts_with("detection:")))
            .count();
    }
    count
}

/// `hunt --server` runs the same rules over what a running server stored, reads only the groups
/// the token may read, and is recorded in `seclog/access`.
#[test]
fn hunting_on_a_server_finds_what_hunting_the_files_finds() {
    let (Some(rules), Some(stratus)) = (
        shared("sigma/rules/cloud/aws/cloudtrail"),
        shared("cloudtrail/stratus"),
    ) else {
        return;
    };
    let store = common::Store::new();
    let token = store.init();
    let reader = store.create_token("reader", "app/*");
    let mut server = store.serve(&["--no-detection"]);
    let output = common::seclog()
        .args(["import", "--server", &server.url(""), "--quiet"])
        .arg(&stratus)
        .env("SECLOG_TOKEN", &token)
        .output()
        .expect("import runs");
    assert!(output.status.success(), "{}", describe(&output));
    let key = |line: &Value| {
        (
            line["rule"]["id"].as_str().unwrap_or_default().to_string(),
            line["event"]["eventID"]
                .as_str()
                .or(line["event"]["event"]["eventID"].as_str())
                .unwrap_or_default()
                .to_string(),
        )
    };
    let hunt_with = |token: &str| {
        let output = common::seclog()
            .args([
                "hunt",
                "--server",
                &server.url(""),
                "--no-builtin",
                "--no-anomalies",
                "--rules",
            ])
            .arg(&rules)
            .env("SECLOG_TOKEN", token)
            .output()
            .expect("hunt runs");
        assert!(output.status.success(), "{}", describe(&output));
        String::from_utf8(output.stdout)
            .unwrap()
            .lines()
            .map(|line| serde_json::from_str::<Value>(line).unwrap())
            .collect::<Vec<_>>()
    };
    let on_server: BTreeSet<(String, String)> = hunt_with(&token).iter().map(key).collect();
    let mut args: Vec<String> = vec![
        "--no-builtin".into(),
        "--no-anomalies".into(),
        "--rules".into(),
        rules.to_string_lossy().into(),
        "--format".into(),
        "cloudtrail".into(),
        "--input".into(),
    ];
    args.extend(
        json_files(&stratus)
            .iter()
            .map(|p| p.to_string_lossy().into_owned()),
    );
    let offline: BTreeSet<(String, String)> =
        hunt(&args.iter().map(String::as_str).collect::<Vec<_>>())
            .iter()
            .map(key)
            .collect();
    assert!(offline.len() > 50, "{offline:?}");
    assert_eq!(on_server, offline);
    // A reader of app/* reads no CloudTrail.
    assert!(hunt_with(&reader).is_empty());
    server.stop_ok();
    let hunts = store
        .cat("seclog/access")
        .iter()
        .filter(|event| event["event"]["action"] == "hunt")
        .count();
    assert_eq!(hunts, 2);
}
