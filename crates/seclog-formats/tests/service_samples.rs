//! Every real service log sample in `../shared/data` decodes with no dead letters and one event
//! per record, and a few records per source map to the OCSF events kept under `tests/golden/`
//! (`UPDATE_GOLDEN=1 cargo test -p seclog-formats --test service_samples` rewrites them).

use std::path::{Path, PathBuf};

use seclog_formats::service::{DecodeOptions, Decoded, Format, Item, decode_object, detect};
use serde_json::Value;

fn data_dir() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data");
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!("skipped: {} is absent", dir.display());
        None
    }
}

fn items(format: Format, bytes: &[u8]) -> Vec<Item> {
    match decode_object(format, bytes, &DecodeOptions::default()) {
        Decoded::Items(items) => items,
        Decoded::Digest(_) => panic!("a digest file"),
    }
}

/// Decodes a file with the detected format; asserts it is `expected`, that nothing is
/// rejected, and that there are `records` events.
fn check_file(path: &Path, expected: Format, records: usize) -> Vec<Item> {
    let bytes = std::fs::read(path).expect("read sample");
    let name = path.to_string_lossy();
    assert_eq!(detect(&name, &bytes), Some(expected), "{name}");
    let items = items(expected, &bytes);
    let rejected: Vec<_> = items
        .iter()
        .filter_map(|item| match item {
            Item::Rejected(rejected) => Some(rejected.reason.clone()),
            Item::Event(_) => None,
        })
        .collect();
    assert!(rejected.is_empty(), "{name}: {rejected:?}");
    assert_eq!(items.len(), records, "{name}");
    items
}

/// The number of CloudTrail records in a file, counted with serde_json alone.
fn cloudtrail_records(path: &Path) -> usize {
    let value: Value = serde_json::from_slice(&std::fs::read(path).expect("read")).expect("json");
    match &value {
        Value::Array(records) => records.len(),
        Value::Object(object) => object
            .get("Records")
            .and_then(Value::as_array)
            .map_or(1, Vec::len),
        _ => panic!("unexpected {path:?}"),
    }
}

fn lines(path: &Path) -> usize {
    std::fs::read_to_string(path)
        .expect("read")
        .lines()
        .filter(|line| !line.trim().is_empty())
        .count()
}

#[test]
fn every_cloudtrail_sample_decodes() {
    let Some(data) = data_dir() else { return };
    let mut total = 0;
    for folder in ["invictus", "stratus", "panther", "opensearch"] {
        let mut paths: Vec<PathBuf> = std::fs::read_dir(data.join("cloudtrail").join(folder))
            .expect("folder")
            .map(|entry| entry.expect("entry").path())
            .filter(|path| {
                path.extension().is_some_and(|ext| ext == "json")
                    && !path.to_string_lossy().ends_with(".meta.json")
            })
            .collect();
        paths.sort();
        assert!(!paths.is_empty(), "{folder}");
        for path in paths {
            let records = cloudtrail_records(&path);
            let items = check_file(&path, Format::CloudTrail, records);
            for item in &items {
                let Item::Event(event) = item else { continue };
                // Panther's rule tests leave eventTime out of some records.
                assert!(
                    event.time.is_some() || folder == "panther",
                    "{path:?}: no time"
                );
                let class = event.ocsf["class_uid"].as_u64();
                assert!(matches!(class, Some(6003 | 3002)), "{path:?}: {class:?}");
            }
            total += records;
        }
    }
    // 2,900 invictus + 461 panther + the stratus and opensearch records.
    assert!(total > 3_500, "{total}");
}

#[test]
fn every_aws_sample_decodes() {
    let Some(data) = data_dir() else { return };
    let samples = data.join("aws-samples");
    let alb = samples.join("alb-access.log");
    check_file(&alb, Format::Alb, lines(&alb));
    let s3 = samples.join("s3-server-access.log");
    check_file(&s3, Format::S3Access, lines(&s3));
    let waf = samples.join("waf.log");
    check_file(&waf, Format::Waf, lines(&waf));
    let vpc = samples.join("vpc-flow.otel.json");
    let records = serde_json::from_slice::<Vec<Value>>(&std::fs::read(&vpc).expect("read"))
        .expect("json")
        .len();
    let items = check_file(&vpc, Format::VpcFlow, records);
    let Item::Event(first) = &items[0] else {
        unreachable!()
    };
    assert_eq!(first.fields["srcaddr"], "162.142.125.177");
    assert_eq!(first.fields["dstport"], 12313);
}

#[test]
fn the_apache_sample_decodes_as_combined() {
    let Some(data) = data_dir() else { return };
    let path = data.join("web/apache-access.log");
    check_file(&path, Format::Combined, lines(&path));
}

