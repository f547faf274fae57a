//! No plaintext at rest: a canary written in events never appears in any file of the data
//! directory, raw or in the usual encodings, not even inside any zstd frame found in the files.

mod common;

use std::io::Read as _;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use common::{Store, app_x, at, dead_letter, default_epochs, walk_files};
use seclog_journal::{JournalReader, Record, RecordKind};

const CANARY: &str = "CANARY-7f3a9c-SECRET";
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xB5, 0x2F, 0xFD];
/// Decompression bound per candidate frame (the fixture's blocks are a few KiB).
const ZSTD_LIMIT: usize = 1 << 20;

/// Byte strings that would betray the canary: raw, lower case, hex (both cases) and base64 at
/// each of the three alignments, standard and URL-safe (inner characters only, since the edges
/// of a base64 run depend on the neighbouring bytes).
fn needles() -> Vec<Vec<u8>> {
    let mut needles = vec![
        CANARY.as_bytes().to_vec(),
        CANARY.to_lowercase().into_bytes(),
        hex::encode(CANARY).into_bytes(),
        hex::encode_upper(CANARY).into_bytes(),
    ];
    for pad in 0..3 {
        let mut shifted = vec![b'x'; pad];
        shifted.extend_from_slice(CANARY.as_bytes());
        for encoded in [STANDARD.encode(&shifted), URL_SAFE_NO_PAD.encode(&shifted)] {
            // Skip the characters mixing padding bytes in, and the last partial group.
            let start = (pad * 4).div_ceil(3);
            let end = encoded.trim_end_matches('=').len() - 3;
            needles.push(encoded.as_bytes()[start..end].to_vec());
        }
    }
    needles
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}

/// Every needle found in `bytes`, and in whatever decompresses at each zstd magic in `bytes`.
fn leaks(bytes: &[u8], needles: &[Vec<u8>]) -> Vec<String> {
    let mut found: Vec<String> = needles
        .iter()
        .filter(|needle| contains(bytes, needle))
        .map(|needle| String::from_utf8_lossy(needle).into_owned())
        .collect();
    for start in
        (0..bytes.len().saturating_sub(3)).filter(|&start| bytes[start..start + 4] == ZSTD_MAGIC)
    {
        let plain = zstd_frame_prefix(&bytes[start..]);
        found.extend(
            leaks(&plain, needles)
                .into_iter()
                .map(|leak| format!("{leak} (in a zstd frame at byte {start})")),
        );
    }
    found
}

/// Whatever one zstd frame starting at `bytes[0]` decodes to before it ends or fails, bounded.
fn zstd_frame_prefix(bytes: &[u8]) -> Vec<u8> {
    let mut plain = Vec::new();
    let Ok(decoder) = zstd::stream::read::Decoder::with_buffer(bytes) else {
        return plain;
    };
    let mut limited = decoder.single_frame().take(ZSTD_LIMIT as u64);
    let mut buffer = [0u8; 4096];
    while let Ok(read @ 1..) = limited.read(&mut buffer) {
        plain.extend_from_slice(&buffer[..read]);
    }
    plain
}

/// Events carrying the canary in their raw bytes, attributes and source are stored and read
/// back intact with the master key, yet no file of the data directory (journal, keys,
/// verification key) holds the canary in any encoding, compressed or not. The scanner itself
/// is checked on planted leaks first, so a broken scanner cannot pass silently.
#[test]
fn canary_never_appears_at_rest() {
    let needles = needles();
    let planted =
        zstd::bulk::compress(format!("prefix {CANARY} suffix").as_bytes(), 3).expect("compress");
    let mut planted_in_file = b"junk".to_vec();
    planted_in_file.extend_from_slice(&planted);
    planted_in_file.extend_from_slice(b"trailing bytes after the frame");
    assert!(
        !leaks(&planted_in_file, &needles).is_empty(),
        "the scanner must see into zstd frames"
    );
    for encoded in [
        hex::encode(format!("ab{CANARY}")),
        STANDARD.encode(format!("a{CANARY}b")),
        CANARY.to_lowercase(),
    ] {
        assert!(
            !leaks(encoded.as_bytes(), &needles).is_empty(),
            "the scanner must see {encoded}"
        );
    }

    let mut store = Store::init(default_epochs());
    let (mut writer, _) = store.writer();
    let mut secrets = Vec::new();
    for n in 0..40u64 {
        let now = at(1 + n as i64);
        let (kind, raw, attrs) = if n % 2 == 0 {
            (
                RecordKind::Json,
                format!(r#"{{"n":{n},"password":"{CANARY}"}}"#),
                Vec::new(),
            )
        } else {
            (
                RecordKind::Text,
                format!("user typed {CANARY} into the login box #{n}"),
                format!(r#"{{"note":"{CANARY}"}}"#).into_bytes(),
            )
        };
        let record = Record {
            time: now,
            observed_time: now,
            kind,
            source: format!("http:{CANARY}"),
            attrs,
            raw: raw.into_bytes(),
        };
        secrets.push(record.clone());
        writer
            .append(&app_x(), &[record.encode()], now)
            .expect("append");
        store.append(&mut writer, &dead_letter(), 3, now);
        if n % 10 == 9 {
            writer.seal(now).expect("seal");
        }
    }
    writer.close(at(60)).expect("close");
    assert!(store.verify().is_intact());

    let reader = JournalReader::new(&store.layout, store.master.clone());
    let stored: Vec<Record> = reader
        .read(&app_x(), 0, 1000, None)
        .expect("read")
        .into_iter()
        .map(|event| event.record)
        .collect();
    assert_eq!(stored, secrets, "the canary events were really written");

    let files = walk_files(store.layout.root());
    assert!(
        files
            .iter()
            .any(|path| path.starts_with(store.layout.keys_dir())),
        "keys/ is scanned too"
    );
    let mut found = Vec::new();
    for path in &files {
        let bytes = std::fs::read(path).expect("read");
        found.extend(
            leaks(&bytes, &needles)
                .into_iter()
                .map(|leak| format!("{}: {leak}", store.rel(path))),
        );
    }
    assert!(found.is_empty(), "plaintext at rest:\n{}", found.join("\n"));
}
