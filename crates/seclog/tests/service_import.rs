//! `seclog import` against a real server process: objects in the `AWSLogs/…` layout (gzip) are
//! imported once (a second run stores nothing), their events are searchable under their
//! original names and their OCSF names, unreadable records become counted dead letters, and
//! the CloudWatch Logs Insights sample queries for VPC Flow Logs and Route 53 run unchanged.

mod common;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use common::{Store, post, run};
use serde_json::{Value, json};

fn gzip(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    let file = std::fs::File::create(path).expect("create");
    let mut encoder = flate2::write::GzEncoder::new(file, flate2::Compression::default());
    encoder.write_all(text.as_bytes()).expect("write");
    encoder.finish().expect("finish");
}

fn cloudtrail_file() -> String {
    json!({"Records": [
        {"eventVersion": "1.09", "eventTime": "2024-05-01T10:00:00Z", "eventSource": "signin.amazonaws.com",
         "eventName": "ConsoleLogin", "awsRegion": "us-east-1", "sourceIPAddress": "198.51.100.7",
         "userAgent": "Mozilla/5.0", "userIdentity": {"type": "IAMUser", "principalId": "AIDAEXAMPLE",
         "arn": "arn:aws:iam::111122223333:user/mallory", "accountId": "111122223333", "userName": "mallory"},
         "errorMessage": "Failed authentication", "responseElements": {"ConsoleLogin": "Failure"},
         "additionalEventData": {"MFAUsed": "No"}, "eventID": "e-1", "eventType": "AwsConsoleSignIn",
         "recipientAccountId": "111122223333"},
        {"eventVersion": "1.09", "eventTime": "2024-05-01T10:01:00Z", "eventSource": "cloudtrail.amazonaws.com",
         "eventName": "DeleteTrail", "awsRegion": "us-east-1", "sourceIPAddress": "198.51.100.7",
         "userIdentity": {"type": "IAMUser", "userName": "mallory", "accountId": "111122223333"},
         "errorCode": "AccessDenied", "errorMessage": "not authorized", "requestID": "r-2", "eventID": "e-2",
         "resources": [{"ARN": "arn:aws:cloudtrail:us-east-1:111122223333:trail/main", "type": "AWS::CloudTrail::Trail"}],
         "recipientAccountId": "111122223333"},
        {"eventVersion": "1.09", "eventTime": "2024-05-01T10:02:00Z", "eventSource": "s3.amazonaws.com",
         "eventName": "GetObject", "awsRegion": "us-east-1", "sourceIPAddress": "10.0.0.9",
         "userIdentity": {"type": "AssumedRole", "accountId": "111122223333",
          "sessionContext": {"sessionIssuer": {"userName": "reader", "arn": "arn:aws:iam::111122223333:role/reader"}}},
         "readOnly": true, "eventID": "e-3", "recipientAccountId": "111122223333"}
    ]})
    .to_string()
}

/// A flow log file (header line, then records) and what the samples should answer.
struct Flows {
    text: String,
    packets_by_pair: BTreeMap<(String, String), u64>,
    bytes_to_from_subnet: BTreeMap<String, u64>,
    udp_by_source: BTreeMap<String, u64>,
    skipped: u64,
}

fn flows() -> Flows {
    let mut flows = Flows {
        text: "version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status\n".into(),
        packets_by_pair: BTreeMap::new(),
        bytes_to_from_subnet: BTreeMap::new(),
        udp_by_source: BTreeMap::new(),
        skipped: 0,
    };
    let mut rng = fastrand::Rng::with_seed(7);
    let start = 1_714_557_600u64; // 2024-05-01T10:00:00Z
    for n in 0..400u64 {
        if n % 50 == 49 {
            flows.text.push_str(&format!(
                "2 111122223333 eni-0a1b2c3d - - - - - - - {} {} - SKIPDATA\n",
                start + n,
                start + n + 60
            ));
            flows.skipped += 1;
            continue;
        }
        let source = if rng.bool() {
            format!("192.0.2.{}", rng.u8(1..20))
        } else {
            format!("10.0.{}.{}", rng.u8(0..3), rng.u8(1..20))
        };
        let destination = format!("10.1.0.{}", rng.u8(1..8));
        let protocol = if rng.u8(0..4) == 0 { 17 } else { 6 };
        let packets = rng.u64(1..100);
        let bytes = packets * rng.u64(40..1500);
        let action = if rng.u8(0..5) == 0 {
            "REJECT"
        } else {
            "ACCEPT"
        };
        flows.text.push_str(&format!(
            "2 111122223333 eni-0a1b2c3d {source} {destination} {} 443 {protocol} {packets} {bytes} {} {} {action} OK\n",
            rng.u16(1024..65535),
            start + n,
            start + n + 60
        ));
        *flows
            .packets_by_pair
            .entry((source.clone(), destination.clone()))
            .or_default() += packets;
        if source.starts_with("192.0.2.") {
            *flows.bytes_to_from_subnet.entry(destination).or_default() += bytes;
        }
        if protocol == 17 {
            *flows.udp_by_source.entry(source).or_default() += 1;
        }
    }
    flows
}

