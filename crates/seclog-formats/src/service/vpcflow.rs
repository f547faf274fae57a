//! VPC Flow Logs: S3 text files (a header line naming the fields, then one record per line),
//! the CloudWatch Logs form (records without a header, in the default v2 format unless told
//! the custom format), and JSON wrappers that hold the line (`logEvents[].message` of a
//! subscription, `body` of an OpenTelemetry record).
//!
//! Fields keep AWS's names (`srcaddr`, `log-status`, `pkt-src-aws-service`); `-` means absent.
//! OCSF: Network Activity (4001), activity Traffic.

use serde_json::value::RawValue;
use serde_json::{Map, Value, json};

use super::lines::{
    array_elements, each_json_value, is_control_message, member_array, numbered_lines,
};
use super::ocsf::{self, NETWORK_ACTIVITY, Severity, Status, put};
use super::{DecodeOptions, Item, RawKind, ServiceEvent, Sink, rejected};
use seclog_model::Timestamp;

/// The default (version 2) format.
pub const VPC_DEFAULT_FIELDS: [&str; 14] = [
    "version",
    "account-id",
    "interface-id",
    "srcaddr",
    "dstaddr",
    "srcport",
    "dstport",
    "protocol",
    "packets",
    "bytes",
    "start",
    "end",
    "action",
    "log-status",
];

/// The fields of versions 3 to 8 beyond the default ones (AWS's list), for header recognition.
const LATER_FIELDS: [&str; 27] = [
    "vpc-id",
    "subnet-id",
    "instance-id",
    "tcp-flags",
    "type",
    "pkt-srcaddr",
    "pkt-dstaddr",
    "region",
    "az-id",
    "sublocation-type",
    "sublocation-id",
    "pkt-src-aws-service",
    "pkt-dst-aws-service",
    "flow-direction",
    "traffic-path",
    "ecs-cluster-arn",
    "ecs-cluster-name",
    "ecs-container-instance-arn",
    "ecs-container-instance-id",
    "ecs-container-id",
    "ecs-second-container-id",
    "ecs-service-name",
    "ecs-task-definition-arn",
    "ecs-task-arn",
    "ecs-task-id",
    "reject-reason",
    "resource-id",
];

/// Fields whose values are numbers.
const NUMERIC: [&str; 10] = [
    "version",
    "srcport",
    "dstport",
    "protocol",
    "packets",
    "bytes",
    "start",
    "end",
    "tcp-flags",
    "traffic-path",
];

/// Field names from a flow log format string (`${version} ${srcaddr} …`) or a header line.
pub fn parse_vpc_format(format: &str) -> Result<Vec<String>, String> {
    let fields: Vec<String> = format
        .split_whitespace()
        .map(|token| {
            token
                .strip_prefix("${")
                .and_then(|rest| rest.strip_suffix('}'))
                .unwrap_or(token)
                .to_string()
        })
        .collect();
    if fields.is_empty() {
        return Err("the flow log format names no fields".into());
    }
    if let Some(bad) = fields.iter().find(|field| !is_field_name(field)) {
        return Err(format!("{bad:?} is not a flow log field name"));
    }
    Ok(fields)
}

fn is_field_name(token: &str) -> bool {
    !token.is_empty()
        && token
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && token.starts_with(|c: char| c.is_ascii_lowercase())
}

/// Whether a line is a header (field names, at least one of them known).
pub(crate) fn is_header(line: &str) -> bool {
    let mut known = false;
    for token in line.split_whitespace() {
        if !is_field_name(token) {
            return false;
        }
        known |= VPC_DEFAULT_FIELDS.contains(&token) || LATER_FIELDS.contains(&token);
    }
    known
}

/// Whether a line looks like a default-format record (`2 123456789012 eni-… …`).
pub(crate) fn is_default_line(line: &str) -> bool {
    let tokens: Vec<&str> = line.split_whitespace().collect();
    tokens.len() == VPC_DEFAULT_FIELDS.len()
        && tokens.first().is_some_and(|v| v.parse::<u8>().is_ok())
        && tokens
            .get(2)
            .is_some_and(|eni| eni.starts_with("eni-") || *eni == "-")
        && tokens
            .get(12)
            .is_some_and(|action| matches!(*action, "ACCEPT" | "REJECT" | "-"))
}

