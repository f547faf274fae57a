//! Who may call what, end to end on the real binary: every route of the router with no token,
//! a wrong token and each role; group scopes; what auditors may see; the access log of reads,
//! admin actions and refusals; and a source that keeps presenting wrong tokens being slowed
//! and raised as a finding.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use common::{Reply, Server, Store, agent, now_rfc3339, try_send};
use serde_json::{Value, json};

/// How a route's clients present a token.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Presents {
    Bearer,
    ApiKey,
    Splunk,
    Basic,
    FirehoseKey,
}

impl Presents {
    fn headers(self, token: &str) -> Vec<(String, String)> {
        let (name, value) = match self {
            Presents::Bearer => ("Authorization", format!("Bearer {token}")),
            Presents::ApiKey => (
                "Authorization",
                format!("ApiKey {}", B64.encode(format!("matrix:{token}"))),
            ),
            Presents::Splunk => ("Authorization", format!("Splunk {token}")),
            Presents::Basic => (
                "Authorization",
                format!("Basic {}", B64.encode(format!("matrix:{token}"))),
            ),
            Presents::FirehoseKey => ("X-Amz-Firehose-Access-Key", token.to_string()),
        };
        vec![(name.to_string(), value)]
    }

    /// A wrong token is 401, except in Splunk HEC, which answers an unknown token 403.
    fn wrong_token_status(self) -> u16 {
        if self == Presents::Splunk { 403 } else { 401 }
    }
}

/// Who may call a route, written here from the documented rules (docs/api.md), not read
/// from the server: the test fails if the router and this table disagree.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Who {
    Anyone,
    AnyToken,
    Ingest,
    /// Readers and admins covering the group; auditors refused (log content).
    ReadContent,
    /// Readers, auditors (sealed bundles, their own view) and admins.
    ReadAny,
    Audit,
    Admin,
}

impl Who {
    fn allows(self, role: &str) -> bool {
        match self {
            Who::Anyone | Who::AnyToken => true,
            Who::Ingest => matches!(role, "ingest" | "admin"),
            Who::ReadContent => matches!(role, "reader" | "admin"),
            Who::ReadAny => matches!(role, "reader" | "auditor" | "admin"),
            Who::Audit => matches!(role, "auditor" | "admin"),
            Who::Admin => role == "admin",
        }
    }
}

/// One concrete request for a route.
struct Probe {
    method: &'static str,
    path: String,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
    success: u16,
}

struct RouteCase {
    method: &'static str,
    pattern: &'static str,
    who: Who,
    presents: Presents,
    probes: Vec<Probe>,
}

fn probe(method: &'static str, path: &str, body: &[u8], success: u16) -> Probe {
    Probe {
        method,
        path: path.to_string(),
        headers: Vec::new(),
        body: body.to_vec(),
        success,
    }
}

fn with_header(mut probe: Probe, name: &'static str, value: &str) -> Probe {
    probe.headers.push((name, value.to_string()));
    probe
}

fn json_probe(method: &'static str, path: &str, body: &Value, success: u16) -> Probe {
    with_header(
        probe(method, path, body.to_string().as_bytes(), success),
        "Content-Type",
        "application/json",
    )
}