fn resolver_file() -> (String, BTreeMap<String, u64>, BTreeMap<String, u64>) {
    let mut text = String::new();
    let mut by_resolver = BTreeMap::new();
    let mut servfail_by_name = BTreeMap::new();
    for n in 0..60u64 {
        let source = format!("10.0.0.{}", n % 7);
        let name = format!("host{}.example.com.", n % 4);
        let rcode = if n % 5 == 0 { "SERVFAIL" } else { "NOERROR" };
        text.push_str(
            &json!({"version": "1.100000", "account_id": "111122223333", "region": "us-east-1",
                "vpc_id": "vpc-1", "query_timestamp": format!("2024-05-01T10:{:02}:00Z", n % 60),
                "query_name": name, "query_type": if n % 2 == 0 { "A" } else { "AAAA" },
                "query_class": "IN", "rcode": rcode, "answers": [], "srcaddr": source,
                "srcport": "53000", "transport": "UDP", "srcids": {"instance": "i-1"}})
            .to_string(),
        );
        text.push('\n');
        *by_resolver.entry(source).or_default() += 1;
        if rcode == "SERVFAIL" {
            *servfail_by_name.entry(name).or_default() += 1;
        }
    }
    (text, by_resolver, servfail_by_name)
}

fn query(server: &common::Server, token: &str, group: &str, text: &str) -> Vec<Value> {
    let reply = post(
        &server.url("/api/v1/query"),
        Some(token),
        &[],
        json!({"query": text, "start": "2000-01-01T00:00:00Z", "groups": [group]})
            .to_string()
            .as_bytes(),
    );
    assert_eq!(reply.status, 200, "{text}: {}", reply.text());
    reply.json()["rows"].as_array().expect("rows").clone()
}

/// Waits until `group` holds `count` searchable events.
fn wait_searchable(server: &common::Server, token: &str, group: &str, count: u64) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let rows = query(server, token, group, "stats count(*) as n");
        let n = rows.first().and_then(|row| row["n"].as_u64()).unwrap_or(0);
        if n == count {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{group}: {n} of {count} searchable"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn as_map(rows: &[Value], key: &str, value: &str) -> BTreeMap<String, u64> {
    rows.iter()
        .map(|row| {
            (
                row[key].as_str().expect("key").to_string(),
                row[value].as_u64().expect("value"),
            )
        })
        .collect()
}

