//! Service log files: what AWS (and the web and database servers beside it) write into buckets
//! and log directories, decoded into events with their original fields and an OCSF rendering.
//!
//! [`decode_object`] takes one whole object (a delivery file, already decompressed) and a
//! [`Format`], and returns its [`Item`]s in order: every record becomes a [`ServiceEvent`] or a
//! [`Rejected`] record (kept byte for byte with the reason). The position of an item in that
//! list is stable, so an import can resume after the last item it stored.
//!
//! An event keeps three things apart:
//!
//! - `raw`: the record's bytes exactly as they are in the file (for JSON sources the record's
//!   own text inside `{"Records":[…]}`, for line sources the line);
//! - `fields`: the original fields of a line source under their AWS (Athena) names, with
//!   numbers as numbers (JSON sources need none: their raw text is their fields);
//! - `ocsf`: the OCSF 1.3 event (class, activity, severity, endpoints, actor, …).
//!
//! [`detect`] picks a format from an object's name (the `AWSLogs/…` layouts) and its first
//! bytes.

use seclog_model::Timestamp;
use serde_json::{Map, Value};

mod cloudtrail;
mod config;
mod database;
mod digest;
mod generate;
mod lines;
mod ocsf;
mod route53;
mod vpcflow;
mod web;

pub use digest::{
    DigestFile, DigestLogFile, ImportedLog, PublicKey, StoredDigest, ValidationReport,
    parse_digest, parse_public_keys, validate,
};
pub use generate::{GENERATED_FORMATS, Generator};
pub use vpcflow::{VPC_DEFAULT_FIELDS, parse_vpc_format};

/// A service log format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// CloudTrail records: delivery files, arrays, single records, NDJSON, EventBridge.
    CloudTrail,
    /// VPC Flow Logs: text with a header line, or the CloudWatch Logs form.
    VpcFlow,
    /// Route 53 Resolver query logs (JSON) and Route 53 public DNS query logs (text).
    Route53,
    /// Application Load Balancer access logs.
    Alb,
    /// Classic Load Balancer access logs.
    Elb,
    /// AWS WAF logs (JSON).
    Waf,
    /// S3 server access logs.
    S3Access,
    /// AWS Config configuration items (history and snapshot files, notifications).
    Config,
    /// PostgreSQL server logs with pgaudit lines (stderr or jsonlog).
    PgAudit,
    /// MySQL Enterprise / Percona audit log JSON, MariaDB server_audit lines.
    MysqlAudit,
    /// Apache / nginx combined (or common) access logs.
    Combined,
}

impl Format {
    /// Every format, in the order `--format` lists them.
    pub const ALL: [Format; 11] = [
        Format::CloudTrail,
        Format::VpcFlow,
        Format::Route53,
        Format::Alb,
        Format::Elb,
        Format::Waf,
        Format::S3Access,
        Format::Config,
        Format::PgAudit,
        Format::MysqlAudit,
        Format::Combined,
    ];

    /// The name `--format` takes.
    pub fn name(self) -> &'static str {
        match self {
            Format::CloudTrail => "cloudtrail",
            Format::VpcFlow => "vpcflow",
            Format::Route53 => "route53",
            Format::Alb => "alb",
            Format::Elb => "elb",
            Format::Waf => "waf",
            Format::S3Access => "s3access",
            Format::Config => "config",
            Format::PgAudit => "pgaudit",
            Format::MysqlAudit => "mysql-audit",
            Format::Combined => "combined",
        }
    }

    /// The format called `name`.
    pub fn parse(name: &str) -> Option<Format> {
        Format::ALL.into_iter().find(|format| format.name() == name)
    }

    /// The group its events go to unless told otherwise.
    pub fn default_group(self) -> String {
        format!("aws/{}", self.name())
    }
}

/// What the raw bytes of an event are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RawKind {
    /// A JSON object.
    Json,
    /// A line of text.
    Text,
}

/// One decoded record.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceEvent {
    /// The record's own time.
    pub time: Option<Timestamp>,
    /// What `raw` is.
    pub kind: RawKind,
    /// The record's bytes as they are in the file.
    pub raw: Vec<u8>,
    /// Original fields of a line record under their AWS names (empty for JSON records).
    pub fields: Map<String, Value>,
    /// The OCSF event; empty for records that carry no event of their own (a PostgreSQL
    /// log line that is not an audit line).
    pub ocsf: Map<String, Value>,
}

/// A record that could not be decoded, kept byte for byte.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    /// The record's bytes.
    pub raw: Vec<u8>,
    /// Why it was not decoded (with its line or record number).
    pub reason: String,
}

/// One record of an object, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Item {
    /// A decoded event.
    Event(ServiceEvent),
    /// A record kept as a dead letter.
    Rejected(Rejected),
}