fn cases(throwaway_id: &str) -> Vec<RouteCase> {
    use Presents::{ApiKey, Basic, Bearer, FirehoseKey, Splunk};
    use Who::{Admin, AnyToken, Anyone, Audit, Ingest, ReadAny, ReadContent};
    let now = now_rfc3339();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_nanos()
        .to_string();
    let bulk = b"{\"index\":{\"_index\":\"app-matrix\"}}\n{\"message\":\"bulk\"}\n".to_vec();
    let ndjson = |probe: Probe| with_header(probe, "Content-Type", "application/x-ndjson");
    let firehose = with_header(
        json_probe(
            "POST",
            "/api/v1/firehose",
            &json!({
                "requestId": "matrix-1",
                "timestamp": 1_700_000_000_000_i64,
                "records": [{ "data": B64.encode(b"{\"message\":\"firehose\"}") }],
            }),
            200,
        ),
        "X-Amz-Firehose-Request-Id",
        "matrix-1",
    );
    let loki =
        json!({ "streams": [{ "stream": { "job": "matrix" }, "values": [[nanos, "loki line"]] }] });
    let otlp = json!({ "resourceLogs": [{
        "resource": { "attributes": [{ "key": "service.name", "value": { "stringValue": "matrix" } }] },
        "scopeLogs": [{ "logRecords": [{ "timeUnixNano": nanos, "body": { "stringValue": "otlp" } }] }],
    }] });
    let query = json!({ "query": "fields @timestamp | limit 1", "groups": ["app/matrix"], "start": "2020-01-01T00:00:00Z" });
    let hunt = json!({ "groups": ["app/*"], "anomalies": false });
    let case = |method, pattern, who, presents, probes| RouteCase {
        method,
        pattern,
        who,
        presents,
        probes,
    };
    vec![
        case("GET", "/healthz", Anyone, Bearer, vec![probe("GET", "/healthz", b"", 200)]),
        case("GET", "/metrics", Anyone, Bearer, vec![probe("GET", "/metrics", b"", 200)]),
        case("GET", "/", AnyToken, ApiKey, vec![probe("GET", "/", b"", 200)]),
        case("POST", "/_bulk", Ingest, ApiKey, vec![ndjson(probe("POST", "/_bulk", &bulk, 200))]),
        case("PUT", "/_bulk", Ingest, ApiKey, vec![ndjson(probe("PUT", "/_bulk", &bulk, 200))]),
        case(
            "POST",
            "/{index}/_bulk",
            Ingest,
            ApiKey,
            vec![ndjson(probe("POST", "/app-matrix/_bulk", b"{\"index\":{}}\n{\"m\":1}\n", 200))],
        ),
        case(
            "PUT",
            "/{index}/_bulk",
            Ingest,
            ApiKey,
            vec![ndjson(probe("PUT", "/app-matrix/_bulk", b"{\"index\":{}}\n{\"m\":1}\n", 200))],
        ),
        case("POST", "/api/v1/firehose", Ingest, FirehoseKey, vec![firehose]),
        case(
            "POST",
            "/loki/api/v1/push",
            Ingest,
            Basic,
            vec![json_probe("POST", "/loki/api/v1/push", &loki, 204)],
        ),
        case("POST", "/v1/logs", Ingest, Bearer, vec![json_probe("POST", "/v1/logs", &otlp, 200)]),
        case(
            "POST",
            "/services/collector",
            Ingest,
            Splunk,
            vec![probe("POST", "/services/collector", b"{\"event\":\"hec\"}", 200)],
        ),
        case(
            "POST",
            "/services/collector/event",
            Ingest,
            Splunk,
            vec![probe("POST", "/services/collector/event", b"{\"event\":\"hec\"}", 200)],
        ),
        case(
            "POST",
            "/services/collector/event/1.0",
            Ingest,
            Splunk,
            vec![probe("POST", "/services/collector/event/1.0", b"{\"event\":\"hec\"}", 200)],
        ),
        case(
            "POST",
            "/services/collector/raw",
            Ingest,
            Splunk,
            vec![probe("POST", "/services/collector/raw", b"raw line", 200)],
        ),
        case(
            "POST",
            "/services/collector/raw/1.0",
            Ingest,
            Splunk,
            vec![probe("POST", "/services/collector/raw/1.0", b"raw line", 200)],
        ),
        case(
            "GET",
            "/services/collector/health",
            Anyone,
            Splunk,
            vec![probe("GET", "/services/collector/health", b"", 200)],
        ),
        case(
            "GET",
            "/services/collector/health/1.0",
            Anyone,
            Splunk,
            vec![probe("GET", "/services/collector/health/1.0", b"", 200)],
        ),
        case(
            "POST",
            "/api/v1/ingest/{*group}",
            Ingest,
            Bearer,
            vec![json_probe("POST", "/api/v1/ingest/app/matrix", &json!({ "message": "native", "time": now }), 200)],
        ),
        case(
            "POST",
            "/api/v1/import",
            Ingest,
            Bearer,
            vec![probe(
                "POST",
                "/api/v1/import?object=s3://matrix/access.log&format=combined&group=web/matrix",
                b"192.0.2.1 - - [10/Oct/2026:13:55:36 +0000] \"GET / HTTP/1.1\" 200 2326 \"-\" \"curl/8\"\n",
                200,
            )],
        ),
        case("GET", "/api/v1/status", AnyToken, Bearer, vec![probe("GET", "/api/v1/status", b"", 200)]),
        case("GET", "/api/v1/alerts", ReadAny, Bearer, vec![probe("GET", "/api/v1/alerts", b"", 200)]),
        case("GET", "/api/v1/checkpoint", Audit, Bearer, vec![probe("GET", "/api/v1/checkpoint", b"", 200)]),
        case(
            "PUT",
            "/api/v1/retention/{*group}",
            Admin,
            Bearer,
            vec![json_probe("PUT", "/api/v1/retention/app/matrix", &json!({ "days": 400 }), 200)],
        ),
        case("GET", "/api/v1/retention", Admin, Bearer, vec![probe("GET", "/api/v1/retention", b"", 200)]),
        case(
            "PUT",
            "/api/v1/holds/{*group}",
            Admin,
            Bearer,
            vec![json_probe("PUT", "/api/v1/holds/app/matrix", &json!({ "reason": "matrix" }), 200)],
        ),
        // The admin (first of the roles) releases the hold placed above.
        case("DELETE", "/api/v1/holds/{*group}", Admin, Bearer, vec![probe("DELETE", "/api/v1/holds/app/matrix", b"", 200)]),
        case("GET", "/api/v1/clock", Audit, Bearer, vec![probe("GET", "/api/v1/clock", b"", 200)]),
        case(
            "POST",
            "/api/v1/clock",
            Admin,
            Bearer,
            vec![json_probe("POST", "/api/v1/clock", &json!({ "confirm": true }), 200)],
        ),
        case(
            "POST",
            "/api/v1/tokens",
            Admin,
            Bearer,
            vec![json_probe("POST", "/api/v1/tokens", &json!({ "role": "reader", "groups": "app/*", "expires": "1d" }), 201)],
        ),
        case("GET", "/api/v1/tokens", Admin, Bearer, vec![probe("GET", "/api/v1/tokens", b"", 200)]),
        case(
            "DELETE",
            "/api/v1/tokens/{id}",
            Admin,
            Bearer,
            vec![probe("DELETE", &format!("/api/v1/tokens/{throwaway_id}"), b"", 200)],
        ),
        case("POST", "/api/v1/query", ReadContent, Bearer, vec![json_probe("POST", "/api/v1/query", &query, 200)]),
        case(
            "POST",
            "/api/v1/query/histogram",
            ReadContent,
            Bearer,
            vec![json_probe("POST", "/api/v1/query/histogram", &query, 200)],
        ),
        // Without groups a hunt covers what the token may read: for an auditor, seclog/access.
        case("POST", "/api/v1/hunt", ReadAny, Bearer, vec![json_probe("POST", "/api/v1/hunt", &hunt, 200)]),
        case(
            "GET",
            "/api/v1/groups/{*rest}",
            ReadContent,
            Bearer,
            vec![
                probe("GET", "/api/v1/groups/app/matrix/fields", b"", 200),
                probe("GET", "/api/v1/groups/app/matrix/events?from=0&limit=5", b"", 200),
            ],
        ),
    ]
}

