//! The tantivy schema of a piece and how a journal record becomes a document.

use std::fmt::Write as _;

use seclog_journal::{Record, RecordKind};
use tantivy::schema::{
    Field, IndexRecordOption, JsonObjectOptions, NumericOptions, OwnedValue, Schema,
    TextFieldIndexing, TextOptions,
};
use tantivy::tokenizer::{
    LowerCaser, RemoveLongFilter, SimpleTokenizer, TextAnalyzer, Token, TokenFilter, TokenStream,
    Tokenizer,
};
use tantivy::{Index, TantivyDocument};

use crate::fields::{FlattenError, Scalar, flatten, flatten_bytes};

/// Name of the full-text tokenizer (words, lower-cased).
pub const TEXT_TOKENIZER: &str = "seclog_text";
/// Longest word kept in the full-text index; longer runs are found by `like` over `@message`.
pub const MAX_WORD_LEN: usize = 128;

/// Field handles of the schema.
#[derive(Debug, Clone)]
pub struct IndexSchema {
    /// The schema itself.
    pub schema: Schema,
    /// Journal sequence number (fast).
    pub seq: Field,
    /// Event time, Unix nanoseconds (fast).
    pub time: Field,
    /// Receipt time, Unix nanoseconds (fast).
    pub observed: Field,
    /// `@logStream`: where the event came from (exact, fast).
    pub stream: Field,
    /// Every event field by its flattened path (exact terms, fast columns).
    pub fields: Field,
    /// `@message` words (lower-cased, doc ids only; phrases are checked on the message itself).
    pub text: Field,
    /// Hashes of identifier values ([`is_identifier_path`]): path and value, 64 bits.
    pub ids: Field,
    /// Which identifier paths an event carries (exact; answers `ispresent` and field lists).
    pub id_paths: Field,
}

/// Schema field names (also the prefixes of fast-field column names).
pub mod names {
    /// Sequence number.
    pub const SEQ: &str = "seq";
    /// Event time.
    pub const TIME: &str = "time";
    /// Receipt time.
    pub const OBSERVED: &str = "observed";
    /// Log stream.
    pub const STREAM: &str = "stream";
    /// Event fields (JSON).
    pub const FIELDS: &str = "f";
    /// Message words.
    pub const TEXT: &str = "text";
    /// Identifier hashes.
    pub const IDS: &str = "ids";
    /// Identifier paths present.
    pub const ID_PATHS: &str = "id_paths";
}

/// Last path segments (compared ignoring case) of the fields that hold per-event unique
/// identifiers: request, event, trace and span ids, session tokens. Their values are nearly
/// all distinct, so exact terms and columns for them would make up most of the index; they
/// are indexed as 64-bit hashes instead (`filter requestID = "…"` finds its candidates through
/// the hash and confirms each on the journal record) and are read from the journal.
pub const IDENTIFIER_NAMES: &[&str] = &[
    "eventid",
    "requestid",
    "request_id",
    "sharedeventid",
    "traceid",
    "trace_id",
    "spanid",
    "span_id",
    "x-amz-request-id",
    "x-amz-id-2",
    "sessiontoken",
];

/// Whether the flattened `path` is an identifier field (see [`IDENTIFIER_NAMES`]).
pub fn is_identifier_path(path: &str) -> bool {
    let last = path.rsplit('.').next().unwrap_or(path);
    IDENTIFIER_NAMES
        .iter()
        .any(|name| name.eq_ignore_ascii_case(last))
}

/// Bits of an identifier hash kept: a piece of 10 M events holds about 2^24 identifiers, so a
/// lookup meets a colliding identifier about once in 4,000 (each candidate is checked on the
/// journal record anyway), while shorter terms keep the dictionary small.
pub const IDENTIFIER_HASH_BITS: u32 = 36;