/// What an object held.
#[derive(Debug, Clone, PartialEq)]
pub enum Decoded {
    /// Records.
    Items(Vec<Item>),
    /// A CloudTrail digest file: not events, but the evidence `validate` checks log files
    /// against.
    Digest(Box<DigestFile>),
}

/// Options a format may need.
#[derive(Debug, Clone, Default)]
pub struct DecodeOptions {
    /// VPC Flow Logs field names for records without a header line (the CloudWatch Logs form);
    /// the default v2 format when `None`.
    pub vpc_fields: Option<Vec<String>>,
}

/// Decodes one whole object.
///
/// Never fails as a whole: what cannot be read becomes [`Rejected`] items, so that nothing
/// in an object is lost silently.
///
/// ```
/// use seclog_formats::service::{Decoded, DecodeOptions, Format, Item, decode_object};
///
/// let file = br#"{"Records":[{"eventVersion":"1.08","eventTime":"2023-07-10T11:45:00Z",
///   "eventSource":"s3.amazonaws.com","eventName":"GetObject","awsRegion":"us-east-1",
///   "sourceIPAddress":"198.51.100.7","userIdentity":{"type":"IAMUser","userName":"ana"}}]}"#;
/// let Decoded::Items(items) = decode_object(Format::CloudTrail, file, &DecodeOptions::default())
/// else { panic!("records") };
/// let [Item::Event(event)] = items.as_slice() else { panic!("one event") };
/// assert_eq!(event.ocsf["class_uid"], 6003);
/// assert_eq!(event.ocsf["api"]["operation"], "GetObject");
/// assert_eq!(event.ocsf["src_endpoint"]["ip"], "198.51.100.7");
/// assert!(event.raw.starts_with(b"{\"eventVersion\""));
/// ```
pub fn decode_object(format: Format, bytes: &[u8], options: &DecodeOptions) -> Decoded {
    let mut items = Vec::new();
    match decode_each(format, bytes, options, &mut |item| items.push(item)) {
        Some(digest) => Decoded::Digest(digest),
        None => Decoded::Items(items),
    }
}

/// [`decode_object`] one item at a time, in order: what an importer uses, so that an object's
/// decoded items (several times its size) are never all in memory. Returns the digest file
/// instead when the object is one (and gives no items).
pub fn decode_each(
    format: Format,
    bytes: &[u8],
    options: &DecodeOptions,
    each: &mut dyn FnMut(Item),
) -> Option<Box<DigestFile>> {
    let bytes = strip_bom(bytes);
    if format == Format::CloudTrail
        && let Some(digest) = digest::sniff_digest(bytes)
    {
        return Some(Box::new(digest));
    }
    let mut sink = FnSink(each);
    let items: &mut dyn Sink = &mut sink;
    match format {
        Format::CloudTrail => cloudtrail::decode(bytes, items),
        Format::VpcFlow => vpcflow::decode(bytes, options, items),
        Format::Route53 => route53::decode(bytes, items),
        Format::Alb => web::decode_alb(bytes, items),
        Format::Elb => web::decode_elb(bytes, items),
        Format::Waf => web::decode_waf(bytes, items),
        Format::S3Access => web::decode_s3_access(bytes, items),
        Format::Combined => web::decode_combined(bytes, items),
        Format::Config => config::decode(bytes, items),
        Format::PgAudit => database::decode_pgaudit(bytes, items),
        Format::MysqlAudit => database::decode_mysql(bytes, items),
    }
    None
}

/// Where decoders put what they decode.
pub(crate) trait Sink {
    fn push(&mut self, item: Item);
}

impl Sink for Vec<Item> {
    fn push(&mut self, item: Item) {
        Vec::push(self, item);
    }
}

struct FnSink<'a>(&'a mut dyn FnMut(Item));

impl Sink for FnSink<'_> {
    fn push(&mut self, item: Item) {
        (self.0)(item);
    }
}

/// The items a decoder gives (for tests).
#[cfg(test)]
pub(crate) fn collect(decode: impl FnOnce(&mut dyn Sink)) -> Vec<Item> {
    let mut items = Vec::new();
    decode(&mut items);
    items
}

/// The format of an object, from its name (the `AWSLogs/<account>/<service>/…` layouts and
/// AWS file names) and, failing that, its first bytes (already decompressed).
pub fn detect(name: &str, head: &[u8]) -> Option<Format> {
    detect_by_name(name, head).or_else(|| detect_by_content(head))
}

