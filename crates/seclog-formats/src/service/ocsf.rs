//! OCSF 1.3 building blocks shared by the per-source mappings: classes, severities, the common
//! attributes, and a builder that leaves out what a record does not have.

use serde_json::{Map, Value, json};

use seclog_model::Timestamp;

/// The schema version events claim.
pub(crate) const OCSF_VERSION: &str = "1.3.0";

/// An OCSF event class.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Class {
    pub(crate) uid: u32,
    pub(crate) name: &'static str,
    pub(crate) category_uid: u32,
    pub(crate) category_name: &'static str,
}

pub(crate) const AUTHENTICATION: Class = Class {
    uid: 3002,
    name: "Authentication",
    category_uid: 3,
    category_name: "Identity & Access Management",
};
pub(crate) const NETWORK_ACTIVITY: Class = Class {
    uid: 4001,
    name: "Network Activity",
    category_uid: 4,
    category_name: "Network Activity",
};
pub(crate) const HTTP_ACTIVITY: Class = Class {
    uid: 4002,
    name: "HTTP Activity",
    category_uid: 4,
    category_name: "Network Activity",
};
pub(crate) const DNS_ACTIVITY: Class = Class {
    uid: 4003,
    name: "DNS Activity",
    category_uid: 4,
    category_name: "Network Activity",
};
pub(crate) const CLOUD_RESOURCES_INVENTORY: Class = Class {
    uid: 5023,
    name: "Cloud Resources Inventory Info",
    category_uid: 5,
    category_name: "Discovery",
};
pub(crate) const API_ACTIVITY: Class = Class {
    uid: 6003,
    name: "API Activity",
    category_uid: 6,
    category_name: "Application Activity",
};
pub(crate) const DATASTORE_ACTIVITY: Class = Class {
    uid: 6005,
    name: "Datastore Activity",
    category_uid: 6,
    category_name: "Application Activity",
};

/// OCSF `severity_id` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Severity {
    Informational = 1,
    Low = 2,
    Medium = 3,
}

impl Severity {
    fn name(self) -> &'static str {
        match self {
            Severity::Informational => "Informational",
            Severity::Low => "Low",
            Severity::Medium => "Medium",
        }
    }
}

/// OCSF `status_id`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Status {
    Unknown = 0,
    Success = 1,
    Failure = 2,
}

impl Status {
    fn name(self) -> &'static str {
        match self {
            Status::Unknown => "Unknown",
            Status::Success => "Success",
            Status::Failure => "Failure",
        }
    }
}

/// The attributes every event has: class, category, activity, type, severity, time, metadata.
pub(crate) fn base(
    class: Class,
    activity: (u32, &str),
    severity: Severity,
    time: Option<Timestamp>,
    product: &str,
) -> Map<String, Value> {
    let (activity_id, activity_name) = activity;
    let mut event = Map::new();
    event.insert("class_uid".into(), json!(class.uid));
    event.insert("class_name".into(), json!(class.name));
    event.insert("category_uid".into(), json!(class.category_uid));
    event.insert("category_name".into(), json!(class.category_name));
    event.insert("activity_id".into(), json!(activity_id));
    event.insert("activity_name".into(), json!(activity_name));
    event.insert(
        "type_uid".into(),
        json!(u64::from(class.uid) * 100 + u64::from(activity_id)),
    );
    event.insert(
        "type_name".into(),
        json!(format!("{}: {activity_name}", class.name)),
    );
    event.insert("severity_id".into(), json!(severity as u8));
    event.insert("severity".into(), json!(severity.name()));
    if let Some(time) = time {
        event.insert(
            "time".into(),
            json!(time.unix_nanos().div_euclid(1_000_000)),
        );
    }
    event.insert(
        "metadata".into(),
        json!({
            "version": OCSF_VERSION,
            "product": {"name": product, "vendor_name": vendor(product)},
        }),
    );
    event
}

fn vendor(product: &str) -> &'static str {
    match product {
        "PostgreSQL" => "PostgreSQL Global Development Group",
        "MySQL" => "Oracle",
        "MariaDB" => "MariaDB",
        "Web server" => "Unknown",
        _ => "AWS",
    }
}

/// Sets `status_id` and `status`.
pub(crate) fn set_status(event: &mut Map<String, Value>, status: Status) {
    event.insert("status_id".into(), json!(status as u8));
    event.insert("status".into(), json!(status.name()));
}

/// Copies original fields to OCSF paths: `(OCSF path, original name)` pairs; absent fields are
/// left out.
pub(crate) fn copy(
    event: &mut Map<String, Value>,
    fields: &Map<String, Value>,
    pairs: &[(&str, &str)],
) {
    for (path, name) in pairs {
        if let Some(value) = fields.get(*name) {
            put(event, path, value.clone());
        }
    }
}

/// Sets `action` / `action_id` and `disposition` / `disposition_id`: Allowed (1), or Denied
/// (2) and Blocked (2).
pub(crate) fn set_action(event: &mut Map<String, Value>, allowed: bool) {
    let (action, disposition) = if allowed {
        ((1, "Allowed"), (1, "Allowed"))
    } else {
        ((2, "Denied"), (2, "Blocked"))
    };
    event.insert("action_id".into(), json!(action.0));
    event.insert("action".into(), json!(action.1));
    event.insert("disposition_id".into(), json!(disposition.0));
    event.insert("disposition".into(), json!(disposition.1));
}