pub(crate) fn decode(bytes: &[u8], options: &DecodeOptions, items: &mut dyn Sink) {
    let default: Vec<String> = VPC_DEFAULT_FIELDS.iter().map(|f| f.to_string()).collect();
    let configured = options.vpc_fields.clone().unwrap_or(default);
    let first = bytes.iter().find(|byte| !byte.is_ascii_whitespace());
    if matches!(first, Some(b'{' | b'[')) {
        return decode_wrapped(bytes, &configured, items);
    }
    let mut names = configured;
    let mut first_line = true;
    for (number, line) in numbered_lines(bytes) {
        let Ok(text) = std::str::from_utf8(line) else {
            items.push(rejected(line, format!("line {number}: not UTF-8")));
            continue;
        };
        if first_line && is_header(text) {
            first_line = false;
            names = text.split_whitespace().map(str::to_string).collect();
            continue;
        }
        first_line = false;
        items.push(record(text, &names, number));
    }
}

/// JSON forms: a subscription payload (`logEvents`), or records with a `message` / `body` line.
fn decode_wrapped(bytes: &[u8], names: &[String], items: &mut dyn Sink) {
    let mut number = 0;
    each_json_value(bytes, items, |value, items| {
        if is_control_message(value) {
            return;
        }
        let records = member_array(value, "logEvents")
            .or_else(|| array_elements(value))
            .unwrap_or_else(|| vec![value]);
        for wrapped in records {
            number += 1;
            match wrapped_line(wrapped) {
                Some(line) => items.push(record(&line, names, number)),
                None => items.push(rejected(
                    wrapped.get().as_bytes(),
                    format!("record {number}: no flow log line (message or body)"),
                )),
            }
        }
    });
}

fn wrapped_line(value: &RawValue) -> Option<String> {
    let object: Map<String, Value> = serde_json::from_str(value.get()).ok()?;
    ["message", "body"]
        .iter()
        .find_map(|key| object.get(*key)?.as_str().map(str::to_string))
}

/// One record line.
fn record(line: &str, names: &[String], number: usize) -> Item {
    let values: Vec<&str> = line.split_whitespace().collect();
    if values.len() != names.len() {
        return rejected(
            line.as_bytes(),
            format!(
                "line {number}: expected {} flow log fields, found {}",
                names.len(),
                values.len()
            ),
        );
    }
    let mut fields = Map::new();
    for (name, value) in names.iter().zip(&values) {
        if *value == "-" {
            continue;
        }
        let parsed = if NUMERIC.contains(&name.as_str()) {
            match value.parse::<u64>() {
                Ok(number) => json!(number),
                Err(_) => {
                    return rejected(
                        line.as_bytes(),
                        format!("line {number}: {name} is not a number: {value:?}"),
                    );
                }
            }
        } else {
            json!(value)
        };
        fields.insert(name.clone(), parsed);
    }
    let seconds = |name: &str| {
        fields
            .get(name)
            .and_then(Value::as_u64)
            .and_then(|s| i64::try_from(s).ok())
            .and_then(|s| s.checked_mul(1_000_000_000))
            .map(Timestamp::from_unix_nanos)
    };
    let time = seconds("start");
    let end = seconds("end");
    let ocsf = normalize(&fields, time, end);
    Item::Event(ServiceEvent {
        time,
        kind: RawKind::Text,
        raw: line.as_bytes().to_vec(),
        fields,
        ocsf,
    })
}