/// Compares the OCSF events of the first `count` events with `tests/golden/<name>.json`.
fn golden(name: &str, format: Format, bytes: &[u8], count: usize) {
    let events: Vec<Value> = items(format, bytes)
        .into_iter()
        .map(|item| match item {
            Item::Event(event) => serde_json::json!({
                "fields": event.fields,
                "ocsf": event.ocsf,
            }),
            Item::Rejected(rejected) => panic!("{name}: {}", rejected.reason),
        })
        .take(count)
        .collect();
    assert_eq!(events.len(), count, "{name}");
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(format!("{name}.json"));
    let actual = serde_json::to_string_pretty(&events).expect("json") + "\n";
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(path.parent().expect("dir")).expect("mkdir");
        std::fs::write(&path, &actual).expect("write golden");
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|_| panic!("{path:?} is missing: run with UPDATE_GOLDEN=1"));
    assert!(
        actual == expected,
        "{name}: OCSF output differs from {path:?}:\n{actual}"
    );
}

#[test]
fn golden_ocsf_for_real_samples() {
    let Some(data) = data_dir() else { return };
    let read = |path: &str| std::fs::read(data.join(path)).expect("sample");
    golden(
        "cloudtrail-invictus",
        Format::CloudTrail,
        &read(
            "cloudtrail/invictus/218007301253_CloudTrail_us-east-1_20230710T1150Z_1vnLavRRp0ek1mP4.json",
        ),
        1,
    );
    golden(
        "cloudtrail-console-login",
        Format::CloudTrail,
        &read("cloudtrail/stratus/aws.initial-access.console-login-without-mfa.json"),
        1,
    );
    golden(
        "cloudtrail-denied",
        Format::CloudTrail,
        &read("cloudtrail/stratus/aws.defense-evasion.cloudtrail-delete.json"),
        1,
    );
    golden("alb", Format::Alb, &read("aws-samples/alb-access.log"), 2);
    golden(
        "s3access",
        Format::S3Access,
        &read("aws-samples/s3-server-access.log"),
        2,
    );
    golden("waf", Format::Waf, &read("aws-samples/waf.log"), 2);
    golden(
        "vpcflow-otel",
        Format::VpcFlow,
        &read("aws-samples/vpc-flow.otel.json"),
        2,
    );
    golden(
        "combined",
        Format::Combined,
        &read("web/apache-access.log"),
        2,
    );
}

/// Sources without a public sample: records written from AWS's and the projects' format
/// documentation.
#[test]
fn golden_ocsf_for_documented_records() {
    golden(
        "vpcflow-v5",
        Format::VpcFlow,
        b"version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status vpc-id subnet-id instance-id tcp-flags type pkt-srcaddr pkt-dstaddr region az-id sublocation-type sublocation-id pkt-src-aws-service pkt-dst-aws-service flow-direction traffic-path\n\
          5 123456789010 eni-1235b8ca123456789 10.0.1.5 10.0.0.220 39812 443 6 10 840 1620140661 1620140721 ACCEPT OK vpc-abcdefab012345678 subnet-aaaaaaaa012345678 i-0c50d5961bcb2d47b 19 IPv4 10.0.1.5 203.0.113.5 us-east-1 use1-az2 - - - S3 egress 8\n\
          2 123456789010 eni-1235b8ca123456789 172.31.9.69 172.31.9.12 49761 3389 6 20 4249 1418530010 1418530070 REJECT OK - - - - - - - - - - - - - - -\n",
        2,
    );
    golden(
        "route53-resolver",
        Format::Route53,
        br#"{"version":"1.100000","account_id":"111122223333","region":"us-east-1","vpc_id":"vpc-0123456789abcdef0","query_timestamp":"2024-03-01T10:00:00Z","query_name":"api.example.com.","query_type":"A","query_class":"IN","rcode":"NOERROR","answers":[{"Rdata":"192.0.2.10","Type":"A","Class":"IN"}],"srcaddr":"10.0.0.5","srcport":"53123","transport":"UDP","srcids":{"instance":"i-0123456789abcdef0"}}
{"version":"1.100000","account_id":"111122223333","region":"us-east-1","vpc_id":"vpc-0123456789abcdef0","query_timestamp":"2024-03-01T10:00:01Z","query_name":"c2.bad.example.","query_type":"TXT","query_class":"IN","rcode":"NOERROR","answers":[],"srcaddr":"10.0.0.6","srcport":"40000","transport":"UDP","srcids":{"instance":"i-0fedcba9876543210"},"firewall_rule_action":"BLOCK","firewall_rule_group_id":"rslvr-frg-1","firewall_domain_list_id":"rslvr-fdl-1"}
"#,
        2,
    );
    golden(
        "elb",
        Format::Elb,
        br#"2015-05-13T23:39:43.945958Z my-loadbalancer 192.168.131.39:2817 10.0.0.1:80 0.000086 0.001048 0.001337 200 200 0 57 "GET https://www.example.com:443/ HTTP/1.1" "curl/7.38.0" DHE-RSA-AES128-SHA TLSv1.2
"#,
        1,
    );
    golden(
        "config",
        Format::Config,
        br#"{"fileVersion":"1.0","configurationItems":[{"configurationItemVersion":"1.3","configurationItemCaptureTime":"2024-02-01T10:00:00.000Z","configurationStateId":1706781600000,"awsAccountId":"111122223333","configurationItemStatus":"OK","resourceType":"AWS::EC2::SecurityGroup","resourceId":"sg-0123456789abcdef0","resourceName":"web","ARN":"arn:aws:ec2:us-east-1:111122223333:security-group/sg-0123456789abcdef0","awsRegion":"us-east-1","availabilityZone":"Not Applicable","tags":{"env":"prod"},"relatedEvents":[],"relationships":[],"configuration":{"groupName":"web","ipPermissions":[{"fromPort":22,"toPort":22,"ipRanges":["0.0.0.0/0"]}]}}]}"#,
        1,
    );
    golden(
        "pgaudit",
        Format::PgAudit,
        b"2024-11-28 03:00:00.123 UTC [4242] alice@shop LOG:  AUDIT: SESSION,1,1,DDL,CREATE TABLE,TABLE,public.orders,\"CREATE TABLE orders (id int, note text)\",<not logged>\n\
          2024-11-28 03:00:01.456 UTC [4242] alice@shop LOG:  AUDIT: OBJECT,2,1,WRITE,INSERT,TABLE,public.orders,\"INSERT INTO orders VALUES (1, 'a, b')\",<not logged>\n",
        2,
    );
    golden(
        "mysql-audit",
        Format::MysqlAudit,
        br#"[
{"timestamp":"2019-10-03 13:50:01","id":0,"class":"connection","event":"connect","connection_id":8,"account":{"user":"app","host":"localhost"},"login":{"user":"app","os":"","ip":"10.0.0.9","proxy":""},"connection_data":{"connection_type":"tcp/ip","status":0,"db":"shop"}},
{"timestamp":"2019-10-03 13:50:02","id":1,"class":"general","event":"status","connection_id":8,"account":{"user":"app","host":"localhost"},"login":{"user":"app","os":"","ip":"10.0.0.9","proxy":""},"general_data":{"command":"Query","sql_command":"select","query":"SELECT * FROM orders","status":0}}
]"#,
        2,
    );
}

