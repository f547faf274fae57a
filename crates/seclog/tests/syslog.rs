//! Syslog listeners driven by real clients: logger(1) over UDP and TCP (octet counting and LF
//! framing), Python's `SysLogHandler` over UDP and TCP (NUL framing, no header), rsyslog
//! forwarding RFC 5424 over TLS with octet counting, and a Python TLS client with and without a
//! client certificate. Every message is read back from the journal with `seclog cat`.
//!
//! The clients are installed by `scripts/test` (which CI runs); a missing client fails the
//! test with the command that installs it.

mod common;

use std::io::Write;
use std::net::{TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Store, get};
use serde_json::Value;

fn require(tool: &str) -> PathBuf {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
            .map(|dir| dir.join(tool))
            .find(|path| path.is_file())
    });
    found.unwrap_or_else(|| {
        panic!("{tool} is not installed: run scripts/test (it installs the syslog clients)")
    })
}

fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .and_then(|socket| socket.local_addr())
        .expect("free UDP port")
        .port()
}

/// A CA, a server certificate for `localhost`, and a client certificate, as PEM files.
struct Certificates {
    ca: PathBuf,
    server_cert: PathBuf,
    server_key: PathBuf,
    client_cert: PathBuf,
    client_key: PathBuf,
}

fn certificates(dir: &Path) -> Certificates {
    use rcgen::{
        BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair,
        KeyUsagePurpose,
    };
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "seclog test CA");
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().expect("CA key"))
        .expect("CA certificate");
    let leaf = |name: &str| {
        let key = KeyPair::generate().expect("key");
        let mut params = CertificateParams::new(vec![name.to_string()]).expect("params");
        params.distinguished_name.push(DnType::CommonName, name);
        let cert = params.signed_by(&key, &ca).expect("certificate");
        (cert.pem(), key.serialize_pem())
    };
    let (server_cert, server_key) = leaf("localhost");
    let (client_cert, client_key) = leaf("client.example");
    let write = |name: &str, text: &str| {
        let path = dir.join(name);
        std::fs::write(&path, text).expect("write PEM");
        path
    };
    Certificates {
        ca: write("ca.pem", &ca.pem()),
        server_cert: write("server.pem", &server_cert),
        server_key: write("server.key", &server_key),
        client_cert: write("client.pem", &client_cert),
        client_key: write("client.key", &client_key),
    }
}