fn normalize(
    fields: &Map<String, Value>,
    start: Option<Timestamp>,
    end: Option<Timestamp>,
) -> Map<String, Value> {
    let get = |name: &str| fields.get(name).cloned().unwrap_or(Value::Null);
    let action = fields.get("action").and_then(Value::as_str);
    let severity = if action == Some("REJECT") {
        Severity::Low
    } else {
        Severity::Informational
    };
    let mut event = ocsf::base(
        NETWORK_ACTIVITY,
        (6, "Traffic"),
        severity,
        start,
        "Amazon VPC",
    );
    match action {
        Some("ACCEPT") => {
            ocsf::set_action(&mut event, true);
        }
        Some("REJECT") => {
            ocsf::set_action(&mut event, false);
        }
        _ => {}
    }
    let log_status = fields.get("log-status").and_then(Value::as_str);
    ocsf::set_status(
        &mut event,
        // NODATA: no traffic in the window (nothing failed); SKIPDATA: records were lost.
        match log_status {
            Some("OK" | "NODATA") => Status::Success,
            Some(_) => Status::Failure,
            None => Status::Unknown,
        },
    );
    put(&mut event, "status_code", get("log-status"));
    if let Some(start) = start {
        put(
            &mut event,
            "start_time",
            json!(start.unix_nanos().div_euclid(1_000_000)),
        );
    }
    if let Some(end) = end {
        put(
            &mut event,
            "end_time",
            json!(end.unix_nanos().div_euclid(1_000_000)),
        );
    }
    ocsf::copy(
        &mut event,
        fields,
        &[
            ("src_endpoint.ip", "srcaddr"),
            ("src_endpoint.port", "srcport"),
            ("src_endpoint.interface_uid", "interface-id"),
            ("src_endpoint.vpc_uid", "vpc-id"),
            ("src_endpoint.subnet_uid", "subnet-id"),
            ("src_endpoint.instance_uid", "instance-id"),
            ("src_endpoint.svc_name", "pkt-src-aws-service"),
            ("dst_endpoint.ip", "dstaddr"),
            ("dst_endpoint.port", "dstport"),
            ("dst_endpoint.svc_name", "pkt-dst-aws-service"),
        ],
    );
    if let Some(protocol) = fields.get("protocol").and_then(Value::as_u64) {
        put(&mut event, "connection_info.protocol_num", json!(protocol));
        if let Some(name) = ocsf::protocol_name(protocol) {
            put(&mut event, "connection_info.protocol_name", json!(name));
        }
    }
    put(&mut event, "connection_info.tcp_flags", get("tcp-flags"));
    match fields.get("flow-direction").and_then(Value::as_str) {
        Some("ingress") => {
            put(&mut event, "connection_info.direction_id", json!(1));
            put(&mut event, "connection_info.direction", json!("Inbound"));
        }
        Some("egress") => {
            put(&mut event, "connection_info.direction_id", json!(2));
            put(&mut event, "connection_info.direction", json!("Outbound"));
        }
        _ => {}
    }
    put(&mut event, "traffic.packets", get("packets"));
    put(&mut event, "traffic.bytes", get("bytes"));
    put(&mut event, "cloud.provider", json!("AWS"));
    ocsf::copy(
        &mut event,
        fields,
        &[
            ("cloud.account.uid", "account-id"),
            ("cloud.region", "region"),
            ("cloud.zone", "az-id"),
            ("metadata.log_version", "version"),
        ],
    );
    put(&mut event, "metadata.log_name", json!("VPC Flow Logs"));
    event
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::panic, clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn header_lines_name_the_fields() {
        let file = b"version vpc-id srcaddr dstaddr srcport dstport protocol start end action flow-direction\n\
                     5 vpc-1 10.0.0.1 10.0.0.2 443 50000 6 1700000000 1700000060 ACCEPT egress\n\
                     5 vpc-1 10.0.0.1 - - - - 1700000000 1700000060 - -\n\
                     5 vpc-1 only three\n";
        let items = super::super::collect(|items| decode(file, &DecodeOptions::default(), items));
        let [Item::Event(first), Item::Event(nodata), Item::Rejected(bad)] = items.as_slice()
        else {
            panic!("{items:?}")
        };
        assert_eq!(first.fields["vpc-id"], "vpc-1");
        assert_eq!(first.fields["srcport"], 443);
        assert_eq!(first.ocsf["connection_info"]["direction"], "Outbound");
        assert_eq!(first.ocsf["dst_endpoint"]["port"], 50000);
        assert_eq!(
            first.time.map(|t| t.unix_nanos()),
            Some(1_700_000_000_000_000_000)
        );
        assert!(!nodata.fields.contains_key("dstaddr"));
        assert!(
            bad.reason
                .contains("line 4: expected 11 flow log fields, found 4")
        );
    }

    #[test]
    fn format_strings_parse() {
        assert_eq!(
            parse_vpc_format("${version} ${vpc-id} ${srcaddr}").expect("format"),
            ["version", "vpc-id", "srcaddr"]
        );
        assert!(parse_vpc_format("${Version}").is_err());
    }
}
