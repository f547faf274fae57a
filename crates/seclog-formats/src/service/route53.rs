//! Route 53 DNS query logs: Resolver query logs (one JSON object per query, in files, NDJSON or
//! CloudWatch Logs subscription payloads) and public hosted-zone query logs (text lines:
//! `1.0 2017-12-13T08:15:50.235Z Z123 example.com A NOERROR UDP FRA6 192.0.2.1 -`, fields named
//! as Logs Insights discovers them).
//!
//! OCSF: DNS Activity (4003), activity Traffic (a query with its response).

use serde_json::{Map, Value, json};

use super::lines::{
    array_elements, each_json_value, is_control_message, member_array, numbered_lines,
};
use super::ocsf::{self, DNS_ACTIVITY, Severity, Status, put, str_at};
use super::{Item, RawKind, ServiceEvent, Sink, rejected};
use crate::time_value::parse_time_str;

/// Field names of a public DNS query log line, in order.
const PUBLIC_FIELDS: [&str; 10] = [
    "version",
    "queryTimestamp",
    "hostZoneId",
    "queryName",
    "queryType",
    "responseCode",
    "protocol",
    "edgeLocation",
    "resolverIp",
    "ednsClientSubnet",
];

/// Whether a line is a public DNS query log line.
pub(crate) fn is_public_dns_line(line: &str) -> bool {
    let tokens: Vec<&str> = line.split_whitespace().collect();
    tokens.len() == PUBLIC_FIELDS.len()
        && tokens.first() == Some(&"1.0")
        && tokens.get(1).and_then(|t| parse_time_str(t)).is_some()
        && tokens.get(2).is_some_and(|zone| zone.starts_with('Z'))
}

pub(crate) fn decode(bytes: &[u8], items: &mut dyn Sink) {
    let first = bytes.iter().find(|byte| !byte.is_ascii_whitespace());
    if matches!(first, Some(b'{' | b'[')) {
        decode_json(bytes, items);
    } else {
        for (number, line) in numbered_lines(bytes) {
            items.push(public_line(line, number));
        }
    }
}

fn decode_json(bytes: &[u8], items: &mut dyn Sink) {
    let mut number = 0;
    each_json_value(bytes, items, |value, items| {
        if is_control_message(value) {
            return;
        }
        if let Some(events) = member_array(value, "logEvents") {
            for event in events {
                number += 1;
                let message = serde_json::from_str::<Map<String, Value>>(event.get())
                    .ok()
                    .and_then(|object| object.get("message")?.as_str().map(str::to_string));
                match message {
                    Some(message) if message.trim_start().starts_with('{') => {
                        items.push(resolver_record(message.as_bytes(), number));
                    }
                    Some(message) => items.push(public_line(message.as_bytes(), number)),
                    None => items.push(rejected(
                        event.get().as_bytes(),
                        format!("record {number}: a CloudWatch Logs event without a message"),
                    )),
                }
            }
            return;
        }
        for record in array_elements(value).unwrap_or_else(|| vec![value]) {
            number += 1;
            items.push(resolver_record(record.get().as_bytes(), number));
        }
    });
}

fn resolver_record(raw: &[u8], number: usize) -> Item {
    let record: Value = match serde_json::from_slice(raw) {
        Ok(value @ Value::Object(_)) => value,
        Ok(_) => return rejected(raw, format!("record {number}: not a JSON object")),
        Err(error) => return rejected(raw, format!("record {number}: invalid JSON: {error}")),
    };
    if record.get("query_name").is_none() {
        return rejected(
            raw,
            format!("record {number}: not a Route 53 Resolver query log record (no query_name)"),
        );
    }
    let time = str_at(&record, "query_timestamp").and_then(parse_time_str);
    let firewall = str_at(&record, "firewall_rule_action");
    let severity = match firewall {
        Some("BLOCK") => Severity::Medium,
        Some("ALERT") => Severity::Low,
        _ => Severity::Informational,
    };
    let mut event = ocsf::base(DNS_ACTIVITY, (6, "Traffic"), severity, time, "Route 53");
    let field = |path: &str| ocsf::at(&record, path).cloned().unwrap_or(Value::Null);
    put(&mut event, "query.hostname", field("query_name"));
    put(&mut event, "query.type", field("query_type"));
    put(&mut event, "query.class", field("query_class"));
    if let Some(Value::Array(answers)) = record.get("answers") {
        let answers: Vec<Value> = answers
            .iter()
            .map(|answer| {
                let mut out = Map::new();
                put(
                    &mut out,
                    "rdata",
                    answer.get("Rdata").cloned().unwrap_or_default(),
                );
                put(
                    &mut out,
                    "type",
                    answer.get("Type").cloned().unwrap_or_default(),
                );
                put(
                    &mut out,
                    "class",
                    answer.get("Class").cloned().unwrap_or_default(),
                );
                Value::Object(out)
            })
            .collect();
        put(&mut event, "answers", Value::Array(answers));
    }
    rcode(&mut event, str_at(&record, "rcode"));
    put(&mut event, "src_endpoint.ip", field("srcaddr"));
    put(&mut event, "src_endpoint.port", port(record.get("srcport")));
    put(
        &mut event,
        "src_endpoint.instance_uid",
        field("srcids.instance"),
    );
    put(&mut event, "src_endpoint.vpc_uid", field("vpc_id"));
    put(
        &mut event,
        "dst_endpoint.uid",
        field("srcids.resolver_endpoint"),
    );
    if let Some(transport) = str_at(&record, "transport") {
        put(
            &mut event,
            "connection_info.protocol_name",
            json!(transport.to_ascii_lowercase()),
        );
    }
    match firewall {
        Some("BLOCK") => {
            ocsf::set_action(&mut event, false);
        }
        Some("ALLOW") => {
            ocsf::set_action(&mut event, true);
        }
        Some("ALERT") => {
            put(&mut event, "disposition_id", json!(17));
            put(&mut event, "disposition", json!("Logged"));
        }
        _ => {}
    }
    put(&mut event, "cloud.provider", json!("AWS"));
    put(&mut event, "cloud.account.uid", field("account_id"));
    put(&mut event, "cloud.region", field("region"));
    put(&mut event, "metadata.log_version", field("version"));
    put(
        &mut event,
        "metadata.log_name",
        json!("Route 53 Resolver query logs"),
    );
    Item::Event(ServiceEvent {
        time,
        kind: RawKind::Json,
        raw: raw.to_vec(),
        fields: Map::new(),
        ocsf: event,
    })
}

