//! Import from S3 against `moto_server` (PyPI `moto[server]`, started here on 127.0.0.1):
//! objects uploaded with boto3 in the real `AWSLogs/…` layout (gzip) are imported by
//! `s3://` URL, a second import stores nothing new, and an object added later is picked up by
//! `serve --watch`.

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Store, free_port, require_python, run};
use serde_json::json;

const CREDENTIALS: [(&str, &str); 3] = [
    ("AWS_ACCESS_KEY_ID", "testing"),
    ("AWS_SECRET_ACCESS_KEY", "testing"),
    ("AWS_REGION", "us-east-1"),
];

/// `moto_server` on a free port, stopped on drop.
struct Moto {
    child: Child,
    endpoint: String,
}

impl Moto {
    fn start() -> Moto {
        let port = free_port();
        let child = Command::new("python3")
            .args([
                "-m",
                "moto.server",
                "-H",
                "127.0.0.1",
                "-p",
                &port.to_string(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("moto_server starts");
        let endpoint = format!("http://127.0.0.1:{port}");
        let agent = common::agent(Duration::from_secs(1));
        let deadline = Instant::now() + Duration::from_secs(30);
        while agent.get(&endpoint).call().is_err() {
            assert!(Instant::now() < deadline, "moto_server did not answer");
            std::thread::sleep(Duration::from_millis(100));
        }
        Moto { child, endpoint }
    }

    /// Uploads `body` gzip-compressed as `key` with boto3.
    fn upload(&self, bucket: &str, key: &str, body: &str) {
        let script = r#"
import boto3, gzip, sys
s3 = boto3.client("s3", endpoint_url=sys.argv[1], region_name="us-east-1",
                  aws_access_key_id="testing", aws_secret_access_key="testing")
if sys.argv[2] not in [b["Name"] for b in s3.list_buckets().get("Buckets", [])]:
    s3.create_bucket(Bucket=sys.argv[2])
s3.put_object(Bucket=sys.argv[2], Key=sys.argv[3], Body=gzip.compress(sys.stdin.buffer.read()))
"#;
        let mut child = Command::new("python3")
            .args(["-c", script, &self.endpoint, bucket, key])
            .stdin(Stdio::piped())
            .spawn()
            .expect("python3 runs");
        std::io::Write::write_all(child.stdin.as_mut().expect("stdin"), body.as_bytes())
            .expect("write");
        drop(child.stdin.take());
        assert!(
            child.wait().expect("wait").success(),
            "boto3 upload of {key}"
        );
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn trail_file(names: &[&str], hour: u32) -> String {
    let records: Vec<_> = names
        .iter()
        .enumerate()
        .map(|(n, name)| {
            json!({"eventVersion": "1.09", "eventTime": format!("2024-05-01T{hour:02}:{n:02}:00Z"),
                   "eventSource": "iam.amazonaws.com", "eventName": name, "awsRegion": "us-east-1",
                   "sourceIPAddress": "203.0.113.4", "userIdentity": {"type": "IAMUser", "userName": "ops"},
                   "eventID": format!("{hour}-{n}"), "recipientAccountId": "111122223333"})
        })
        .collect();
    json!({ "Records": records }).to_string()
}

fn import(server: &common::Server, token: &str, endpoint: &str, url: &str) -> String {
    let mut command = common::seclog();
    command
        .args([
            "import",
            "--server",
            &server.base,
            "--token",
            token,
            "--quiet",
        ])
        .args(["--s3-endpoint", endpoint, url])
        .envs(CREDENTIALS);
    let output = command.output().expect("seclog import runs");
    assert!(output.status.success(), "{}", common::describe(&output));
    String::from_utf8_lossy(&output.stdout).to_string()
}

fn count(store_data: &Path, group: &str) -> u64 {
    let data = store_data.to_string_lossy().to_string();
    let output = run(["groups", "--data", &data]);
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .find_map(|line| {
            let (name, n) = line.rsplit_once(' ')?;
            (name == group).then(|| n.parse().ok()).flatten()
        })
        .unwrap_or(0)
}

fn wait_for(store: &Store, group: &str, expected: u64) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let n = count(&store.data(), group);
        if n == expected {
            return;
        }
        assert!(n < expected, "{group}: {n} events, more than {expected}");
        assert!(
            Instant::now() < deadline,
            "{group}: {n} of {expected} events"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

#[test]
fn bucket_imports_once_and_the_watcher_picks_up_new_objects() {
    require_python("import moto.server, boto3", "moto[server] and boto3");
    let moto = Moto::start();
    let prefix = "AWSLogs/111122223333/CloudTrail/us-east-1/2024/05/01/";
    moto.upload(
        "trail",
        &format!("{prefix}111122223333_CloudTrail_us-east-1_20240501T1000Z_a1.json.gz"),
        &trail_file(&["CreateUser", "AttachUserPolicy", "CreateAccessKey"], 10),
    );
    moto.upload(
        "trail",
        &format!("{prefix}111122223333_CloudTrail_us-east-1_20240501T1100Z_b2.json.gz"),
        &trail_file(&["ListUsers"], 11),
    );

    let store = Store::new();
    let admin = store.init();
    let server = common::Server::start_with_env(&store.data(), &store.logs(), &[], &CREDENTIALS);
    let first = import(&server, &admin, &moto.endpoint, "s3://trail/AWSLogs/");
    assert!(first.contains("2 objects: 2 imported"), "{first}");
    assert!(first.contains(" 4 events, 0 dead letters"), "{first}");
    let second = import(&server, &admin, &moto.endpoint, "s3://trail/AWSLogs/");
    assert!(
        second.contains("2 objects: 0 imported, 2 already imported"),
        "{second}"
    );
    assert_eq!(count(&store.data(), "aws/cloudtrail"), 4);
    drop(server);

    // The watcher: what is stored is not stored again; what lands later is picked up.
    let endpoint = moto.endpoint.clone();
    let server = common::Server::start_with_env(
        &store.data(),
        &store.logs(),
        &[
            "--watch",
            "s3://trail/AWSLogs/",
            "--watch-interval-secs",
            "1",
            "--s3-endpoint",
            &endpoint,
        ],
        &CREDENTIALS,
    );
    moto.upload(
        "trail",
        &format!("{prefix}111122223333_CloudTrail_us-east-1_20240501T1200Z_c3.json.gz"),
        &trail_file(&["DeleteTrail", "StopLogging"], 12),
    );
    moto.upload(
        "trail",
        "AWSLogs/111122223333/vpcflowlogs/us-east-1/2024/05/01/111122223333_vpcflowlogs_us-east-1_fl-1_20240501T1200Z_d4.log.gz",
        "version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status\n\
         2 111122223333 eni-1 10.0.0.1 10.0.0.2 40000 22 6 3 180 1714564800 1714564860 REJECT OK\n",
    );
    wait_for(&store, "aws/cloudtrail", 6);
    wait_for(&store, "aws/vpcflow", 1);
    // Two more listings: nothing is imported twice.
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(count(&store.data(), "aws/cloudtrail"), 6);
    assert_eq!(count(&store.data(), "aws/vpcflow"), 1);
    let third = import(&server, &admin, &moto.endpoint, "s3://trail/AWSLogs/");
    assert!(
        third.contains("4 objects: 0 imported, 4 already imported"),
        "{third}"
    );
    let metrics = common::get(&server.url("/metrics"), None).text();
    assert!(metrics.contains("s3_watch"), "{metrics}");
}