/// The indexed hash of an identifier field's value (its text as the query language prints it).
pub fn identifier_hash(path: &str, text: &str) -> u64 {
    let mut hasher = xxhash_rust::xxh3::Xxh3::new();
    hasher.update(path.as_bytes());
    hasher.update(&[0]);
    hasher.update(text.as_bytes());
    hasher.digest() >> (64 - IDENTIFIER_HASH_BITS)
}

impl IndexSchema {
    /// The schema every piece uses.
    pub fn new() -> Self {
        let mut builder = Schema::builder();
        let fast = NumericOptions::default().set_fast();
        let seq = builder.add_u64_field(names::SEQ, fast.clone());
        let time = builder.add_i64_field(names::TIME, fast.clone());
        let observed = builder.add_i64_field(names::OBSERVED, fast);
        // Nothing is scored, so no field keeps norms.
        let exact = TextFieldIndexing::default()
            .set_tokenizer("raw")
            .set_index_option(IndexRecordOption::Basic)
            .set_fieldnorms(false);
        let stream = builder.add_text_field(
            names::STREAM,
            TextOptions::default()
                .set_indexing_options(exact.clone())
                .set_fast("raw"),
        );
        let ids = builder.add_u64_field(names::IDS, NumericOptions::default().set_indexed());
        let id_paths = builder.add_text_field(
            names::ID_PATHS,
            TextOptions::default().set_indexing_options(exact.clone()),
        );
        let fields = builder.add_json_field(
            names::FIELDS,
            JsonObjectOptions::default()
                .set_indexing_options(exact)
                .set_fast("raw")
                .set_expand_dots_enabled(),
        );
        let text = builder.add_text_field(
            names::TEXT,
            TextOptions::default().set_indexing_options(
                TextFieldIndexing::default()
                    .set_tokenizer(TEXT_TOKENIZER)
                    .set_index_option(IndexRecordOption::Basic)
                    .set_fieldnorms(false),
            ),
        );
        IndexSchema {
            schema: builder.build(),
            seq,
            time,
            observed,
            stream,
            fields,
            text,
            ids,
            id_paths,
        }
    }

    /// Registers the tokenizers the schema names on `index`.
    pub fn register_tokenizers(index: &Index) {
        index.tokenizers().register(TEXT_TOKENIZER, text_analyzer());
    }

    /// The document for one journal record.
    ///
    /// The words of a JSON event are those of its values (not its keys or punctuation); the
    /// words of any other record are those of its text.
    pub fn document(&self, seq: u64, record: &Record) -> TantivyDocument {
        let mut doc = TantivyDocument::new();
        doc.add_u64(self.seq, seq);
        doc.add_i64(self.time, record.time.unix_nanos());
        doc.add_i64(self.observed, record.observed_time.unix_nanos());
        doc.add_text(self.stream, &record.source);
        let mut collected = Collected::default();
        let raw_is_json = record.kind == RecordKind::Json && collected.add_json(&record.raw, "");
        if !raw_is_json {
            collected
                .words
                .push_str(&String::from_utf8_lossy(&record.raw));
        }
        if record.attrs.len() > 2 {
            let mark = collected.mark();
            if !collected.add_attrs(&record.attrs, attrs_prefix(raw_is_json)) {
                collected.reset(mark);
            }
        }
        if !collected.object.is_empty() {
            doc.add_field_value(self.fields, &OwnedValue::Object(collected.object));
        }
        doc.add_text(self.text, &collected.words);
        for hash in collected.ids {
            doc.add_u64(self.ids, hash);
        }
        collected.id_paths.sort_unstable();
        collected.id_paths.dedup();
        for path in &collected.id_paths {
            doc.add_text(self.id_paths, path);
        }
        doc
    }
}

impl Default for IndexSchema {
    fn default() -> Self {
        IndexSchema::new()
    }
}

/// Where a record's attributes (what a protocol told about it: a syslog header, a dead
/// letter's reason) are named: beside the fields of a JSON event they are `@attrs.<name>`;
/// a text record has no fields of its own, so they are its fields (`appname`, `reason`).
pub fn attrs_prefix(raw_is_json: bool) -> &'static str {
    if raw_is_json { "@attrs." } else { "" }
}