fn port(value: Option<&Value>) -> Value {
    match value {
        Some(Value::String(text)) => text.parse::<u16>().map_or(Value::Null, |p| json!(p)),
        Some(number @ Value::Number(_)) => number.clone(),
        _ => Value::Null,
    }
}

fn public_line(line: &[u8], number: usize) -> Item {
    let Ok(text) = std::str::from_utf8(line) else {
        return rejected(line, format!("line {number}: not UTF-8"));
    };
    let values: Vec<&str> = text.split_whitespace().collect();
    if values.len() != PUBLIC_FIELDS.len() {
        return rejected(
            line,
            format!(
                "line {number}: expected {} Route 53 query log fields, found {}",
                PUBLIC_FIELDS.len(),
                values.len()
            ),
        );
    }
    let mut fields = Map::new();
    for (name, value) in PUBLIC_FIELDS.iter().zip(&values) {
        if *value != "-" {
            fields.insert(name.to_string(), json!(value));
        }
    }
    let Some(time) = values.get(1).and_then(|t| parse_time_str(t)) else {
        return rejected(line, format!("line {number}: the query time is not a time"));
    };
    let get = |name: &str| fields.get(name).cloned().unwrap_or(Value::Null);
    let mut event = ocsf::base(
        DNS_ACTIVITY,
        (6, "Traffic"),
        Severity::Informational,
        Some(time),
        "Route 53",
    );
    put(&mut event, "query.hostname", get("queryName"));
    put(&mut event, "query.type", get("queryType"));
    rcode(
        &mut event,
        fields.get("responseCode").and_then(Value::as_str),
    );
    ocsf::copy(
        &mut event,
        &fields,
        &[
            ("src_endpoint.ip", "resolverIp"),
            ("dst_endpoint.location.desc", "edgeLocation"),
            ("dst_endpoint.uid", "hostZoneId"),
        ],
    );
    if let Some(protocol) = fields.get("protocol").and_then(Value::as_str) {
        put(
            &mut event,
            "connection_info.protocol_name",
            json!(protocol.to_ascii_lowercase()),
        );
    }
    put(&mut event, "cloud.provider", json!("AWS"));
    put(&mut event, "metadata.log_version", get("version"));
    put(
        &mut event,
        "metadata.log_name",
        json!("Route 53 public DNS query logs"),
    );
    Item::Event(ServiceEvent {
        time: Some(time),
        kind: RawKind::Text,
        raw: line.to_vec(),
        fields,
        ocsf: event,
    })
}

/// `rcode`, `rcode_id` and the status they imply.
fn rcode(event: &mut Map<String, Value>, code: Option<&str>) {
    let Some(code) = code else {
        ocsf::set_status(event, Status::Unknown);
        return;
    };
    let id = match code {
        "NOERROR" => 0,
        "FORMERR" => 1,
        "SERVFAIL" => 2,
        "NXDOMAIN" => 3,
        "NOTIMP" => 4,
        "REFUSED" => 5,
        "YXDOMAIN" => 6,
        "YXRRSET" => 7,
        "NXRRSET" => 8,
        "NOTAUTH" => 9,
        "NOTZONE" => 10,
        _ => 99,
    };
    put(event, "rcode", json!(code));
    put(event, "rcode_id", json!(id));
    ocsf::set_status(
        event,
        if id == 0 {
            Status::Success
        } else {
            Status::Failure
        },
    );
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::panic, clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn resolver_and_public_records() {
        let resolver = br#"{"version":"1.100000","account_id":"111122223333","region":"us-east-1","vpc_id":"vpc-1","query_timestamp":"2024-03-01T10:00:00Z","query_name":"example.com.","query_type":"A","query_class":"IN","rcode":"NXDOMAIN","answers":[],"srcaddr":"10.0.0.5","srcport":"53123","transport":"UDP","srcids":{"instance":"i-1"}}"#;
        let items = super::super::collect(|items| decode(resolver, items));
        let [Item::Event(event)] = items.as_slice() else {
            panic!("{items:?}")
        };
        assert_eq!(event.ocsf["rcode_id"], 3);
        assert_eq!(event.ocsf["src_endpoint"]["port"], 53123);
        assert_eq!(event.ocsf["status"], "Failure");
        let public = b"1.0 2017-12-13T08:15:50.235Z Z123412341234 example.com A NOERROR UDP FRA6 192.168.1.1 -\n";
        let items = super::super::collect(|items| decode(public, items));
        let [Item::Event(event)] = items.as_slice() else {
            panic!("{items:?}")
        };
        assert_eq!(event.fields["resolverIp"], "192.168.1.1");
        assert!(!event.fields.contains_key("ednsClientSubnet"));
        assert_eq!(event.ocsf["query"]["hostname"], "example.com");
    }
}