/// Inserts `value` at a dotted path unless it is null, an empty string or `"-"`.
pub(crate) fn put(event: &mut Map<String, Value>, path: &str, value: Value) {
    if is_empty(&value) {
        return;
    }
    let mut target = event;
    let mut parts = path.split('.').peekable();
    while let Some(part) = parts.next() {
        if parts.peek().is_none() {
            target.insert(part.to_string(), value);
            return;
        }
        let entry = target
            .entry(part.to_string())
            .or_insert_with(|| Value::Object(Map::new()));
        if !entry.is_object() {
            *entry = Value::Object(Map::new());
        }
        let Value::Object(next) = entry else { return };
        target = next;
    }
}

fn is_empty(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::String(text) => text.is_empty() || text == "-",
        Value::Array(items) => items.is_empty(),
        Value::Object(map) => map.is_empty(),
        _ => false,
    }
}

/// A string member of a JSON object.
pub(crate) fn str_at<'a>(value: &'a Value, path: &str) -> Option<&'a str> {
    at(value, path)?.as_str()
}

/// A member of a JSON object by dotted path.
pub(crate) fn at<'a>(value: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.')
        .try_fold(value, |current, part| current.get(part))
}

/// `Value` of a text that may be absent (`-`).
pub(crate) fn text(value: Option<&str>) -> Value {
    match value {
        Some(text) if !text.is_empty() && text != "-" => json!(text),
        _ => Value::Null,
    }
}

/// The IP address in `text`, or `None` when it is not one (CloudTrail's `sourceIPAddress` may
/// be a service name).
pub(crate) fn ip(text: &str) -> Option<&str> {
    text.parse::<std::net::IpAddr>().ok().map(|_| text)
}

/// IANA protocol name for a protocol number.
pub(crate) fn protocol_name(number: u64) -> Option<&'static str> {
    Some(match number {
        1 => "icmp",
        2 => "igmp",
        6 => "tcp",
        17 => "udp",
        41 => "ipv6",
        47 => "gre",
        50 => "esp",
        51 => "ah",
        58 => "ipv6-icmp",
        132 => "sctp",
        _ => return None,
    })
}

/// The HTTP request parts of `"GET http://host:80/path?q HTTP/1.1"`.
pub(crate) struct RequestLine<'a> {
    pub(crate) method: &'a str,
    pub(crate) target: &'a str,
    pub(crate) version: Option<&'a str>,
}

pub(crate) fn request_line(line: &str) -> Option<RequestLine<'_>> {
    let mut parts = line.split(' ');
    let method = parts
        .next()
        .filter(|method| !method.is_empty() && *method != "-")?;
    let target = parts.next()?;
    Some(RequestLine {
        method,
        target,
        version: parts.next(),
    })
}

/// OCSF `url` object from a request target (absolute URL or path).
pub(crate) fn url(target: &str, host: Option<&str>) -> Value {
    let mut url = Map::new();
    let (scheme, rest) = match target.split_once("://") {
        Some((scheme, rest)) => (Some(scheme), rest),
        None => (None, target),
    };
    let (authority, path_query) = if scheme.is_some() {
        match rest.find('/') {
            Some(slash) => (rest.get(..slash), rest.get(slash..).unwrap_or("/")),
            None => (Some(rest), "/"),
        }
    } else {
        (host, rest)
    };
    let (path, query) = match path_query.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (path_query, None),
    };
    if let Some(scheme) = scheme {
        put(&mut url, "scheme", json!(scheme));
    }
    if let Some(authority) = authority {
        match authority.rsplit_once(':') {
            Some((hostname, port)) if port.parse::<u16>().is_ok() => {
                put(&mut url, "hostname", json!(hostname));
                put(
                    &mut url,
                    "port",
                    json!(port.parse::<u16>().unwrap_or_default()),
                );
            }
            _ => put(&mut url, "hostname", json!(authority)),
        }
    }
    put(&mut url, "path", json!(path));
    put(&mut url, "query_string", text(query));
    put(&mut url, "url_string", json!(target));
    Value::Object(url)
}

/// Splits `"1.2.3.4:80"` or `"[::1]:80"` into address and port.
pub(crate) fn host_port(text: &str) -> (Option<&str>, Option<u16>) {
    if text == "-" || text.is_empty() {
        return (None, None);
    }
    if let Some(rest) = text.strip_prefix('[')
        && let Some((address, port)) = rest.split_once("]:")
    {
        return (Some(address), port.parse().ok());
    }
    match text.rsplit_once(':') {
        Some((address, port)) if !address.contains(':') => (Some(address), port.parse().ok()),
        _ => (Some(text), None),
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::panic, clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn put_skips_empty_values_and_builds_paths() {
        let mut event = Map::new();
        put(&mut event, "a.b", json!("x"));
        put(&mut event, "a.c", json!("-"));
        put(&mut event, "a.d", Value::Null);
        put(&mut event, "e", json!(0));
        assert_eq!(Value::Object(event), json!({"a": {"b": "x"}, "e": 0}));
    }

    #[test]
    fn urls_and_host_ports() {
        assert_eq!(
            url("http://54.186.209.42:80//phpinfo?x=1", None),
            json!({"scheme": "http", "hostname": "54.186.209.42", "port": 80,
                   "path": "//phpinfo", "query_string": "x=1",
                   "url_string": "http://54.186.209.42:80//phpinfo?x=1"})
        );
        assert_eq!(host_port("10.0.0.1:443"), (Some("10.0.0.1"), Some(443)));
        assert_eq!(
            host_port("[2001:db8::1]:443"),
            (Some("2001:db8::1"), Some(443))
        );
        assert_eq!(host_port("-"), (None, None));
    }
}