/// Waits until `group` holds at least `count` events, and returns them.
fn wait_for(store: &Store, group: &str, count: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let has_group = store.groups().contains_key(group);
        if has_group {
            let events = store.cat(group);
            if events.len() >= count || Instant::now() > deadline {
                return events;
            }
        } else if Instant::now() > deadline {
            return Vec::new();
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn run_client(command: &mut Command) {
    let output = command.output().expect("client runs");
    assert!(
        output.status.success(),
        "{command:?} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

fn messages(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|event| {
            event["attrs"]["message"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect()
}

fn metric(metrics: &str, name: &str, listener: &str) -> u64 {
    let prefix = format!("{name}{{listener=\"{listener}\"}} ");
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(&prefix))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {prefix} in\n{metrics}"))
}

const PYTHON_SYSLOG: &str = r#"
import logging, logging.handlers, socket, sys
port, kind = int(sys.argv[1]), sys.argv[2]
handler = logging.handlers.SysLogHandler(
    address=("127.0.0.1", port),
    socktype=socket.SOCK_STREAM if kind == "tcp" else socket.SOCK_DGRAM,
)
log = logging.getLogger("seclog-test-" + kind)
log.addHandler(handler)
log.setLevel(logging.INFO)
for index in range(50):
    log.warning("python %s message %d", kind, index)
handler.close()
"#;

#[test]
fn real_syslog_clients_reach_the_journal() {
    let logger = require("logger");
    let rsyslogd = require("rsyslogd");
    let store = Store::new();
    store.init();
    let certs = certificates(&store.logs());
    let (udp, tcp, tls) = (free_udp_port(), common::free_port(), common::free_port());
    let mut server = store.serve(&[
        "--syslog-udp",
        &format!("127.0.0.1:{udp}"),
        "--syslog-tcp",
        &format!("127.0.0.1:{tcp}"),
        "--syslog-tls",
        &format!("127.0.0.1:{tls}"),
        "--tls-cert",
        certs.server_cert.to_str().expect("path"),
        "--tls-key",
        certs.server_key.to_str().expect("path"),
    ]);

    // logger(1): RFC 5424 over UDP, octet-counted RFC 5424 over TCP, LF-framed RFC 3164 over TCP.
    run_client(Command::new(&logger).args([
        "--rfc5424",
        "-d",
        "-n",
        "127.0.0.1",
        "-P",
        &udp.to_string(),
        "-t",
        "app-udp",
        "-p",
        "auth.warning",
        "--msgid",
        "LOGIN",
        "hello over udp",
    ]));
    run_client(Command::new(&logger).args([
        "--rfc5424",
        "-T",
        "--octet-count",
        "-n",
        "127.0.0.1",
        "-P",
        &tcp.to_string(),
        "-t",
        "app-tcp",
        "--sd-id",
        "origin",
        "--sd-param",
        "ip=\"10.1.2.3\"",
        "hello over tcp",
    ]));
    run_client(Command::new(&logger).args([
        "--rfc3164",
        "-T",
        "-n",
        "127.0.0.1",
        "-P",
        &tcp.to_string(),
        "-t",
        "app-3164",
        "hello in 3164",
    ]));
    // Python's SysLogHandler: `<PRI>message\0`, no header, over UDP and TCP.
    for (kind, port) in [("udp", udp), ("tcp", tcp)] {
        run_client(Command::new("python3").args(["-c", PYTHON_SYSLOG, &port.to_string(), kind]));
    }

    // rsyslog: receives on its own UDP port and forwards RFC 5424 over TLS, octet counted.
    let (mut rsyslog, rsyslog_in) =
        start_rsyslog(&rsyslogd, &store.logs().join("rsyslog"), tls, &certs, false);
    for index in 0..20 {
        send_through_rsyslog(
            &logger,
            rsyslog_in,
            "app-rsyslog",
            &format!("via rsyslog over tls {index}"),
        );
    }

    let udp_events = wait_for(&store, "syslog/app-udp", 1);
    assert_eq!(messages(&udp_events), ["hello over udp"]);
    let event = &udp_events[0];
    assert_eq!(event["attrs"]["facility"], "auth");
    assert_eq!(event["attrs"]["severity"], "warning");
    assert_eq!(event["attrs"]["msgid"], "LOGIN");
    assert_eq!(event["attrs"]["transport"], "udp");
    assert_eq!(event["source"], "syslog-udp:127.0.0.1");
    assert!(
        event["message"]
            .as_str()
            .unwrap_or_default()
            .starts_with("<36>1 "),
        "raw frame kept: {event}"
    );

    let tcp_events = wait_for(&store, "syslog/app-tcp", 1);
    assert_eq!(messages(&tcp_events), ["hello over tcp"]);
    assert_eq!(tcp_events[0]["attrs"]["sd"]["origin"]["ip"], "10.1.2.3");

    let rfc3164 = wait_for(&store, "syslog/app-3164", 1);
    assert_eq!(messages(&rfc3164), ["hello in 3164"]);

    let python = wait_for(&store, "syslog/unknown", 100);
    let mut python_messages = messages(&python);
    python_messages.sort();
    let mut expected: Vec<String> = ["udp", "tcp"]
        .iter()
        .flat_map(|kind| (0..50).map(move |index| format!("python {kind} message {index}")))
        .collect();
    expected.sort();
    assert_eq!(python_messages, expected);
    assert!(
        python
            .iter()
            .all(|event| event["attrs"]["severity"] == "warning")
    );

    let forwarded = wait_for(&store, "syslog/app-rsyslog", 20);
    let mut forwarded_messages = messages(&forwarded);
    forwarded_messages.sort_by_key(|text| {
        text.rsplit(' ')
            .next()
            .and_then(|n| n.parse::<u32>().ok())
            .unwrap_or(u32::MAX)
    });
    let expected: Vec<String> = (0..20)
        .map(|i| format!("via rsyslog over tls {i}"))
        .collect();
    assert_eq!(
        forwarded_messages,
        expected,
        "rsyslog stderr: {}",
        std::fs::read_to_string(store.logs().join("rsyslog/stderr")).unwrap_or_default()
    );
    assert!(
        forwarded
            .iter()
            .all(|event| event["attrs"]["transport"] == "tls")
    );
    rsyslog.stop();

    // Raw frames: an oversized one is refused and skipped, the stream stays in step, and
    // sequenceId gaps are counted.
    let mut stream = TcpStream::connect(("127.0.0.1", tcp)).expect("connect");
    let huge = vec![b'x'; 300 * 1024];
    let mut bytes = format!("{} ", huge.len()).into_bytes();
    bytes.extend_from_slice(&huge);
    for sequence in [1, 2, 5] {
        let frame = format!(
            "<13>1 2026-11-27T10:00:00Z host app-seq - - [meta sequenceId=\"{sequence}\"] number {sequence}"
        );
        bytes.extend_from_slice(format!("{} {frame}", frame.len()).as_bytes());
    }
    stream.write_all(&bytes).expect("send frames");
    drop(stream);
    let sequenced = wait_for(&store, "syslog/app-seq", 3);
    assert_eq!(messages(&sequenced), ["number 1", "number 2", "number 5"]);
    let dead = wait_for(&store, "seclog/dead-letter", 1);
    assert!(
        dead.iter().any(|event| event["attrs"]["reason"]
            .as_str()
            .is_some_and(|reason| reason.contains("exceeds the limit"))),
        "dead letters: {dead:?}"
    );

    let metrics = String::from_utf8(get(&server.url("/metrics"), None).body).expect("UTF-8");
    assert_eq!(
        metric(&metrics, "seclog_syslog_sequence_gaps_total", "syslog_tcp"),
        2
    );
    assert_eq!(metric(&metrics, "seclog_accepted_total", "syslog_udp"), 51);
    assert_eq!(metric(&metrics, "seclog_rejected_total", "syslog_tcp"), 1);
    assert_eq!(metric(&metrics, "seclog_accepted_total", "syslog_tls"), 20);
    assert_eq!(metric(&metrics, "seclog_dropped_total", "syslog_udp"), 0);
    server.stop_ok();
}

const PYTHON_TLS: &str = r#"
import socket, ssl, sys
port, ca = int(sys.argv[1]), sys.argv[2]
context = ssl.create_default_context(cafile=ca)
if len(sys.argv) > 3:
    context.load_cert_chain(sys.argv[3], sys.argv[4])
frame = b"<13>1 2026-11-27T10:00:00Z host app-mtls - - - with a client certificate"
try:
    with socket.create_connection(("127.0.0.1", port), timeout=3) as raw:
        with context.wrap_socket(raw, server_hostname="localhost") as tls:
            tls.sendall(str(len(frame)).encode() + b" " + frame)
            try:
                tls.recv(1)
            except socket.timeout:
                sys.exit(0)  # still open: the server admitted us and is reading
            print("refused: the server closed the connection")
            sys.exit(3)
except (ssl.SSLError, ConnectionError, OSError) as error:
    print("refused:", error)
    sys.exit(3)
"#;

#[test]
fn tls_client_certificates_and_the_allow_list() {
    let store = Store::new();
    store.init();
    let certs = certificates(&store.logs());
    let (tcp, tls) = (common::free_port(), common::free_port());
    // The listeners come from a configuration file; loopback is not allowed, so only the
    // certificate admits a sender.
    let config = store.logs().join("seclog.toml");
    std::fs::write(
        &config,
        format!(
            "syslog-tcp = \"127.0.0.1:{tcp}\"\nsyslog-tls = \"127.0.0.1:{tls}\"\ntls-cert = {:?}\ntls-key = {:?}\ntls-client-ca = {:?}\nsyslog-allow = [\"10.0.0.0/8\"]\n",
            certs.server_cert.to_str().expect("path"),
            certs.server_key.to_str().expect("path"),
            certs.ca.to_str().expect("path"),
        ),
    )
    .expect("write config");
    let mut server = store.serve(&["--config", config.to_str().expect("path")]);
    let ca = certs.ca.to_str().expect("path");
    let without = Command::new("python3")
        .args(["-c", PYTHON_TLS, &tls.to_string(), ca])
        .output()
        .expect("python runs");
    assert!(
        !without.status.success(),
        "a client without a certificate was admitted: {}",
        String::from_utf8_lossy(&without.stdout)
    );
    let with = Command::new("python3")
        .args([
            "-c",
            PYTHON_TLS,
            &tls.to_string(),
            ca,
            certs.client_cert.to_str().expect("path"),
            certs.client_key.to_str().expect("path"),
        ])
        .output()
        .expect("python runs");
    assert!(
        with.status.success(),
        "a client with a certificate was refused: {}",
        String::from_utf8_lossy(&with.stdout)
    );
    let events = wait_for(&store, "syslog/app-mtls", 1);
    assert_eq!(
        messages(&events),
        ["with a client certificate"],
        "client output: {}{}",
        String::from_utf8_lossy(&with.stdout),
        String::from_utf8_lossy(&with.stderr)
    );

    // rsyslog with the client certificate is admitted; rsyslog without one is not.
    let logger = require("logger");
    let rsyslogd = require("rsyslogd");
    let (mut without_cert, without_in) = start_rsyslog(
        &rsyslogd,
        &store.logs().join("rsyslog-plain"),
        tls,
        &certs,
        false,
    );
    let (mut with_cert, with_in) = start_rsyslog(
        &rsyslogd,
        &store.logs().join("rsyslog-mtls"),
        tls,
        &certs,
        true,
    );
    for index in 0..5 {
        send_through_rsyslog(
            &logger,
            without_in,
            "rsyslog-nocert",
            &format!("no certificate {index}"),
        );
        send_through_rsyslog(
            &logger,
            with_in,
            "rsyslog-cert",
            &format!("client certificate {index}"),
        );
    }
    let events = wait_for(&store, "syslog/rsyslog-cert", 5);
    assert_eq!(
        messages(&events),
        (0..5)
            .map(|i| format!("client certificate {i}"))
            .collect::<Vec<_>>(),
        "rsyslog stderr: {}",
        std::fs::read_to_string(store.logs().join("rsyslog-mtls/stderr")).unwrap_or_default()
    );
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        !store.groups().contains_key("syslog/rsyslog-nocert"),
        "rsyslog without a client certificate got through"
    );
    without_cert.stop();
    with_cert.stop();

    // Plain TCP from loopback is outside the allow-list: the connection is dropped unread.
    let mut stream = TcpStream::connect(("127.0.0.1", tcp)).expect("connect");
    let _ = stream.write_all(b"5 <13>x");
    drop(stream);
    std::thread::sleep(Duration::from_millis(500));
    let metrics = String::from_utf8(get(&server.url("/metrics"), None).body).expect("UTF-8");
    assert!(metric(&metrics, "seclog_refused_connections_total", "syslog_tls") >= 1);
    assert_eq!(
        metric(&metrics, "seclog_refused_connections_total", "syslog_tcp"),
        1
    );
    assert_eq!(metric(&metrics, "seclog_received_total", "syslog_tcp"), 0);
    server.stop_ok();
    assert!(!store.groups().contains_key("syslog/unknown"));
}

/// Starts rsyslogd receiving on a UDP port of its own (returned) and forwarding RFC 5424 over
/// TLS (octet counted) to `tls_port`, checking the server's certificate against the test CA,
/// and presenting the test client certificate when `client_certificate`.
fn start_rsyslog(
    rsyslogd: &Path,
    dir: &Path,
    tls_port: u16,
    certs: &Certificates,
    client_certificate: bool,
) -> (RsyslogGuard, u16) {
    std::fs::create_dir_all(dir).expect("rsyslog dir");
    let udp_in = free_udp_port();
    let client = if client_certificate {
        format!(
            r#" defaultNetstreamDriverCertFile="{}" defaultNetstreamDriverKeyFile="{}""#,
            certs.client_cert.display(),
            certs.client_key.display()
        )
    } else {
        String::new()
    };
    let config = format!(
        r#"global(workDirectory="{work}" defaultNetstreamDriver="gtls" defaultNetstreamDriverCAFile="{ca}"{client})
module(load="imudp")
input(type="imudp" address="127.0.0.1" port="{udp_in}")
action(type="omfwd" target="127.0.0.1" port="{tls_port}" protocol="tcp"
       StreamDriver="gtls" StreamDriverMode="1" StreamDriverAuthMode="x509/name"
       StreamDriverPermittedPeers="localhost" TCP_Framing="octet-counted"
       template="RSYSLOG_SyslogProtocol23Format")
"#,
        work = dir.display(),
        ca = certs.ca.display(),
    );
    let config_path = dir.join("rsyslog.conf");
    std::fs::write(&config_path, config).expect("rsyslog config");
    let guard = RsyslogGuard(
        Command::new(rsyslogd)
            .args(["-n", "-f"])
            .arg(&config_path)
            .arg("-i")
            .arg(dir.join("rsyslogd.pid"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("stderr")).expect("stderr"))
            .spawn()
            .expect("rsyslogd starts"),
    );
    std::thread::sleep(Duration::from_secs(1));
    (guard, udp_in)
}

/// One RFC 5424 message from logger(1) to rsyslog's UDP input.
fn send_through_rsyslog(logger: &Path, port: u16, tag: &str, message: &str) {
    run_client(Command::new(logger).args([
        "--rfc5424",
        "-d",
        "-n",
        "127.0.0.1",
        "-P",
        &port.to_string(),
        "-t",
        tag,
        message,
    ]));
}

/// Stops rsyslogd when the test ends, however it ends.
struct RsyslogGuard(Child);

impl RsyslogGuard {
    fn stop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for RsyslogGuard {
    fn drop(&mut self) {
        self.stop();
    }
}