/// The attribute that holds an event's normalized (OCSF) form, as service log imports store it.
/// It is written last among a record's attributes, so that attributes beginning with it hold
/// nothing else (the detector then skips them without reading the event).
pub const OCSF_ATTR: &str = "@ocsf";

/// Where the fields under one top-level key of an event's OCSF form are named: at the top
/// level beside the original fields (`api.operation`, `src_endpoint.ip`), unless the original
/// fields already use that key (VPC Flow Logs' `action`, CloudTrail's `resources`); then under
/// `ocsf.` (`ocsf.action`). `taken` says whether the original fields use a top-level key.
pub fn ocsf_prefix(key: &str, taken: impl Fn(&str) -> bool) -> &'static str {
    if taken(key) { "ocsf." } else { "" }
}

/// What one event contributes to the index.
#[derive(Default)]
struct Collected {
    object: Vec<(String, OwnedValue)>,
    words: String,
    ids: Vec<u64>,
    id_paths: Vec<String>,
}

/// How much a [`Collected`] held at one moment (to undo what a failed parse added).
#[derive(Clone, Copy)]
struct Mark {
    object: usize,
    words: usize,
    ids: usize,
    id_paths: usize,
}

impl Collected {
    /// Adds the fields of the JSON text `raw`, their paths prefixed with `prefix`; false
    /// (and nothing added) when `raw` is not JSON.
    fn add_json(&mut self, raw: &[u8], prefix: &str) -> bool {
        let mark = self.mark();
        match flatten_bytes(raw, &mut |path, value| self.add(prefix, path, value)) {
            Ok(()) => true,
            Err(FlattenError::Invalid) => {
                self.reset(mark);
                false
            }
            Err(FlattenError::DuplicateKey) => {
                // The parsed value keeps the last of repeated keys, as the query side does.
                self.reset(mark);
                match serde_json::from_slice::<serde_json::Value>(raw) {
                    Ok(json) => {
                        flatten(&json, &mut |path, value| self.add(prefix, path, value));
                        true
                    }
                    Err(_) => false,
                }
            }
        }
    }

    /// Adds a record's attributes: the OCSF form (see [`ocsf_prefix`]) adds fields but no
    /// words (its values repeat the original's); the rest are named with `prefix`.
    fn add_attrs(&mut self, attrs: &[u8], prefix: &str) -> bool {
        let needle = b"\"@ocsf\"";
        if !attrs.windows(needle.len()).any(|window| window == needle) {
            return self.add_json(attrs, prefix);
        }
        let Ok(serde_json::Value::Object(mut map)) = serde_json::from_slice(attrs) else {
            return false;
        };
        let ocsf = map.remove(OCSF_ATTR);
        let rest = serde_json::Value::Object(map);
        flatten(&rest, &mut |path, value| self.add(prefix, path, value));
        if let Some(serde_json::Value::Object(ocsf)) = ocsf {
            let words = self.words.len();
            for (key, value) in ocsf {
                let prefix = ocsf_prefix(&key, |key| self.uses_top_level(key));
                let single = serde_json::Value::Object([(key, value)].into_iter().collect());
                flatten(&single, &mut |path, value| self.add(prefix, path, value));
            }
            self.words.truncate(words);
        }
        true
    }