/// The generator's records have the shape of the real ones: every key all real CloudTrail
/// records carry, no key they never carry, the same JSON types; ALB lines as many fields as
/// the real lines.
#[test]
fn generated_records_have_the_shape_of_the_samples() {
    use seclog_formats::service::Generator;
    use std::collections::{BTreeMap, BTreeSet};
    let Some(data) = data_dir() else { return };
    let kind = |value: &Value| match value {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    };
    let mut real_keys: BTreeMap<String, BTreeSet<&str>> = BTreeMap::new();
    let mut always: Option<BTreeSet<String>> = None;
    for entry in std::fs::read_dir(data.join("cloudtrail/invictus")).expect("dir") {
        let path = entry.expect("entry").path();
        if path.extension().is_none_or(|ext| ext != "json") {
            continue;
        }
        let file: Value =
            serde_json::from_slice(&std::fs::read(&path).expect("read")).expect("json");
        for record in file["Records"].as_array().expect("records") {
            let object = record.as_object().expect("object");
            let keys: BTreeSet<String> = object.keys().cloned().collect();
            always = Some(match always {
                None => keys,
                Some(known) => known.intersection(&keys).cloned().collect(),
            });
            for (key, value) in object {
                real_keys
                    .entry(key.clone())
                    .or_default()
                    .insert(kind(value));
            }
        }
    }
    let always = always.expect("records");
    let mut generator = Generator::new(Format::CloudTrail, 3, 1_714_557_600).expect("generator");
    for _ in 0..2_000 {
        let record: Value = serde_json::from_str(&generator.next_record()).expect("json");
        let object = record.as_object().expect("object");
        for key in &always {
            assert!(
                object.contains_key(key),
                "generated record lacks {key}: {record}"
            );
        }
        for (key, value) in object {
            let kinds = real_keys
                .get(key)
                .unwrap_or_else(|| panic!("real records never carry {key}"));
            assert!(
                kinds.contains(kind(value)),
                "{key} is {} here, {kinds:?} in real records",
                kind(value)
            );
        }
    }
    let real_alb = std::fs::read_to_string(data.join("aws-samples/alb-access.log")).expect("alb");
    let fields = |line: &str| {
        let mut count = 0;
        let mut quoted = false;
        let mut in_field = false;
        for c in line.chars() {
            match c {
                '"' => {
                    quoted = !quoted;
                    if !in_field {
                        in_field = true;
                        count += 1;
                    }
                }
                ' ' if !quoted => in_field = false,
                _ if !in_field => {
                    in_field = true;
                    count += 1;
                }
                _ => {}
            }
        }
        count
    };
    let real_count = fields(real_alb.lines().next().expect("line"));
    let mut generator = Generator::new(Format::Alb, 3, 1_714_557_600).expect("generator");
    for _ in 0..200 {
        assert_eq!(fields(&generator.next_record()), real_count);
    }
}