#[test]
fn imports_are_idempotent_normalized_and_answer_the_insights_samples() {
    let store = Store::new();
    let admin = store.init();
    let elsewhere = store.create_token("ingest", "app/*");
    let reader = store.create_token("reader", "*");
    let server = store.serve(&[]);
    let input = tempfile::tempdir().expect("tempdir");
    let root = input.path().join("AWSLogs/111122223333");
    gzip(
        &root.join("CloudTrail/us-east-1/2024/05/01/111122223333_CloudTrail_us-east-1_20240501T1000Z_abc.json.gz"),
        &cloudtrail_file(),
    );
    let flows = flows();
    gzip(
        &root.join("vpcflowlogs/us-east-1/2024/05/01/111122223333_vpcflowlogs_us-east-1_fl-1_20240501T1000Z_x.log.gz"),
        &flows.text,
    );
    let (resolver, by_resolver, servfail_by_name) = resolver_file();
    gzip(
        &root.join("vpcdnsquerylogs/vpc-1/2024/05/01/111122223333_vpcdnsquerylogs_vpc-1_20240501T1000Z_y.log.gz"),
        &resolver,
    );
    // One broken line among good ones: kept as a dead letter, the rest imported.
    gzip(
        &root.join("vpcflowlogs/us-east-1/2024/05/01/111122223333_vpcflowlogs_us-east-1_fl-1_20240501T1010Z_z.log.gz"),
        "version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status\n\
         2 111122223333 eni-0a1b2c3d 10.9.9.9 10.1.0.1 1234 22 6 1 40 1714557600 1714557660 REJECT OK\n\
         2 111122223333 eni-0a1b2c3d cut short\n",
    );
    let import = |extra: &[&str]| {
        let input_dir = input.path().to_string_lossy().to_string();
        let mut args = vec![
            "import",
            "--server",
            &server.base,
            "--token",
            &admin,
            "--quiet",
        ];
        args.extend_from_slice(extra);
        args.push(&input_dir);
        let output = run(args);
        assert!(output.status.success(), "{}", common::describe(&output));
        String::from_utf8_lossy(&output.stdout).to_string()
    };
    let first = import(&[]);
    assert!(
        first.contains("4 objects: 4 imported, 0 already imported"),
        "{first}"
    );
    assert!(first.contains("1 dead letters"), "{first}");
    let flow_events = flows.text.lines().count() as u64 - 1 + 1;
    assert!(
        first.contains(&format!("{} events", 3 + flow_events + 60)),
        "{first}"
    );
    let second = import(&[]);
    assert!(
        second.contains("4 objects: 0 imported, 4 already imported"),
        "{second}"
    );
    assert!(second.contains(" 0 events, 0 dead letters"), "{second}");
    let groups = store.groups();
    assert_eq!(groups.get("aws/cloudtrail"), Some(&3), "{groups:?}");
    assert_eq!(groups.get("aws/vpcflow"), Some(&flow_events), "{groups:?}");
    assert_eq!(groups.get("aws/route53"), Some(&60), "{groups:?}");
    assert_eq!(groups.get("seclog/dead-letter"), Some(&1), "{groups:?}");

    wait_searchable(&server, &admin, "aws/cloudtrail", 3);
    wait_searchable(&server, &admin, "aws/vpcflow", flow_events);
    wait_searchable(&server, &admin, "aws/route53", 60);

    // The endpoint's refusals: no token, a token for other groups, a reader, an unknown format.
    let import_url = |query: &str| server.url(&format!("/api/v1/import?{query}"));
    let body = cloudtrail_file();
    let reply = post(
        &import_url("object=x.json&format=cloudtrail"),
        None,
        &[],
        body.as_bytes(),
    );
    assert_eq!(reply.status, 401, "{}", reply.text());
    let reply = post(
        &import_url("object=x.json&format=cloudtrail"),
        Some(&elsewhere),
        &[],
        body.as_bytes(),
    );
    assert_eq!(reply.status, 403, "{}", reply.text());
    let reply = post(
        &import_url("object=x.json&format=cloudtrail"),
        Some(&reader),
        &[],
        body.as_bytes(),
    );
    assert_eq!(reply.status, 403, "{}", reply.text());
    let reply = post(
        &import_url("object=notes.txt"),
        Some(&admin),
        &[],
        b"just some text\n",
    );
    assert_eq!(reply.status, 400, "{}", reply.text());
    assert_eq!(reply.error_code(), "unknown_format");
    let reply = post(
        &import_url("object=x.json&format=cloudtrail&group=seclog/audit"),
        Some(&admin),
        &[],
        body.as_bytes(),
    );
    assert_eq!(reply.status, 403, "{}", reply.text());
    assert_eq!(store.groups().get("aws/cloudtrail"), Some(&3));

    // Original names and OCSF names reach the same events.
    let rows = query(
        &server,
        &admin,
        "aws/cloudtrail",
        "filter class_uid = 3002 and status = \"Failure\" and is_mfa = \"false\" | fields eventName, user.name, src_endpoint.ip",
    );
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["eventName"], "ConsoleLogin");
    assert_eq!(rows[0]["user.name"], "mallory");
    assert_eq!(rows[0]["src_endpoint.ip"], "198.51.100.7");
    let rows = query(
        &server,
        &admin,
        "aws/cloudtrail",
        "filter api.operation = \"DeleteTrail\" and severity_id = 3 | fields errorCode, ocsf.resources.0.uid, resources.0.ARN",
    );
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["errorCode"], "AccessDenied");
    assert_eq!(
        rows[0]["ocsf.resources.0.uid"],
        "arn:aws:cloudtrail:us-east-1:111122223333:trail/main"
    );
    assert_eq!(rows[0]["resources.0.ARN"], rows[0]["ocsf.resources.0.uid"]);
    let rows = query(
        &server,
        &admin,
        "aws/cloudtrail",
        "filter activity_name = \"Read\" | fields actor.user.name",
    );
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["actor.user.name"], "reader");

    // VPC Flow Logs: the Insights documentation's sample queries, verbatim.
    let rows = query(
        &server,
        &admin,
        "aws/vpcflow",
        "stats sum(packets) as packetsTransferred by srcAddr, dstAddr | sort packetsTransferred desc | limit 15",
    );
    let mut expected: Vec<((String, String), u64)> = flows
        .packets_by_pair
        .iter()
        .map(|(pair, packets)| (pair.clone(), *packets))
        .collect();
    expected.push((("10.9.9.9".into(), "10.1.0.1".into()), 1));
    expected.sort_by_key(|entry| std::cmp::Reverse(entry.1));
    assert_eq!(rows.len(), 15);
    for (row, (_, packets)) in rows.iter().zip(&expected) {
        assert_eq!(
            row["packetsTransferred"].as_u64(),
            Some(*packets),
            "{rows:?}"
        );
        let pair = (
            row["srcAddr"].as_str().expect("srcAddr").to_string(),
            row["dstAddr"].as_str().expect("dstAddr").to_string(),
        );
        assert_eq!(flows.packets_by_pair.get(&pair), Some(packets), "{row}");
    }
    let rows = query(
        &server,
        &admin,
        "aws/vpcflow",
        "filter isIpv4InSubnet(srcAddr, \"192.0.2.0/24\") | stats sum(bytes) as bytesTransferred by dstAddr | sort bytesTransferred desc | limit 15",
    );
    assert_eq!(
        as_map(&rows, "dstAddr", "bytesTransferred"),
        flows.bytes_to_from_subnet
    );
    let rows = query(
        &server,
        &admin,
        "aws/vpcflow",
        "filter protocol=17 | stats count(*) by srcAddr",
    );
    assert_eq!(as_map(&rows, "srcAddr", "count(*)"), flows.udp_by_source);
    let rows = query(
        &server,
        &admin,
        "aws/vpcflow",
        "filter logStatus=\"SKIPDATA\" | stats count(*) by bin(1h) as t | sort t",
    );
    let skipped: u64 = rows.iter().filter_map(|row| row["count(*)"].as_u64()).sum();
    assert_eq!(skipped, flows.skipped, "{rows:?}");
    // The OCSF form of a REJECT, and the original `action` keeps its name.
    let rows = query(
        &server,
        &admin,
        "aws/vpcflow",
        "filter srcaddr = \"10.9.9.9\" | fields action, ocsf.action, disposition, dst_endpoint.port, class_uid",
    );
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["action"], "REJECT");
    assert_eq!(rows[0]["ocsf.action"], "Denied");
    assert_eq!(rows[0]["dst_endpoint.port"], 22);
    assert_eq!(rows[0]["class_uid"], 4001);

    // Route 53: the Insights documentation's sample queries, verbatim.
    let rows = query(
        &server,
        &admin,
        "aws/route53",
        "stats count(*) as numRequests by resolverIp | sort numRequests desc | limit 10",
    );
    assert_eq!(as_map(&rows, "resolverIp", "numRequests"), by_resolver);
    let rows = query(
        &server,
        &admin,
        "aws/route53",
        "filter responseCode=\"SERVFAIL\" | stats count(*) by queryName",
    );
    assert_eq!(as_map(&rows, "queryName", "count(*)"), servfail_by_name);
    let rows = query(
        &server,
        &admin,
        "aws/route53",
        "stats count(*) by queryType, bin(1h)",
    );
    let total: u64 = rows.iter().filter_map(|row| row["count(*)"].as_u64()).sum();
    assert_eq!(total, 60);
    assert_eq!(rows.len(), 2, "{rows:?}");

    // The dead letter keeps the line and says why.
    wait_searchable(&server, &admin, "seclog/dead-letter", 1);
    let dead = query(
        &server,
        &admin,
        "seclog/dead-letter",
        "fields @message, reason",
    );
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert!(
        dead[0]["reason"]
            .as_str()
            .is_some_and(|reason| reason.contains("line 3: expected 14 flow log fields, found 5")),
        "{dead:?}"
    );
}

