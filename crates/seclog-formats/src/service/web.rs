//! Access logs of things that serve HTTP: Application and Classic Load Balancers, S3 server
//! access logs, AWS WAF, and Apache / nginx combined (or common) logs.
//!
//! Line formats keep Athena's column names (`client_ip`, `elb_status_code`, `requestdatetime`,
//! …) and nginx's variable names for combined logs (`remote_addr`, `status`, …); numbers are
//! numbers and `-` is absent. OCSF: HTTP Activity (4002), except S3 server access logs, which
//! record S3 API calls: API Activity (6003).

use serde_json::{Map, Value, json};

use super::lines::{each_json_value, numbered_lines, split_fields};
use super::ocsf::{self, API_ACTIVITY, HTTP_ACTIVITY, Severity, Status, put, str_at};
use super::{Item, RawKind, ServiceEvent, Sink, rejected};
use crate::time_value::{parse_time_str, parse_time_value};
use seclog_model::Timestamp;

/// How a column's text becomes a value.
#[derive(Clone, Copy)]
enum Kind {
    Text,
    Int,
    Float,
    /// `ip:port`, stored as `<name>_ip` and `<name>_port`.
    HostPort,
    /// `METHOD URL PROTO`, stored under the three names given.
    Request([&'static str; 3]),
}

use Kind::{Float, HostPort, Int, Request, Text};

const ALB_COLUMNS: &[(&str, Kind)] = &[
    ("type", Text),
    ("time", Text),
    ("elb", Text),
    ("client", HostPort),
    ("target", HostPort),
    ("request_processing_time", Float),
    ("target_processing_time", Float),
    ("response_processing_time", Float),
    ("elb_status_code", Int),
    ("target_status_code", Int),
    ("received_bytes", Int),
    ("sent_bytes", Int),
    (
        "request",
        Request(["request_verb", "request_url", "request_proto"]),
    ),
    ("user_agent", Text),
    ("ssl_cipher", Text),
    ("ssl_protocol", Text),
    ("target_group_arn", Text),
    ("trace_id", Text),
    ("domain_name", Text),
    ("chosen_cert_arn", Text),
    ("matched_rule_priority", Int),
    ("request_creation_time", Text),
    ("actions_executed", Text),
    ("redirect_url", Text),
    ("error_reason", Text),
    ("target_port_list", Text),
    ("target_status_code_list", Text),
    ("classification", Text),
    ("classification_reason", Text),
    ("conn_trace_id", Text),
    ("transformed_host", Text),
    ("transformed_uri", Text),
    ("request_transform_status", Text),
];

const ELB_COLUMNS: &[(&str, Kind)] = &[
    ("request_timestamp", Text),
    ("elb_name", Text),
    ("request", HostPort),
    ("backend", HostPort),
    ("request_processing_time", Float),
    ("backend_processing_time", Float),
    ("client_response_time", Float),
    ("elb_response_code", Int),
    ("backend_response_code", Int),
    ("received_bytes", Int),
    ("sent_bytes", Int),
    ("request_line", Request(["request_verb", "url", "protocol"])),
    ("user_agent", Text),
    ("ssl_cipher", Text),
    ("ssl_protocol", Text),
];

const S3_COLUMNS: &[(&str, Kind)] = &[
    ("bucketowner", Text),
    ("bucket_name", Text),
    ("requestdatetime", Text),
    ("remoteip", Text),
    ("requester", Text),
    ("requestid", Text),
    ("operation", Text),
    ("key", Text),
    ("request_uri", Text),
    ("httpstatus", Int),
    ("errorcode", Text),
    ("bytessent", Int),
    ("objectsize", Int),
    ("totaltime", Int),
    ("turnaroundtime", Int),
    ("referrer", Text),
    ("useragent", Text),
    ("versionid", Text),
    ("hostid", Text),
    ("sigv", Text),
    ("ciphersuite", Text),
    ("authtype", Text),
    ("endpoint", Text),
    ("tlsversion", Text),
    ("accesspointarn", Text),
    ("aclrequired", Text),
];

const COMBINED_COLUMNS: &[(&str, Kind)] = &[
    ("remote_addr", Text),
    ("remote_ident", Text),
    ("remote_user", Text),
    ("time_local", Text),
    (
        "request",
        Request(["request_method", "request_uri", "server_protocol"]),
    ),
    ("status", Int),
    ("body_bytes_sent", Int),
    ("http_referer", Text),
    ("http_user_agent", Text),
];

/// Whether a line is an ALB access log line.
pub(crate) fn is_alb_line(line: &str) -> bool {
    let mut tokens = line.split(' ');
    matches!(
        tokens.next(),
        Some("http" | "https" | "h2" | "grpcs" | "ws" | "wss")
    ) && tokens.next().and_then(parse_time_str).is_some()
}

/// Whether a line is a Classic Load Balancer access log line.
pub(crate) fn is_elb_line(line: &str) -> bool {
    let mut tokens = line.split(' ');
    tokens.next().and_then(parse_time_str).is_some()
        && tokens.next().is_some_and(|name| !name.is_empty())
        && tokens.next().is_some_and(|client| client.contains(':'))
}

/// Whether a line is an S3 server access log line (canonical owner id, bucket, `[time]`).
pub(crate) fn is_s3_access_line(line: &str) -> bool {
    let mut tokens = line.splitn(3, ' ');
    tokens
        .next()
        .is_some_and(|owner| owner.len() == 64 && owner.bytes().all(|b| b.is_ascii_hexdigit()))
        && tokens.next().is_some()
        && tokens.next().is_some_and(|rest| rest.starts_with('['))
}

/// Whether a line is a combined / common access log line.
pub(crate) fn is_combined_line(line: &str) -> bool {
    split_fields(line).is_ok_and(|fields| {
        fields.len() >= 7
            && fields.get(3).and_then(|t| parse_clf_time(t)).is_some()
            && fields.get(5).is_some_and(|s| s.parse::<u16>().is_ok())
    })
}

pub(crate) fn decode_alb(bytes: &[u8], items: &mut dyn Sink) {
    decode_lines(bytes, items, |line, number| {
        let fields = columns(line, ALB_COLUMNS, 13, "ALB", number)?;
        let time = fields
            .get("time")
            .and_then(Value::as_str)
            .and_then(parse_time_str);
        let status = fields.get("elb_status_code").and_then(Value::as_u64);
        let mut event = http_event(time, status, "Elastic Load Balancing");
        request(
            &mut event,
            &fields,
            "request_verb",
            "request_url",
            "request_proto",
        );
        ocsf::copy(
            &mut event,
            &fields,
            &[
                ("http_request.user_agent", "user_agent"),
                ("http_request.uid", "trace_id"),
                ("http_response.code", "elb_status_code"),
                ("src_endpoint.ip", "client_ip"),
                ("src_endpoint.port", "client_port"),
                ("dst_endpoint.ip", "target_ip"),
                ("dst_endpoint.port", "target_port"),
                ("dst_endpoint.uid", "elb"),
                ("dst_endpoint.domain", "domain_name"),
                ("traffic.bytes_in", "received_bytes"),
                ("traffic.bytes_out", "sent_bytes"),
                ("tls.cipher", "ssl_cipher"),
                ("tls.version", "ssl_protocol"),
                ("status_detail", "error_reason"),
            ],
        );
        put(&mut event, "metadata.log_name", json!("ALB access logs"));
        Ok((time, fields, event))
    })
}

pub(crate) fn decode_elb(bytes: &[u8], items: &mut dyn Sink) {
    decode_lines(bytes, items, |line, number| {
        let fields = columns(line, ELB_COLUMNS, 12, "Classic Load Balancer", number)?;
        let time = fields
            .get("request_timestamp")
            .and_then(Value::as_str)
            .and_then(parse_time_str);
        let status = fields.get("elb_response_code").and_then(Value::as_u64);
        let mut event = http_event(time, status, "Elastic Load Balancing");
        request(&mut event, &fields, "request_verb", "url", "protocol");
        ocsf::copy(
            &mut event,
            &fields,
            &[
                ("http_request.user_agent", "user_agent"),
                ("http_response.code", "elb_response_code"),
                ("src_endpoint.ip", "request_ip"),
                ("src_endpoint.port", "request_port"),
                ("dst_endpoint.ip", "backend_ip"),
                ("dst_endpoint.port", "backend_port"),
                ("dst_endpoint.uid", "elb_name"),
                ("traffic.bytes_in", "received_bytes"),
                ("traffic.bytes_out", "sent_bytes"),
                ("tls.cipher", "ssl_cipher"),
                ("tls.version", "ssl_protocol"),
            ],
        );
        put(&mut event, "metadata.log_name", json!("ELB access logs"));
        Ok((time, fields, event))
    })
}

pub(crate) fn decode_s3_access(bytes: &[u8], items: &mut dyn Sink) {
    decode_lines(bytes, items, |line, number| {
        let fields = columns(line, S3_COLUMNS, 18, "S3 server access log", number)?;
        let time = fields
            .get("requestdatetime")
            .and_then(Value::as_str)
            .and_then(parse_clf_time);
        if time.is_none() {
            return Err(format!("line {number}: the request time is not a time"));
        }
        let status = fields.get("httpstatus").and_then(Value::as_u64);
        let error = fields.get("errorcode").and_then(Value::as_str);
        let operation = fields
            .get("operation")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let severity = match (error, status) {
            (Some(code), _) if code.contains("AccessDenied") => Severity::Medium,
            (Some(_), _) => Severity::Low,
            (None, Some(code)) if code >= 400 => Severity::Low,
            _ => Severity::Informational,
        };
        let mut event = ocsf::base(
            API_ACTIVITY,
            s3_activity(operation),
            severity,
            time,
            "Amazon S3",
        );
        ocsf::set_status(
            &mut event,
            if error.is_some() || status.is_some_and(|code| code >= 400) {
                Status::Failure
            } else {
                Status::Success
            },
        );
        let get = |name: &str| fields.get(name).cloned().unwrap_or(Value::Null);
        put(&mut event, "api.operation", json!(operation));
        put(&mut event, "api.service.name", json!("s3.amazonaws.com"));
        ocsf::copy(
            &mut event,
            &fields,
            &[
                ("api.request.uid", "requestid"),
                ("api.response.error", "errorcode"),
                ("status_code", "errorcode"),
                ("http_response.code", "httpstatus"),
                ("actor.user.uid", "requester"),
                ("src_endpoint.ip", "remoteip"),
                ("http_request.user_agent", "useragent"),
                ("http_request.referrer", "referrer"),
            ],
        );
        if let Some(line) = fields.get("request_uri").and_then(Value::as_str)
            && let Some(parts) = ocsf::request_line(line)
        {
            put(&mut event, "http_request.http_method", json!(parts.method));
            put(
                &mut event,
                "http_request.url",
                ocsf::url(parts.target, fields.get("endpoint").and_then(Value::as_str)),
            );
        }
        put(&mut event, "tls.cipher", get("ciphersuite"));
        put(&mut event, "tls.version", get("tlsversion"));
        let bucket = fields.get("bucket_name").and_then(Value::as_str);
        let key = fields.get("key").and_then(Value::as_str);
        if let Some(bucket) = bucket {
            let uid = match key {
                Some(key) => format!("arn:aws:s3:::{bucket}/{key}"),
                None => format!("arn:aws:s3:::{bucket}"),
            };
            let kind = if key.is_some() {
                "AWS::S3::Object"
            } else {
                "AWS::S3::Bucket"
            };
            put(
                &mut event,
                "resources",
                json!([{"uid": uid, "type": kind, "owner": {"uid": get("bucketowner")}}]),
            );
        }
        put(&mut event, "cloud.provider", json!("AWS"));
        put(
            &mut event,
            "metadata.log_name",
            json!("S3 server access logs"),
        );
        Ok((time, fields, event))
    })
}

pub(crate) fn decode_combined(bytes: &[u8], items: &mut dyn Sink) {
    decode_lines(bytes, items, |line, number| {
        let fields = columns(line, COMBINED_COLUMNS, 7, "access log", number)?;
        let time = fields
            .get("time_local")
            .and_then(Value::as_str)
            .and_then(parse_clf_time);
        if time.is_none() {
            return Err(format!("line {number}: the request time is not a time"));
        }
        let status = fields.get("status").and_then(Value::as_u64);
        let mut event = http_event(time, status, "Web server");
        request(
            &mut event,
            &fields,
            "request_method",
            "request_uri",
            "server_protocol",
        );
        ocsf::copy(
            &mut event,
            &fields,
            &[
                ("http_request.user_agent", "http_user_agent"),
                ("http_request.referrer", "http_referer"),
                ("http_response.code", "status"),
                ("src_endpoint.ip", "remote_addr"),
                ("actor.user.name", "remote_user"),
                ("traffic.bytes_out", "body_bytes_sent"),
            ],
        );
        put(&mut event, "metadata.log_name", json!("access log"));
        Ok((time, fields, event))
    })
}

pub(crate) fn decode_waf(bytes: &[u8], items: &mut dyn Sink) {
    let mut number = 0;
    each_json_value(bytes, items, |value, items| {
        number += 1;
        let raw = value.get().as_bytes();
        let record: Value = match serde_json::from_slice(raw) {
            Ok(value @ Value::Object(_)) => value,
            _ => {
                items.push(rejected(raw, format!("record {number}: not a JSON object")));
                return;
            }
        };
        if record.get("webaclId").is_none() || record.get("httpRequest").is_none() {
            items.push(rejected(
                raw,
                format!("record {number}: not an AWS WAF log record (no webaclId or httpRequest)"),
            ));
            return;
        }
        items.push(Item::Event(ServiceEvent {
            time: record.get("timestamp").and_then(parse_time_value),
            kind: RawKind::Json,
            raw: raw.to_vec(),
            fields: Map::new(),
            ocsf: waf_event(&record),
        }));
    });
}

fn waf_event(record: &Value) -> Map<String, Value> {
    let time = record.get("timestamp").and_then(parse_time_value);
    let action = str_at(record, "action").unwrap_or_default();
    let severity = match action {
        "BLOCK" => Severity::Medium,
        "CAPTCHA" | "CHALLENGE" => Severity::Low,
        _ => Severity::Informational,
    };
    let method = str_at(record, "httpRequest.httpMethod").unwrap_or_default();
    let mut event = ocsf::base(
        HTTP_ACTIVITY,
        seclog_model::ocsf::http_activity(method),
        severity,
        time,
        "AWS WAF",
    );
    let header = |name: &str| {
        record
            .get("httpRequest")
            .and_then(|request| request.get("headers"))
            .and_then(Value::as_array)
            .and_then(|headers| {
                headers.iter().find(|header| {
                    str_at(header, "name").is_some_and(|n| n.eq_ignore_ascii_case(name))
                })
            })
            .and_then(|header| header.get("value"))
            .cloned()
            .unwrap_or(Value::Null)
    };
    let field = |path: &str| ocsf::at(record, path).cloned().unwrap_or(Value::Null);
    match action {
        "ALLOW" => {
            ocsf::set_action(&mut event, true);
        }
        "BLOCK" => {
            ocsf::set_action(&mut event, false);
        }
        other => {
            put(&mut event, "action_id", json!(99));
            put(&mut event, "action", json!(other));
        }
    }
    ocsf::set_status(&mut event, Status::Success);
    put(&mut event, "http_request.http_method", json!(method));
    put(
        &mut event,
        "http_request.version",
        field("httpRequest.httpVersion"),
    );
    put(
        &mut event,
        "http_request.uid",
        field("httpRequest.requestId"),
    );
    put(&mut event, "http_request.user_agent", header("user-agent"));
    put(&mut event, "http_request.referrer", header("referer"));
    let mut url = Map::new();
    put(&mut url, "hostname", header("host"));
    put(&mut url, "path", field("httpRequest.uri"));
    put(&mut url, "query_string", field("httpRequest.args"));
    put(&mut event, "http_request.url", Value::Object(url));
    put(&mut event, "http_response.code", field("responseCodeSent"));
    put(&mut event, "src_endpoint.ip", field("httpRequest.clientIp"));
    put(
        &mut event,
        "src_endpoint.location.country",
        field("httpRequest.country"),
    );
    put(&mut event, "firewall_rule.uid", field("terminatingRuleId"));
    put(
        &mut event,
        "firewall_rule.type",
        field("terminatingRuleType"),
    );
    put(&mut event, "dst_endpoint.uid", field("webaclId"));
    put(&mut event, "dst_endpoint.svc_name", field("httpSourceName"));
    put(&mut event, "cloud.provider", json!("AWS"));
    put(&mut event, "metadata.log_version", field("formatVersion"));
    put(&mut event, "metadata.log_name", json!("AWS WAF logs"));
    event
}

type Decoded = (Option<Timestamp>, Map<String, Value>, Map<String, Value>);

fn decode_lines(
    bytes: &[u8],
    items: &mut dyn Sink,
    mut decode: impl FnMut(&str, usize) -> Result<Decoded, String>,
) {
    for (number, line) in numbered_lines(bytes) {
        let Ok(text) = std::str::from_utf8(line) else {
            items.push(rejected(line, format!("line {number}: not UTF-8")));
            continue;
        };
        items.push(match decode(text, number) {
            Ok((time, fields, ocsf)) => Item::Event(ServiceEvent {
                time,
                kind: RawKind::Text,
                raw: line.to_vec(),
                fields,
                ocsf,
            }),
            Err(reason) => rejected(line, reason),
        });
    }
}

/// Splits a line into the named columns; at least `required` must be present, and columns
/// past the known ones are ignored (AWS adds fields at the end).
fn columns(
    line: &str,
    names: &[(&str, Kind)],
    required: usize,
    what: &str,
    number: usize,
) -> Result<Map<String, Value>, String> {
    let values = split_fields(line).map_err(|reason| format!("line {number}: {reason}"))?;
    if values.len() < required {
        return Err(format!(
            "line {number}: not a {what} line: {} fields, at least {required} expected",
            values.len()
        ));
    }
    let mut fields = Map::new();
    for ((name, kind), value) in names.iter().zip(&values) {
        if value == "-" || value.is_empty() {
            continue;
        }
        match kind {
            Text => {
                fields.insert(name.to_string(), json!(value));
            }
            Int => {
                let parsed = value
                    .parse::<i64>()
                    .map_or_else(|_| json!(value), |n| json!(n));
                fields.insert(name.to_string(), parsed);
            }
            Float => {
                let parsed = value
                    .parse::<f64>()
                    .ok()
                    .filter(|n| n.is_finite())
                    .map_or_else(|| json!(value), |n| json!(n));
                fields.insert(name.to_string(), parsed);
            }
            HostPort => {
                let (address, port) = ocsf::host_port(value);
                if let Some(address) = address {
                    fields.insert(format!("{name}_ip"), json!(address));
                }
                if let Some(port) = port {
                    fields.insert(format!("{name}_port"), json!(port));
                }
            }
            Request([method, target, version]) => {
                if let Some(parts) = ocsf::request_line(value) {
                    fields.insert(method.to_string(), json!(parts.method));
                    fields.insert(target.to_string(), json!(parts.target));
                    if let Some(proto) = parts.version.filter(|v| !v.is_empty() && *v != "-") {
                        fields.insert(version.to_string(), json!(proto));
                    }
                } else {
                    fields.insert(name.to_string(), json!(value));
                }
            }
        }
    }
    Ok(fields)
}

/// An HTTP Activity event with its activity, status and severity from the response code.
fn http_event(time: Option<Timestamp>, status: Option<u64>, product: &str) -> Map<String, Value> {
    let severity = match status {
        Some(code) if code >= 500 => Severity::Low,
        _ => Severity::Informational,
    };
    let mut event = ocsf::base(HTTP_ACTIVITY, (99, "Other"), severity, time, product);
    ocsf::set_status(
        &mut event,
        match status {
            Some(code) if code < 400 => Status::Success,
            Some(_) => Status::Failure,
            None => Status::Unknown,
        },
    );
    event
}

/// Fills `http_request` (method, url, version) and the activity from split request columns.
fn request(
    event: &mut Map<String, Value>,
    fields: &Map<String, Value>,
    method: &str,
    target: &str,
    version: &str,
) {
    let Some(method) = fields.get(method).and_then(Value::as_str) else {
        return;
    };
    let (activity_id, activity_name) = seclog_model::ocsf::http_activity(method);
    event.insert("activity_id".into(), json!(activity_id));
    event.insert("activity_name".into(), json!(activity_name));
    event.insert("type_uid".into(), json!(400_200 + u64::from(activity_id)));
    event.insert(
        "type_name".into(),
        json!(format!("HTTP Activity: {activity_name}")),
    );
    put(event, "http_request.http_method", json!(method));
    if let Some(target) = fields.get(target).and_then(Value::as_str) {
        put(event, "http_request.url", ocsf::url(target, None));
    }
    put(
        event,
        "http_request.version",
        fields.get(version).cloned().unwrap_or(Value::Null),
    );
}

/// S3 operations (`REST.GET.OBJECT`) as API Activity activities.
fn s3_activity(operation: &str) -> (u32, &'static str) {
    let verb = operation.split('.').nth(1).unwrap_or_default();
    match verb {
        "GET" | "HEAD" => (2, "Read"),
        "PUT" | "POST" | "COPY" => (1, "Create"),
        "DELETE" => (4, "Delete"),
        _ => (99, "Other"),
    }
}

/// `10/Oct/2000:13:55:36 -0700` (the common log format's time).
pub(crate) fn parse_clf_time(text: &str) -> Option<Timestamp> {
    let (date_time, zone) = text.split_once(' ')?;
    let mut parts = date_time.splitn(3, '/');
    let day: u32 = parts.next()?.parse().ok()?;
    let month = parts.next()?;
    let rest = parts.next()?;
    let (year, clock) = rest.split_once(':')?;
    let month = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ]
    .iter()
    .position(|name| *name == month)?;
    let year: i64 = year.parse().ok()?;
    let mut clock = clock.split(':');
    let hour: i64 = clock.next()?.parse().ok()?;
    let minute: i64 = clock.next()?.parse().ok()?;
    let second: i64 = clock.next()?.parse().ok()?;
    if !(0..=9999).contains(&year)
        || day == 0
        || day > 31
        || !(0..=23).contains(&hour)
        || !(0..=59).contains(&minute)
        || !(0..=60).contains(&second)
    {
        return None;
    }
    let sign = match zone.get(..1)? {
        "+" => 1,
        "-" => -1,
        _ => return None,
    };
    let zone_hours: i64 = zone.get(1..3)?.parse().ok()?;
    let zone_minutes: i64 = zone.get(3..5)?.parse().ok()?;
    if !(0..=23).contains(&zone_hours) || !(0..=59).contains(&zone_minutes) {
        return None;
    }
    // chrono checks the date (31 February is refused); a leap second counts as :59.
    let local = chrono::NaiveDate::from_ymd_opt(i32::try_from(year).ok()?, month as u32 + 1, day)?
        .and_hms_opt(
            u32::try_from(hour).ok()?,
            u32::try_from(minute).ok()?,
            u32::try_from(second.min(59)).ok()?,
        )?;
    let seconds = local.and_utc().timestamp() - sign * (zone_hours * 3600 + zone_minutes * 60);
    seconds
        .checked_mul(1_000_000_000)
        .map(Timestamp::from_unix_nanos)
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::panic, clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn clf_times() {
        let time = parse_clf_time("10/Oct/2000:13:55:36 -0700").expect("time");
        assert_eq!(time.to_rfc3339(), "2000-10-10T20:55:36.000000000Z");
        assert!(parse_clf_time("10/Foo/2000:13:55:36 -0700").is_none());
        assert!(parse_clf_time("10/Oct/2000:13:55:36").is_none());
    }

    #[test]
    fn combined_lines() {
        let line = br#"203.0.113.9 - alice [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif?x=1 HTTP/1.0" 200 2326 "http://www.example.com/start.html" "Mozilla/4.08""#;
        let items = super::super::collect(|items| decode_combined(line, items));
        let [Item::Event(event)] = items.as_slice() else {
            panic!("{items:?}")
        };
        assert_eq!(event.fields["request_uri"], "/apache_pb.gif?x=1");
        assert_eq!(event.fields["status"], 200);
        assert_eq!(event.ocsf["activity_name"], "Get");
        assert_eq!(event.ocsf["type_uid"], 400_203);
        assert_eq!(event.ocsf["http_request"]["url"]["query_string"], "x=1");
        assert_eq!(event.ocsf["actor"]["user"]["name"], "alice");
        assert!(is_combined_line(std::str::from_utf8(line).expect("utf8")));
    }

    #[test]
    fn classic_elb_lines() {
        let line = br#"2015-05-13T23:39:43.945958Z my-loadbalancer 192.168.131.39:2817 10.0.0.1:80 0.000073 0.001048 0.000057 200 200 0 29 "GET http://www.example.com:80/ HTTP/1.1" "curl/7.38.0" - -"#;
        assert!(is_elb_line(std::str::from_utf8(line).expect("utf8")));
        let items = super::super::collect(|items| decode_elb(line, items));
        let [Item::Event(event)] = items.as_slice() else {
            panic!("{items:?}")
        };
        assert_eq!(event.fields["request_ip"], "192.168.131.39");
        assert_eq!(event.fields["backend_port"], 80);
        assert_eq!(event.fields["url"], "http://www.example.com:80/");
        assert_eq!(
            event.ocsf["http_request"]["url"]["hostname"],
            "www.example.com"
        );
    }
}