    /// Whether a field already added has `key` as its first path segment.
    fn uses_top_level(&self, key: &str) -> bool {
        let under = |path: &str| {
            path.strip_prefix(key)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('.'))
        };
        self.object.iter().any(|(path, _)| under(path)) || self.id_paths.iter().any(|p| under(p))
    }

    fn mark(&self) -> Mark {
        Mark {
            object: self.object.len(),
            words: self.words.len(),
            ids: self.ids.len(),
            id_paths: self.id_paths.len(),
        }
    }

    fn reset(&mut self, mark: Mark) {
        self.object.truncate(mark.object);
        self.words.truncate(mark.words);
        self.ids.truncate(mark.ids);
        self.id_paths.truncate(mark.id_paths);
    }

    /// Adds one field.
    fn add(&mut self, prefix: &str, path: &str, value: Scalar<'_>) {
        let start = self.words.len();
        match value {
            Scalar::Str(text) => self.words.push_str(text),
            Scalar::Int(int) => {
                let _ = write!(self.words, "{int}");
            }
            Scalar::UInt(uint) => {
                let _ = write!(self.words, "{uint}");
            }
            Scalar::Float(float) => {
                let _ = write!(self.words, "{float}");
            }
            Scalar::Bool(flag) => self.words.push_str(if flag { "true" } else { "false" }),
        }
        let path = if prefix.is_empty() {
            path.to_string()
        } else {
            format!("{prefix}{path}")
        };
        if is_identifier_path(&path) {
            self.ids.push(identifier_hash(&path, &self.words[start..]));
            self.id_paths.push(path);
        } else {
            let value = match value {
                Scalar::Str(text) => OwnedValue::Str(text.to_string()),
                Scalar::Int(int) => OwnedValue::I64(int),
                Scalar::UInt(uint) => OwnedValue::U64(uint),
                Scalar::Float(float) => OwnedValue::F64(float),
                Scalar::Bool(flag) => OwnedValue::Bool(flag),
            };
            self.object.push((path, value));
        }
        self.words.push('\n');
    }
}

/// The full-text analyzer: alphanumeric words, lower-cased; overlong words and fragments of
/// random hex identifiers (UUID parts, hashes) are left out (a search for them is confirmed on
/// the message itself instead).
pub fn text_analyzer() -> TextAnalyzer {
    TextAnalyzer::builder(SimpleTokenizer::default())
        .filter(RemoveLongFilter::limit(MAX_WORD_LEN))
        .filter(LowerCaser)
        .filter(HexFragmentFilter)
        .build()
}

/// Whether a (lower-cased) word is a fragment of a random hex identifier: four or more hex
/// digits mixing letters and digits. Such words are nearly all unique, so they would make up
/// most of the word dictionary while almost never being searched for one by one.
pub fn is_hex_fragment(word: &str) -> bool {
    word.len() >= 4
        && word
            .bytes()
            .all(|byte| byte.is_ascii_digit() || (b'a'..=b'f').contains(&byte))
        && word.bytes().any(|byte| byte.is_ascii_digit())
        && word.bytes().any(|byte| byte.is_ascii_alphabetic())
}

/// Drops [`is_hex_fragment`] words.
#[derive(Clone, Copy, Debug)]
pub struct HexFragmentFilter;

impl TokenFilter for HexFragmentFilter {
    type Tokenizer<T: Tokenizer> = HexFragmentTokenizer<T>;

    fn transform<T: Tokenizer>(self, tokenizer: T) -> HexFragmentTokenizer<T> {
        HexFragmentTokenizer(tokenizer)
    }
}

/// [`HexFragmentFilter`] applied to a tokenizer.
#[derive(Clone, Debug)]
pub struct HexFragmentTokenizer<T>(T);

impl<T: Tokenizer> Tokenizer for HexFragmentTokenizer<T> {
    type TokenStream<'a> = HexFragmentStream<T::TokenStream<'a>>;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> Self::TokenStream<'a> {
        HexFragmentStream(self.0.token_stream(text))
    }
}

/// The token stream of [`HexFragmentTokenizer`].
#[derive(Debug)]
pub struct HexFragmentStream<S>(S);

impl<S: TokenStream> TokenStream for HexFragmentStream<S> {
    fn advance(&mut self) -> bool {
        while self.0.advance() {
            if !is_hex_fragment(&self.0.token().text) {
                return true;
            }
        }
        false
    }

    fn token(&self) -> &Token {
        self.0.token()
    }

    fn token_mut(&mut self) -> &mut Token {
        self.0.token_mut()
    }
}
