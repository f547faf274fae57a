//! No plaintext at rest: a random canary sent in every way the ingest API takes input (JSON
//! values and keys, text lines, dead letters, compressed bodies, headers) and the API tokens
//! must not appear anywhere under the data directory, in any common encoding, not even inside
//! zstd or gzip streams found in the files, nor in the server's own log output.

mod common;

use std::fs;
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use common::{Store, post, random_hex, walk_files};

/// At most this much is decompressed from one candidate stream.
const DECOMPRESS_CAP: u64 = 64 << 20;

/// One byte pattern to look for, with a label saying which secret and encoding it is.
struct Needle {
    label: String,
    bytes: Vec<u8>,
}

/// A needle found somewhere.
#[derive(Debug)]
struct Hit {
    file: PathBuf,
    /// Where: `plain@OFFSET`, `zstd@OFFSET+OFFSET`, `gzip@OFFSET+OFFSET`.
    place: String,
    label: String,
}

/// Base64 fragments of `secret` as it would appear inside a longer base64 text, for each of
/// the three alignments: only the characters that depend on `secret` alone.
fn base64_fragments(secret: &[u8]) -> Vec<(usize, String)> {
    let mut fragments = Vec::new();
    for shift in 0..3 {
        let mut padded = vec![0u8; shift];
        padded.extend_from_slice(secret);
        let whole_groups = padded.len() / 3;
        for engine in [STANDARD_NO_PAD, URL_SAFE_NO_PAD] {
            let encoded = engine.encode(&padded);
            let skip = if shift == 0 { 0 } else { 4 };
            fragments.push((shift, encoded[skip..whole_groups * 4].to_string()));
        }
    }
    fragments
}

/// Every encoding of `secret` the scanner looks for.
fn needles_for(name: &str, secret: &[u8]) -> Vec<Needle> {
    let mut needles = Vec::new();
    let mut add = |encoding: &str, bytes: Vec<u8>| {
        if !needles.iter().any(|needle: &Needle| needle.bytes == bytes) {
            needles.push(Needle {
                label: format!("{name} ({encoding})"),
                bytes,
            });
        }
    };
    add("raw", secret.to_vec());
    add("lowercase", secret.to_ascii_lowercase());
    add("uppercase", secret.to_ascii_uppercase());
    add("hex", hex_lower(secret).into_bytes());
    add("HEX", hex_lower(secret).to_ascii_uppercase().into_bytes());
    for (shift, fragment) in base64_fragments(secret) {
        add(&format!("base64, shift {shift}"), fragment.into_bytes());
    }
    if let Ok(text) = std::str::from_utf8(secret) {
        add(
            "UTF-16LE",
            text.encode_utf16().flat_map(u16::to_le_bytes).collect(),
        );
        add(
            "UTF-16BE",
            text.encode_utf16().flat_map(u16::to_be_bytes).collect(),
        );
    }
    needles
}