fn send(base: &str, probe: &Probe, credentials: &[(String, String)]) -> Reply {
    let mut headers: Vec<(&str, &str)> = probe
        .headers
        .iter()
        .map(|(name, value)| (*name, value.as_str()))
        .collect();
    headers.extend(
        credentials
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_str())),
    );
    try_send(
        &agent(Duration::from_secs(60)),
        probe.method,
        &format!("{base}{}", probe.path),
        &headers,
        &probe.body,
    )
    .unwrap_or_else(|error| panic!("{} {} failed: {error}", probe.method, probe.path))
}

fn api(
    server: &Server,
    method: &'static str,
    path: &str,
    token: &str,
    body: Option<&Value>,
) -> Reply {
    let probe = match body {
        Some(body) => json_probe(method, path, body, 0),
        None => probe(method, path, b"", 0),
    };
    send(&server.base, &probe, &Presents::Bearer.headers(token))
}

/// Every route of the router, with no token, a wrong token and each role: the status is the
/// one the documented rule gives. A route added to the router without a row here fails.
#[test]
fn every_route_answers_each_role_as_its_rule_says() {
    let store = Store::new();
    let admin = store.init();
    let mut tokens = BTreeMap::new();
    for role in ["ingest", "reader", "auditor"] {
        tokens.insert(role, store.create_token(role, "*"));
    }
    tokens.insert("admin", admin.clone());
    // Wrong tokens are counted per address; this walk presents many on purpose.
    let server = store.serve(&["--auth-free-failures", "100000"]);
    let seeded = server.ingest_ok(&admin, "app/matrix", br#"{"message":"seed"}"#);
    assert_eq!(seeded["accepted"], 1, "{seeded}");
    std::thread::sleep(Duration::from_millis(1500));

    let router: BTreeSet<(String, String)> = seclog_server::routes::route_rules()
        .iter()
        .map(|rule| (rule.method.as_str().to_string(), rule.path.to_string()))
        .collect();
    let throwaway = |server: &Server| -> String {
        let reply = api(
            server,
            "POST",
            "/api/v1/tokens",
            &admin,
            Some(&json!({ "role": "ingest", "groups": "tmp/*" })),
        );
        assert_eq!(reply.status, 201, "{}", reply.text());
        reply.json()["id"].as_str().expect("token id").to_string()
    };
    let first_throwaway = throwaway(&server);
    let table = cases(&first_throwaway);
    let tested: BTreeSet<(String, String)> = table
        .iter()
        .map(|case| (case.method.to_string(), case.pattern.to_string()))
        .collect();
    assert_eq!(
        router.difference(&tested).collect::<Vec<_>>(),
        Vec::<&(String, String)>::new(),
        "routes without a row in this test's table"
    );
    assert_eq!(
        tested.difference(&router).collect::<Vec<_>>(),
        Vec::<&(String, String)>::new(),
        "rows for routes the router does not have"
    );

    let mut failures = Vec::new();
    let mut checks = 0;
    let mut check = |what: String, reply: &Reply, expected: u16| {
        checks += 1;
        if reply.status != expected {
            failures.push(format!(
                "{what}: expected {expected}, got {} {}",
                reply.status,
                reply.text()
            ));
        }
    };
    for case in &table {
        for probe in &case.probes {
            let label = |who: &str| format!("{} {} as {who}", probe.method, probe.path);
            let anonymous = if case.who == Who::Anyone {
                probe.success
            } else {
                401
            };
            check(
                label("no token"),
                &send(&server.base, probe, &[]),
                anonymous,
            );
            let wrong = if case.who == Who::Anyone {
                probe.success
            } else {
                case.presents.wrong_token_status()
            };
            let wrong_token = format!("slt_{}", "A".repeat(43));
            check(
                label("a wrong token"),
                &send(&server.base, probe, &case.presents.headers(&wrong_token)),
                wrong,
            );
            for (role, token) in &tokens {
                let expected = if case.who.allows(role) {
                    probe.success
                } else {
                    403
                };
                // Each revocation needs a token of its own.
                let mut probe_for_role = Probe {
                    method: probe.method,
                    path: probe.path.clone(),
                    headers: probe.headers.clone(),
                    body: probe.body.clone(),
                    success: probe.success,
                };
                if case.method == "DELETE" && *role == "admin" {
                    probe_for_role.path = format!("/api/v1/tokens/{}", throwaway(&server));
                }
                let reply = send(&server.base, &probe_for_role, &case.presents.headers(token));
                check(label(role), &reply, expected);
            }
        }
    }
    let probes: usize = table.iter().map(|case| case.probes.len()).sum();
    assert_eq!(
        checks,
        probes * 6,
        "no token, a wrong token and four roles per request"
    );
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
    // The throwaway token the other roles tried to revoke is still there.
    let listed = api(&server, "GET", "/api/v1/tokens", &admin, None).json();
    assert!(
        listed["tokens"]
            .as_array()
            .expect("tokens")
            .iter()
            .any(|token| token["id"] == first_throwaway.as_str()),
        "{listed}"
    );
}

/// Group scopes and roles beyond the route rules: an ingest token writes only its groups and
/// reads nothing; a reader cannot write, fetch checkpoints or change retention, nor read past
/// its groups or the access log; auditors get sealed proofs that verify offline without
/// showing the event; nobody shortens `seclog/access`; N reads are N access records; every
/// refusal is recorded; secrets never appear in the access log or the server's output.
#[test]
fn scopes_auditors_and_the_access_log() {
    let store = Store::new();
    let admin = store.init();
    let ingest = store.create_token("ingest", "app/*");
    let reader = store.create_token("reader", "app/*");
    let auditor = store.create_token("auditor", "*");
    let mut server = store.serve(&[]);

    let written = server.ingest(
        &ingest,
        "app/payments",
        br#"{"message":"card 4111 charged","user":"alice"}"#,
    );
    assert_eq!(written.status, 200, "{}", written.text());
    assert_eq!(
        server.ingest(&ingest, "other/x", br#"{"m":1}"#).status,
        403,
        "outside its groups"
    );
    assert_eq!(
        server.ingest(&reader, "app/payments", br#"{"m":1}"#).status,
        403,
        "a reader writes"
    );
    assert_eq!(
        server.ingest(&admin, "seclog/access", br#"{"m":1}"#).status,
        403,
        "forging the access log"
    );
    std::thread::sleep(Duration::from_millis(1500));

    let query = |token: &str, groups: Value| {
        api(
            &server,
            "POST",
            "/api/v1/query",
            token,
            Some(&json!({
                "query": "fields message | limit 10",
                "groups": groups,
                "start": "2020-01-01T00:00:00Z",
            })),
        )
    };
    assert_eq!(
        query(&ingest, json!(["app/payments"])).status,
        403,
        "an ingest token reads"
    );
    assert_eq!(
        query(&reader, json!(["other/x"])).status,
        403,
        "a reader outside its groups"
    );
    assert_eq!(
        query(&reader, json!(["seclog/access"])).status,
        403,
        "a reader reads the access log"
    );
    assert_eq!(
        query(&auditor, json!(["app/payments"])).status,
        403,
        "an auditor reads log content"
    );
    assert_eq!(
        api(&server, "GET", "/api/v1/checkpoint", &reader, None).status,
        403
    );
    assert_eq!(
        api(
            &server,
            "PUT",
            "/api/v1/retention/app/payments",
            &reader,
            Some(&json!({ "days": 1 }))
        )
        .status,
        403,
        "a reader changes retention"
    );
    let shorten = api(
        &server,
        "PUT",
        "/api/v1/retention/seclog/access",
        &admin,
        Some(&json!({ "days": 1 })),
    );
    assert_eq!(
        shorten.status,
        403,
        "an admin shortens the access log: {}",
        shorten.text()
    );
    assert!(
        shorten.text().contains("seclog/access"),
        "{}",
        shorten.text()
    );

    // Three reads by the reader: three access records.
    for _ in 0..3 {
        let reply = query(&reader, json!(["app/payments"]));
        assert_eq!(reply.status, 200, "{}", reply.text());
        assert!(
            reply.text().contains("4111"),
            "the reader sees the event: {}",
            reply.text()
        );
    }
    // Proofs: the reader's bundle shows the event; the auditor's is sealed.
    let full = api(
        &server,
        "GET",
        "/api/v1/groups/app/payments/events/0/proof",
        &reader,
        None,
    );
    assert_eq!(full.status, 200, "{}", full.text());
    assert!(full.text().contains("alice"), "{}", full.text());
    let sealed = api(
        &server,
        "GET",
        "/api/v1/groups/app/payments/events/0/proof",
        &auditor,
        None,
    );
    assert_eq!(sealed.status, 200, "{}", sealed.text());
    assert!(
        !sealed.text().contains("alice") && !sealed.text().contains("4111"),
        "{}",
        sealed.text()
    );
    assert_eq!(sealed.json()["format"], "seclog-proof-sealed-v1");
    let dir = tempfile::tempdir().expect("temp dir");
    let bundle_path = dir.path().join("sealed.json");
    std::fs::write(&bundle_path, sealed.body.clone()).expect("write bundle");
    let key = store.data().join("verification.key");
    let verified = common::run([
        "verify-proof",
        "--key",
        key.to_str().expect("UTF-8"),
        bundle_path.to_str().expect("UTF-8"),
    ]);
    assert!(verified.status.success(), "{}", common::describe(&verified));
    // A sealed bundle with a different commitment does not verify.
    let mut forged = sealed.json();
    forged["commitment"] = json!("00".repeat(32));
    std::fs::write(&bundle_path, forged.to_string()).expect("write bundle");
    let refused = common::run([
        "verify-proof",
        "--key",
        key.to_str().expect("UTF-8"),
        bundle_path.to_str().expect("UTF-8"),
    ]);
    assert!(!refused.status.success(), "{}", common::describe(&refused));
    // Events: the reader pages through; the auditor only reads the access log.
    let events = api(
        &server,
        "GET",
        "/api/v1/groups/app/payments/events?from=0&limit=10",
        &reader,
        None,
    );
    assert_eq!(events.status, 200, "{}", events.text());
    assert_eq!(events.header("x-seclog-next"), Some("1"));
    assert_eq!(
        api(
            &server,
            "GET",
            "/api/v1/groups/app/payments/events",
            &auditor,
            None
        )
        .status,
        403
    );
    let created = api(
        &server,
        "POST",
        "/api/v1/tokens",
        &admin,
        Some(&json!({ "role": "ingest", "groups": "app/*" })),
    );
    assert_eq!(created.status, 201, "{}", created.text());
    let new_secret = created.json()["token"]
        .as_str()
        .expect("secret")
        .to_string();
    let new_id = created.json()["id"].as_str().expect("id").to_string();
    let revoked = api(
        &server,
        "DELETE",
        &format!("/api/v1/tokens/{new_id}"),
        &admin,
        None,
    );
    assert_eq!(revoked.status, 200, "{}", revoked.text());
    assert_eq!(
        server
            .ingest(&new_secret, "app/payments", br#"{"m":1}"#)
            .status,
        401,
        "revoked"
    );

    // The auditor reads the access log: what happened, in order.
    std::thread::sleep(Duration::from_millis(1200));
    let access = api(
        &server,
        "GET",
        "/api/v1/groups/seclog/access/events?limit=1000",
        &auditor,
        None,
    );
    assert_eq!(access.status, 200, "{}", access.text());
    let records: Vec<Value> = access
        .text()
        .lines()
        .map(|line| serde_json::from_str::<Value>(line).expect("NDJSON")["event"].clone())
        .collect();
    let reader_reads = records
        .iter()
        .filter(|record| {
            record["action"] == "query"
                && record["actor"]["role"] == "reader"
                && record["status"] == "ok"
        })
        .count();
    assert_eq!(reader_reads, 3, "three reads, three records: {records:#?}");
    let denied: Vec<&Value> = records
        .iter()
        .filter(|record| record["status"] == "denied")
        .collect();
    for (request, role) in [
        ("POST /api/v1/ingest/other/x", "ingest"),
        ("POST /api/v1/ingest/app/payments", "reader"),
        ("POST /api/v1/query", "ingest"),
        ("GET /api/v1/checkpoint", "reader"),
        ("PUT /api/v1/retention/seclog/access", "admin"),
        ("POST /api/v1/ingest/app/payments", ""),
    ] {
        assert!(
            denied.iter().any(|record| record["request"] == request
                && (role.is_empty() || record["actor"]["role"] == role)),
            "no refusal of {request} by {role:?} recorded: {denied:#?}"
        );
    }
    let proofs: Vec<&Value> = records
        .iter()
        .filter(|record| record["action"] == "proof")
        .collect();
    assert_eq!(proofs.len(), 2, "{proofs:#?}");
    assert_eq!(
        proofs
            .iter()
            .filter(|record| record["sealed"] == true)
            .count(),
        1
    );
    for action in ["token_create", "token_revoke"] {
        assert!(
            records
                .iter()
                .any(|record| record["action"] == action && record["actor"]["role"] == "admin"),
            "{action} not recorded"
        );
    }
    let access_text = access.text();
    let logs = format!("{}{}", server.stdout(), server.stderr());
    for secret in [&admin, &ingest, &reader, &auditor, &new_secret] {
        assert!(
            !access_text.contains(secret.as_str()),
            "a token in seclog/access"
        );
        assert!(
            !logs.contains(secret.as_str()),
            "a token in the server's output"
        );
    }
    server.stop_ok();
}

/// Wrong tokens from one address: after five, each answer waits twice as long as the one
/// before; the address is raised as a high-severity finding in `seclog/alerts`.
#[test]
fn repeated_wrong_tokens_are_slowed_and_raised() {
    let store = Store::new();
    let admin = store.init();
    let mut server = store.serve(&[]);
    let wrong = format!("slt_{}", "B".repeat(43));
    let mut took = Vec::new();
    for _ in 0..10 {
        let started = Instant::now();
        let reply = api(&server, "GET", "/api/v1/status", &wrong, None);
        took.push(started.elapsed());
        assert_eq!(reply.status, 401, "{}", reply.text());
    }
    // Five wrong tokens are answered at once; then the waits are 250 ms, 500 ms, 1 s, 2 s, 4 s.
    for (index, minimum) in [(5, 250), (6, 500), (7, 1000), (8, 2000), (9, 4000)] {
        assert!(
            took[index] >= Duration::from_millis(minimum),
            "attempt {} took {:?}: {took:?}",
            index + 1,
            took[index]
        );
    }
    assert!(
        took[..5]
            .iter()
            .all(|elapsed| *elapsed < Duration::from_millis(200)),
        "{took:?}"
    );
    // The streaming detector raises it from seclog/access.
    let deadline = Instant::now() + Duration::from_secs(30);
    let finding = loop {
        let reply = api(
            &server,
            "POST",
            "/api/v1/query",
            &admin,
            Some(&json!({
                "query": "fields @message | filter finding_info.title like /Repeated authentication failures/",
                "groups": ["seclog/alerts"],
                "start": "2020-01-01T00:00:00Z",
            })),
        );
        if reply.status == 200
            && reply.json()["rows"]
                .as_array()
                .is_some_and(|rows| !rows.is_empty())
        {
            break reply.json();
        }
        assert!(Instant::now() < deadline, "no finding: {}", reply.text());
        std::thread::sleep(Duration::from_millis(500));
    };
    let text = finding.to_string();
    assert!(text.contains("127.0.0.1"), "{text}");
    assert!(
        !text.contains(&wrong),
        "the presented token is in the finding"
    );
    server.stop_ok();
    let logs = format!("{}{}", server.stdout(), server.stderr());
    assert!(
        logs.contains("repeated authentication failures"),
        "no warning logged"
    );
    assert!(
        !logs.contains(&wrong) && !logs.contains(&admin),
        "a token in the server's output"
    );
}

/// The command line's reads: `cat` and `proof` through the server are recorded there (the
/// auditor gets a sealed proof), `cat --follow` tails new events, and reads from the data
/// directory are recorded in `seclog/access` when no server owns it (and say so when one does).
#[test]
fn command_line_reads_are_recorded() {
    use std::io::BufRead as _;
    let store = Store::new();
    let admin = store.init();
    let reader = store.create_token("reader", "app/*");
    let auditor = store.create_token("auditor", "*");
    let mut server = store.serve(&[]);
    for n in 0..3 {
        server.ingest_ok(
            &admin,
            "app/cli",
            format!("{{\"n\":{n},\"user\":\"carol\"}}").as_bytes(),
        );
    }
    std::thread::sleep(Duration::from_millis(1200));
    let seclog = common::run_with_token;
    let base = server.url("");
    let cat = seclog(&reader, &["cat", "--server", &base, "--group", "app/cli"]);
    assert!(cat.status.success(), "{}", common::describe(&cat));
    assert_eq!(String::from_utf8_lossy(&cat.stdout).lines().count(), 3);
    let refused = seclog(&auditor, &["cat", "--server", &base, "--group", "app/cli"]);
    assert!(!refused.status.success(), "an auditor read log content");
    let full = seclog(
        &reader,
        &[
            "proof", "--server", &base, "--group", "app/cli", "--seq", "1",
        ],
    );
    assert!(full.status.success(), "{}", common::describe(&full));
    assert!(String::from_utf8_lossy(&full.stdout).contains("carol"));
    let sealed = seclog(
        &auditor,
        &[
            "proof", "--server", &base, "--group", "app/cli", "--seq", "1",
        ],
    );
    assert!(sealed.status.success(), "{}", common::describe(&sealed));
    assert!(!String::from_utf8_lossy(&sealed.stdout).contains("carol"));
    assert!(String::from_utf8_lossy(&sealed.stdout).contains("seclog-proof-sealed-v1"));

    // Tail: new events appear on the follower's output.
    let mut follower = common::seclog()
        .args([
            "cat", "--server", &base, "--group", "app/cli", "--from", "3", "--follow",
        ])
        .env("SECLOG_TOKEN", &reader)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("follower starts");
    std::thread::sleep(Duration::from_millis(500));
    server.ingest_ok(&admin, "app/cli", br#"{"n":3,"tail":true}"#);
    let mut lines = std::io::BufReader::new(follower.stdout.take().expect("stdout")).lines();
    let line = lines.next().expect("a line").expect("UTF-8");
    assert!(line.contains("\"tail\":true"), "{line}");
    let _ = follower.kill();
    let _ = follower.wait();

    // From the data directory while the server runs: allowed, not recorded, and said so.
    let local = common::run(["cat", "--data", &store.data_arg(), "--group", "app/cli"]);
    assert!(local.status.success(), "{}", common::describe(&local));
    assert!(String::from_utf8_lossy(&local.stderr).contains("not recorded"));
    server.stop_ok();
    // With the server stopped: recorded before the events are printed.
    let local = common::run(["cat", "--data", &store.data_arg(), "--group", "app/cli"]);
    assert!(local.status.success(), "{}", common::describe(&local));
    assert!(!String::from_utf8_lossy(&local.stderr).contains("not recorded"));
    let access = store.cat("seclog/access");
    let actions = |role: &str, action: &str| {
        access
            .iter()
            .filter(|record| {
                record["event"]["action"] == action && record["event"]["actor"]["role"] == role
            })
            .count()
    };
    assert!(
        actions("reader", "cat") >= 2,
        "the reader's cat and follow: {access:#?}"
    );
    assert_eq!(actions("reader", "proof"), 1);
    assert_eq!(actions("auditor", "proof"), 1);
    let local_reads = access
        .iter()
        .filter(|record| {
            record["event"]["action"] == "cat"
                && record["event"]["actor"]["via"] == "seclog command line"
        })
        .count();
    assert_eq!(
        local_reads, 2,
        "the two local cats after the server stopped (this one included)"
    );
}

/// `seclog token create|list|revoke --server` with an admin token, while the server runs.
#[test]
fn tokens_are_managed_through_the_server() {
    let store = Store::new();
    let admin = store.init();
    let reader = store.create_token("reader", "*");
    let mut server = store.serve(&[]);
    let base = server.url("");
    let seclog = common::run_with_token;
    let created = seclog(
        &admin,
        &[
            "token",
            "create",
            "--server",
            &base,
            "--role",
            "ingest",
            "--groups",
            "app/*",
            "--expires",
            "1d",
        ],
    );
    assert!(created.status.success(), "{}", common::describe(&created));
    let secret = String::from_utf8_lossy(&created.stdout).trim().to_string();
    assert!(secret.starts_with("slt_"), "{secret}");
    assert_eq!(server.ingest(&secret, "app/new", br#"{"m":1}"#).status, 200);
    let listed = seclog(&admin, &["token", "list", "--server", &base]);
    assert!(listed.status.success(), "{}", common::describe(&listed));
    let listing = String::from_utf8_lossy(&listed.stdout).to_string();
    assert!(!listing.contains(&secret), "a secret in the list");
    let id = listing
        .lines()
        .find(|line| line.contains(" ingest app/* "))
        .and_then(|line| line.split(' ').next())
        .unwrap_or_else(|| panic!("{listing}"))
        .to_string();
    // A reader cannot manage tokens.
    let refused = seclog(&reader, &["token", "revoke", "--server", &base, &id]);
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("403"),
        "{}",
        common::describe(&refused)
    );
    let revoked = seclog(&admin, &["token", "revoke", "--server", &base, &id]);
    assert!(revoked.status.success(), "{}", common::describe(&revoked));
    assert_eq!(
        server.ingest(&secret, "app/new", br#"{"m":2}"#).status,
        401,
        "revoked at once"
    );
    server.stop_ok();
}