fn detect_by_name(name: &str, head: &[u8]) -> Option<Format> {
    let lower = name.to_ascii_lowercase();
    let file = lower.rsplit(['/', '\\']).next().unwrap_or(&lower);
    // `AWSLogs/<account>/<service>/<region>/YYYY/MM/DD/<account>_<service>_<region>_…`
    let service = lower
        .find("awslogs/")
        .and_then(|at| lower.get(at + "awslogs/".len()..))
        .and_then(|rest| {
            let mut parts = rest.split('/');
            let account = parts.next()?;
            // Organization trails add the organization id: AWSLogs/o-xxxx/<account>/…
            let service = if account.starts_with("o-") {
                parts.nth(1)
            } else {
                parts.next()
            };
            service.map(str::to_string)
        });
    // File names AWS gives: `<12-digit account>_<service>_<region>_…`.
    let account_file = file.len() > 13
        && file.bytes().take(12).all(|byte| byte.is_ascii_digit())
        && file.as_bytes().get(12) == Some(&b'_');
    let is = |service_name: &str, file_part: &str| {
        service.as_deref() == Some(service_name)
            || (account_file && file.contains(file_part))
            || (file_part.starts_with("aws-") && lower.contains(file_part))
    };
    if is("cloudtrail", "_cloudtrail_") || is("cloudtrail-digest", "_cloudtrail-digest_") {
        return Some(Format::CloudTrail);
    }
    if is("vpcflowlogs", "_vpcflowlogs_") {
        return Some(Format::VpcFlow);
    }
    if is("vpcdnsquerylogs", "_vpcdnsquerylogs_") {
        return Some(Format::Route53);
    }
    if is("elasticloadbalancing", "_elasticloadbalancing_") {
        // `…_app.<name>.<id>_…` is an ALB, `…_net.…` an NLB (TLS logs, not read here), other
        // names are Classic Load Balancers.
        if file.contains("_net.") {
            return None;
        }
        let first = lines::first_line(head);
        return Some(if file.contains("_app.") || web::is_alb_line(first) {
            Format::Alb
        } else {
            Format::Elb
        });
    }
    if is("waflogs", "aws-waf-logs-") {
        return Some(Format::Waf);
    }
    if is("config", "_config_") {
        return Some(Format::Config);
    }
    None
}

fn detect_by_content(head: &[u8]) -> Option<Format> {
    let head = strip_bom(head);
    let start = head.iter().position(|byte| !byte.is_ascii_whitespace())?;
    let rest = head.get(start..)?;
    if matches!(rest.first(), Some(b'{' | b'[')) {
        return detect_json(rest);
    }
    let line = lines::first_line(rest);
    if vpcflow::is_header(line) || vpcflow::is_default_line(line) {
        return Some(Format::VpcFlow);
    }
    if web::is_alb_line(line) {
        return Some(Format::Alb);
    }
    if web::is_elb_line(line) {
        return Some(Format::Elb);
    }
    if web::is_s3_access_line(line) {
        return Some(Format::S3Access);
    }
    if route53::is_public_dns_line(line) {
        return Some(Format::Route53);
    }
    if database::is_pg_text(rest) {
        return Some(Format::PgAudit);
    }
    if database::is_mariadb_line(line) {
        return Some(Format::MysqlAudit);
    }
    if web::is_combined_line(line) {
        return Some(Format::Combined);
    }
    None
}

/// Looks at the keys of the first JSON record (searched as text: the head may be cut short).
fn detect_json(head: &[u8]) -> Option<Format> {
    let text = String::from_utf8_lossy(head.get(..head.len().min(64 << 10))?);
    let has = |key: &str| text.contains(&format!("\"{key}\""));
    if has("digestStartTime") || has("eventVersion") || has("Records") {
        return Some(Format::CloudTrail);
    }
    if has("detail-type") && has("detail") && text.contains("CloudTrail") {
        return Some(Format::CloudTrail);
    }
    if has("query_name") && has("srcaddr") {
        return Some(Format::Route53);
    }
    if has("webaclId") {
        return Some(Format::Waf);
    }
    if has("configurationItems") || has("configurationItem") || has("configurationItemCaptureTime")
    {
        return Some(Format::Config);
    }
    if has("audit_record") || (has("connection_id") && has("class") && has("event")) {
        return Some(Format::MysqlAudit);
    }
    if text.contains("AUDIT: ") && has("error_severity") {
        return Some(Format::PgAudit);
    }
    if has("logEvents") || has("body") || has("message") {
        // CloudWatch Logs subscription or an OpenTelemetry log record wrapping a line: the
        // line decides.
        let message = lines::first_wrapped_message(&text)?;
        return detect_by_content(message.as_bytes());
    }
    None
}

fn strip_bom(bytes: &[u8]) -> &[u8] {
    bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes)
}

/// Builds a [`Rejected`] item.
fn rejected(raw: &[u8], reason: String) -> Item {
    Item::Rejected(Rejected {
        raw: raw.to_vec(),
        reason,
    })
}