#[test]
fn import_into_a_stopped_data_directory_resumes_nothing_twice() {
    let store = Store::new();
    store.init();
    let input = tempfile::tempdir().expect("tempdir");
    let file = input
        .path()
        .join("111122223333_CloudTrail_us-east-1_20240501T1000Z_abc.json");
    std::fs::write(&file, cloudtrail_file()).expect("write");
    // The same content under another name (and compressed) is the same object.
    gzip(&input.path().join("copy/again.json.gz"), &cloudtrail_file());
    let data = store.data_arg();
    let output = run([
        "import",
        "--data",
        data.as_str(),
        "--quiet",
        "--format",
        "cloudtrail",
        input.path().to_str().expect("path"),
    ]);
    assert!(output.status.success(), "{}", common::describe(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("2 objects: 1 imported, 1 already imported"),
        "{stdout}"
    );
    assert_eq!(store.groups().get("aws/cloudtrail"), Some(&3));
    let events = store.cat("aws/cloudtrail");
    assert_eq!(events.len(), 3);
    // Objects are imported a few at a time: whichever of the two names came first is the one
    // stored, once, for all three events.
    let source = events[0]["source"].as_str().unwrap_or_default().to_string();
    assert!(
        source.ends_with("_abc.json") || source.ends_with("again.json.gz"),
        "{source}"
    );
    assert!(
        events
            .iter()
            .all(|event| event["source"] == source.as_str()),
        "{events:?}"
    );
}

/// SIGKILL in the middle of a large import, then the same import again: every record is
/// stored exactly once (what of the batch in flight reached the journal is counted, not
/// repeated), and a third run stores nothing.
#[test]
fn an_import_killed_midway_resumes_without_losing_records() {
    let store = Store::new();
    store.init();
    let input = tempfile::tempdir().expect("tempdir");
    let records = 200_000u64;
    let output = run([
        "gen",
        "--format",
        "vpcflow",
        "--events",
        &records.to_string(),
        "--per-file",
        &records.to_string(),
        "--seed",
        "9",
        "--output",
        input.path().to_str().expect("path"),
    ]);
    assert!(output.status.success(), "{}", common::describe(&output));
    let data = store.data_arg();
    let input_arg = input.path().to_string_lossy().to_string();
    let mut child = common::seclog()
        .args(["import", "--data", &data, "--quiet", &input_arg])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("import starts");
    // Kill it once some but not all records are durable.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let stored = store.groups().get("aws/vpcflow").copied().unwrap_or(0);
        if stored > 0 {
            break;
        }
        assert!(
            child.try_wait().expect("try_wait").is_none(),
            "the import ended before it could be killed"
        );
        assert!(Instant::now() < deadline, "nothing stored");
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().expect("SIGKILL");
    child.wait().expect("wait");
    let after_kill = store.groups().get("aws/vpcflow").copied().unwrap_or(0);
    assert!(after_kill < records, "the import finished before the kill");

    let output = run(["import", "--data", &data, "--quiet", &input_arg]);
    assert!(output.status.success(), "{}", common::describe(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("1 objects: 1 imported"), "{stdout}");
    let stored = store.groups().get("aws/vpcflow").copied().unwrap_or(0);
    assert_eq!(
        stored, records,
        "{records} records, {stored} stored after the kill and the second run"
    );
    let output = run(["import", "--data", &data, "--quiet", &input_arg]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("0 imported, 1 already imported"),
        "{stdout}"
    );
    assert_eq!(store.groups().get("aws/vpcflow").copied(), Some(stored));
    // The journal is intact after the kill.
    let verify = store.verify(&[]);
    assert!(verify.status.success(), "{}", common::describe(&verify));
}