fn hex_lower(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// Needles for an API token: the whole token, its secret part, and the secret's raw bytes.
fn token_needles(name: &str, token: &str) -> Vec<Needle> {
    let mut needles = needles_for(name, token.as_bytes());
    let secret = token.strip_prefix("slt_").expect("tokens start with slt_");
    needles.extend(needles_for(
        &format!("{name} secret part"),
        secret.as_bytes(),
    ));
    let raw = URL_SAFE_NO_PAD
        .decode(secret)
        .expect("token secrets are base64url");
    assert_eq!(raw.len(), 32, "token secrets are 32 bytes");
    needles.extend(needles_for(&format!("{name} secret bytes"), &raw));
    needles
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

fn scan_bytes(bytes: &[u8], needles: &[Needle], file: &Path, place: &str, hits: &mut Vec<Hit>) {
    for needle in needles {
        if let Some(offset) = find(bytes, &needle.bytes) {
            hits.push(Hit {
                file: file.to_path_buf(),
                place: format!("{place}@{offset}"),
                label: needle.label.clone(),
            });
        }
    }
}

/// Whatever a decoder yields before it fails or reaches the cap.
fn drain(reader: impl std::io::Read) -> Vec<u8> {
    let mut out = Vec::new();
    let _ = reader.take(DECOMPRESS_CAP).read_to_end(&mut out);
    out
}

/// Scans `bytes` as they are, and the output of every zstd frame and gzip member that seems to
/// start in them.
fn scan_content(bytes: &[u8], needles: &[Needle], file: &Path, hits: &mut Vec<Hit>) {
    scan_bytes(bytes, needles, file, "plain", hits);
    for offset in 0..bytes.len().saturating_sub(3) {
        let rest = &bytes[offset..];
        if rest.starts_with(&[0x28, 0xB5, 0x2F, 0xFD])
            && let Ok(decoder) = zstd::stream::read::Decoder::with_buffer(rest)
        {
            let out = drain(decoder);
            scan_bytes(&out, needles, file, &format!("zstd@{offset}+"), hits);
        }
        if rest.starts_with(&[0x1F, 0x8B]) {
            let out = drain(flate2::read::MultiGzDecoder::new(rest));
            scan_bytes(&out, needles, file, &format!("gzip@{offset}+"), hits);
        }
    }
}

/// Scans every file under `dir` (contents and path).
fn scan_tree(dir: &Path, needles: &[Needle]) -> (Vec<Hit>, usize) {
    let mut hits = Vec::new();
    let files = walk_files(dir);
    for file in &files {
        let relative = file.strip_prefix(dir).unwrap_or(file);
        scan_bytes(
            relative.as_os_str().as_encoded_bytes(),
            needles,
            file,
            "path",
            &mut hits,
        );
        let bytes = fs::read(file).expect("readable file");
        scan_content(&bytes, needles, file, &mut hits);
    }
    (hits, files.len())
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(bytes).expect("gzip in memory");
    encoder.finish().expect("gzip in memory")
}

fn zstd(bytes: &[u8]) -> Vec<u8> {
    zstd::stream::encode_all(bytes, 19).expect("zstd in memory")
}

fn random_bytes(count: usize) -> Vec<u8> {
    (0..count).map(|_| fastrand::u8(..)).collect()
}

/// The scanner finds each kind of needle in files made for it, so an empty result on the data
/// directory means something.
fn check_scanner(canary: &str, token: &str, needles: &[Needle], sample_body: &[u8]) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let mut repeated = Vec::new();
    for _ in 0..50 {
        repeated.extend_from_slice(sample_body);
    }
    let wrap = |inner: &[u8]| [random_bytes(97), inner.to_vec(), random_bytes(101)].concat();
    let mut utf16 = Vec::new();
    for unit in String::from_utf8_lossy(sample_body).encode_utf16() {
        utf16.extend_from_slice(&unit.to_le_bytes());
    }
    let samples: Vec<(&str, Vec<u8>, &str)> = vec![
        ("request.ndjson", sample_body.to_vec(), "plain"),
        (
            "lowercase.txt",
            canary.to_ascii_lowercase().into_bytes(),
            "plain",
        ),
        ("inner.gz", wrap(&gzip(&repeated)), "gzip"),
        ("inner.zst", wrap(&zstd(&repeated)), "zstd"),
        ("hex.txt", hex_lower(sample_body).into_bytes(), "plain"),
        ("utf16.txt", utf16, "plain"),
        ("token.txt", token.as_bytes().to_vec(), "plain"),
        (
            "token-secret.bin",
            wrap(
                &URL_SAFE_NO_PAD
                    .decode(token.trim_start_matches("slt_"))
                    .expect("base64url"),
            ),
            "plain",
        ),
    ];
    let mut expected: Vec<(String, &str)> = samples
        .iter()
        .map(|(name, _, place)| (name.to_string(), *place))
        .collect();
    for (name, bytes, _) in &samples {
        fs::write(dir.path().join(name), bytes).expect("write sample");
    }
    for shift in 0..3 {
        let name = format!("base64-{shift}.txt");
        let shifted = [random_bytes(shift), sample_body.to_vec()].concat();
        fs::write(dir.path().join(&name), STANDARD_NO_PAD.encode(shifted)).expect("write");
        expected.push((name, "plain"));
    }
    let (hits, _) = scan_tree(dir.path(), needles);
    for (name, place) in expected {
        assert!(
            hits.iter()
                .any(|hit| hit.file.ends_with(&name) && hit.place.starts_with(place)),
            "the scanner misses the secret in {name} ({place}); hits: {hits:#?}"
        );
    }
    // And it stays quiet on unrelated data.
    let quiet = tempfile::tempdir().expect("temporary directory");
    fs::write(quiet.path().join("noise.bin"), random_bytes(1 << 16)).expect("write");
    fs::write(quiet.path().join("noise.gz"), gzip(b"nothing to see here")).expect("write");
    let (noise_hits, _) = scan_tree(quiet.path(), needles);
    assert!(noise_hits.is_empty(), "false positives: {noise_hits:#?}");
}

/// The canary and tokens appear nowhere in the data directory or the server's logs.
#[test]
fn no_plaintext_canary_or_token_at_rest_or_in_logs() {
    let canary = format!("CANARY-{}", random_hex(16));
    let store = Store::new();
    let admin = store.init();
    let ingest = store.create_token("ingest", "app/*");
    let mut server = store.serve(&[]);
    let url = |group: &str| server.url(&format!("/api/v1/ingest/{group}"));

    let ndjson = format!(
        "{{\"msg\":\"login by {canary}\",\"n\":1}}\n\
         {{\"{canary}\":\"as a key\"}}\n\
         sshd[7]: session opened for user {canary}\n\
         {{\"broken\":\"{canary}\"\n\
         {{\"repeated\":\"{}\"}}\n",
        canary.repeat(500)
    );
    let mut invalid_utf8 = b"\xff\xfe ".to_vec();
    invalid_utf8.extend_from_slice(canary.as_bytes());
    invalid_utf8.push(b'\n');
    let array = format!("[{{\"a\":\"{canary}\"}},\"{canary}\"]");
    let malformed_array = format!("[{{\"a\":\"{canary}\"}},");
    let user_agent = format!("agent {canary}");

    let request = |token: &str, group: &str, headers: &[(&str, &str)], body: Vec<u8>, status| {
        let reply = post(&url(group), Some(token), headers, &body);
        assert_eq!(
            reply.status,
            status,
            "{group}: {}\n--- server stderr ---\n{}",
            reply.text(),
            server.stderr_tail()
        );
    };
    request(&admin, "app/canary", &[], ndjson.clone().into_bytes(), 200);
    request(&ingest, "app/canary", &[], invalid_utf8, 200);
    request(&ingest, "app/canary", &[], array.into_bytes(), 200);
    request(
        &ingest,
        "app/canary",
        &[],
        malformed_array.into_bytes(),
        400,
    );
    request(
        &ingest,
        "app/gz",
        &[("Content-Encoding", "gzip"), ("User-Agent", &user_agent)],
        gzip(ndjson.as_bytes()),
        200,
    );
    request(
        &admin,
        "app/zst",
        &[("Content-Encoding", "zstd")],
        zstd(ndjson.as_bytes()),
        200,
    );
    // Secrets in a query string, in a wrong token and in a bad header: never logged or stored.
    let query_url = format!("{}?note={canary}", url("app/canary"));
    let reply = post(&query_url, Some(&ingest), &[], ndjson.as_bytes());
    assert_eq!(reply.status, 200, "{}", reply.text());
    let wrong_token = format!("slt_{canary}");
    let reply = post(
        &url("app/canary"),
        Some(&wrong_token),
        &[],
        ndjson.as_bytes(),
    );
    assert_eq!(reply.status, 401);
    let reply = post(
        &url("app/canary"),
        Some(&ingest),
        &[("Content-Encoding", &canary)],
        b"x",
    );
    assert_eq!(reply.status, 415);

    // The index, its merges and the access log: many small commits make tantivy merge
    // segments; searching for the canary proves the index holds it (and records the query,
    // canary included, in seclog/access).
    for n in 0..40 {
        request(
            &ingest,
            "app/canary",
            &[],
            format!("{{\"n\":{n},\"note\":\"{canary}\"}}\n").into_bytes(),
            200,
        );
    }
    let search = serde_json::json!({
        "query": format!("filter note = \"{canary}\" | stats count(*) as n"),
        "start": "2000-01-01T00:00:00Z",
        "groups": ["app/canary"],
    });
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let reply = post(
            &server.url("/api/v1/query"),
            Some(&admin),
            &[],
            search.to_string().as_bytes(),
        );
        assert_eq!(reply.status, 200, "{}", reply.text());
        if reply.json()["rows"][0]["n"] == serde_json::json!(40) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the canary never became searchable"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let full_text = serde_json::json!({
        "query": format!("\"{canary}\" | stats count(*) as n"),
        "start": "2000-01-01T00:00:00Z",
        "groups": ["app/canary"],
    });
    let reply = post(
        &server.url("/api/v1/query"),
        Some(&admin),
        &[],
        full_text.to_string().as_bytes(),
    );
    assert!(
        reply.json()["rows"][0]["n"].as_u64().unwrap_or(0) >= 40,
        "{}",
        reply.text()
    );
    server.stop_ok();
    let index_files = walk_files(&store.data().join("index")).len();
    assert!(index_files >= 10, "only {index_files} index files");

    // The events really are stored (readable with the master key), so the scan is meaningful.
    let stored = store.cat("app/canary");
    assert!(
        stored
            .iter()
            .any(|event| event.to_string().contains(&canary)),
        "the canary events are not in the store: {stored:?}"
    );
    // One broken line in each of the four NDJSON bodies, the invalid UTF-8 line, the string
    // element of the array and the malformed array.
    let dead = store.cat("seclog/dead-letter");
    assert_eq!(dead.len(), 7, "dead letters: {dead:?}");

    let mut needles = needles_for("canary", canary.as_bytes());
    needles.extend(token_needles("admin token", &admin));
    needles.extend(token_needles("ingest token", &ingest));
    check_scanner(&canary, &ingest, &needles, ndjson.as_bytes());

    let (hits, files) = scan_tree(&store.data(), &needles);
    assert!(files >= 10, "only {files} files under the data directory");
    println!("scanned {files} files under the data directory");
    assert!(
        hits.is_empty(),
        "plaintext secrets at rest:\n{}",
        hits.iter()
            .map(|hit| format!("{} {} {}", hit.file.display(), hit.place, hit.label))
            .collect::<Vec<_>>()
            .join("\n")
    );

    let (log_hits, log_files) = scan_tree(&store.logs(), &needles);
    assert_eq!(log_files, 2, "one server: stdout and stderr");
    assert!(
        log_hits.is_empty(),
        "secrets in the server's logs: {log_hits:#?}\n--- stderr ---\n{}",
        server.stderr()
    );

    // A crash in the middle of ingest, the recovery after it, and a master-key rotation: still
    // nothing in plain text, and neither master key in any output.
    let old_key = master_key_bytes(&store);
    let mut server = store.serve(&[]);
    for n in 0..20 {
        server.ingest_ok(
            &ingest,
            "app/canary",
            format!("{{\"after_crash\":{n},\"note\":\"{canary}\"}}\n").as_bytes(),
        );
    }
    server.kill_hard();
    let mut server = store.serve(&[]);
    server.stop_ok();
    let rotated = common::run(["keys", "rotate", "--data", &store.data_arg()]);
    assert!(rotated.status.success(), "{}", common::describe(&rotated));
    let new_key = master_key_bytes(&store);
    assert_ne!(old_key, new_key);
    let mut server = store.serve(&[]);
    server.ingest_ok(
        &ingest,
        "app/canary",
        format!("{{\"rotated\":\"{canary}\"}}\n").as_bytes(),
    );
    server.stop_ok();
    assert!(
        store
            .cat("app/canary")
            .iter()
            .any(|event| event.to_string().contains("after_crash")),
        "the events sent before the crash are not stored"
    );
    let mut key_needles = needles_for("old master key", &old_key);
    key_needles.extend(needles_for("new master key", &new_key));
    let mut all = needles_for("canary", canary.as_bytes());
    all.extend(token_needles("admin token", &admin));
    all.extend(token_needles("ingest token", &ingest));
    all.extend(key_needles);
    let (hits, files) = scan_tree(&store.data(), &all);
    let hits: Vec<&Hit> = hits
        .iter()
        // The key file holds the current key by design (the file provider).
        .filter(|hit| !hit.file.ends_with("keys/master.key"))
        .collect();
    println!("scanned {files} files after a crash and a rotation");
    assert!(
        hits.is_empty(),
        "plaintext secrets at rest after a crash and a rotation: {hits:#?}"
    );
    let (log_hits, log_files) = scan_tree(&store.logs(), &all);
    assert_eq!(log_files, 8, "four servers: stdout and stderr");
    assert!(
        log_hits.is_empty(),
        "secrets in the server's logs: {log_hits:#?}"
    );
    let rotate_output = [rotated.stdout.as_slice(), rotated.stderr.as_slice()].concat();
    for needle in &all {
        assert!(
            find(&rotate_output, &needle.bytes).is_none(),
            "{} in the output of `seclog keys rotate`",
            needle.label
        );
    }
}

/// The raw bytes of the data directory's master key (from its file).
fn master_key_bytes(store: &Store) -> Vec<u8> {
    let text = fs::read_to_string(store.data().join("keys/master.key")).expect("key file");
    let hex = text.split_whitespace().last().expect("hex key");
    (0..hex.len())
        .step_by(2)
        .map(|at| u8::from_str_radix(&hex[at..at + 2], 16).expect("hex"))
        .collect()
}
