//! The event a rule sees: a stored record's JSON object (or a text line's parsed fields and
//! `message`), its OCSF event under `ocsf`, and for sshd and PAM lines the authentication
//! facts as fields.

use std::borrow::Cow;
use std::sync::LazyLock;

use regex::Regex;
use serde_json::{Map, Value};

use crate::projected::{Field, Object};
use crate::projection::FieldTree;

/// The attribute under which stored records keep their OCSF event.
pub const OCSF_ATTR: &str = "@ocsf";

/// What a record's raw bytes are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// A JSON value.
    Json,
    /// A line of text.
    Text,
}

/// Builds the event rules evaluate from a record's raw bytes and attributes. `None` when a JSON
/// record does not parse (it cannot have been stored as JSON then).
pub fn detection_event(
    shape: Shape,
    raw: &[u8],
    attrs: &Map<String, Value>,
    with_ocsf: bool,
) -> Option<Value> {
    let parsed = match shape {
        Shape::Json => serde_json::from_slice::<Value>(raw).ok(),
        Shape::Text => None,
    };
    let mut object = match shape {
        Shape::Json => match parsed? {
            Value::Object(object) => object,
            other => {
                let mut object = Map::new();
                object.insert("message".into(), other);
                object
            }
        },
        Shape::Text => Map::new(),
    };
    for (key, value) in attrs {
        if key == OCSF_ATTR {
            if with_ocsf && !object.contains_key("ocsf") {
                object.insert("ocsf".into(), value.clone());
            }
        } else if !object.contains_key(key) {
            object.insert(key.clone(), value.clone());
        }
    }
    if shape == Shape::Text {
        // A parsed line keeps its message text (after the syslog header) as `message`.
        if !object.contains_key("message") {
            object.insert(
                "message".into(),
                Value::String(String::from_utf8_lossy(raw).into_owned()),
            );
        }
        add_auth_fields(&mut object);
    }
    Some(Value::Object(object))
}

/// The same event as [`detection_event`] gives for a JSON record, holding only `fields` (the
/// fields the rules read): the record's, then the attributes' it does not have itself (the OCSF
/// event as `ocsf` when `with_ocsf`). `None` when the record does not parse.
pub fn projected_event<'a>(
    raw: &'a [u8],
    attrs: &'a [u8],
    with_ocsf: bool,
    fields: &FieldTree,
) -> Option<Object<'a>> {
    let mut object = match fields.parse(raw)? {
        Field::Object(object) => object,
        other => [(Cow::Borrowed("message"), other)].into_iter().collect(),
    };
    if attrs.is_empty() {
        return Some(object);
    }
    let mut attrs = fields
        .parse_attributes(attrs, with_ocsf)
        .unwrap_or_default();
    if let Some(ocsf) = attrs.remove(OCSF_ATTR)
        && !object.contains_key("ocsf")
    {
        object.insert(Cow::Borrowed("ocsf"), ocsf);
    }
    for (key, value) in attrs {
        if !object.contains_key(&key) {
            object.insert(key, value);
        }
    }
    Some(object)
}

static SSHD_RESULT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"^(?:message repeated \d+ times: \[ )?(Failed|Accepted) (password|publickey|keyboard-interactive/pam|none|hostbased|gssapi-with-mic) for (?:invalid user )?(.*?) from (\S+) port (\d+)",
    )
    .expect("valid sshd pattern")
});

static PAM_FAILURE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"authentication failure;.*\brhost=(\S*)(?:\s+user=(\S+))?")
        .expect("valid PAM pattern")
});

static SSHD_INVALID_USER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^Invalid user (.*?) from (\S+)(?: port (\d+))?\s*$").expect("valid pattern")
});

/// Adds `event.action`, `event.outcome`, `user.name`, `source.ip`, `source.port` and
/// `auth.method` (ECS names) for sshd login results, sshd invalid users and PAM authentication
/// failures. The text after the syslog header is `message` (or `msg`).
fn add_auth_fields(object: &mut Map<String, Value>) {
    let Some(message) = object
        .get("message")
        .or_else(|| object.get("msg"))
        .and_then(Value::as_str)
    else {
        return;
    };
    // A whole syslog line when the fields were not parsed: look after the "program[pid]: ".
    let text = match message.find("]: ") {
        Some(at) if !object.contains_key("appname") => &message[at + 3..],
        _ => message,
    };
    let mut fields: Vec<(&str, Value)> = Vec::new();
    if let Some(found) = SSHD_RESULT.captures(text) {
        let outcome = if &found[1] == "Accepted" {
            "success"
        } else {
            "failure"
        };
        fields.push(("event.action", "ssh_login".into()));
        fields.push(("event.outcome", outcome.into()));
        fields.push(("auth.method", found[2].to_string().into()));
        fields.push(("user.name", found[3].to_string().into()));
        fields.push(("source.ip", found[4].to_string().into()));
        if let Ok(port) = found[5].parse::<u16>() {
            fields.push(("source.port", port.into()));
        }
    } else if let Some(found) = SSHD_INVALID_USER.captures(text) {
        fields.push(("event.action", "ssh_invalid_user".into()));
        fields.push(("event.outcome", "failure".into()));
        fields.push(("user.name", found[1].to_string().into()));
        fields.push(("source.ip", found[2].to_string().into()));
    } else if let Some(found) = PAM_FAILURE.captures(text) {
        fields.push(("event.action", "pam_authentication".into()));
        fields.push(("event.outcome", "failure".into()));
        if !found[1].is_empty() {
            fields.push(("source.ip", found[1].to_string().into()));
        }
        if let Some(user) = found.get(2) {
            fields.push(("user.name", user.as_str().to_string().into()));
        }
    }
    for (key, value) in fields {
        object.entry(key).or_insert(value);
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn text(line: &str) -> Value {
        detection_event(Shape::Text, line.as_bytes(), &Map::new(), true).unwrap()
    }

    #[test]
    fn sshd_failures_and_successes_become_fields() {
        let failed = text(
            "Mar 29 13:07:15 ip-10-77-20-248 sshd[2257]: Failed password for invalid user admin from 85.245.107.41 port 51401 ssh2",
        );
        assert_eq!(failed["event.outcome"], "failure");
        assert_eq!(failed["user.name"], "admin");
        assert_eq!(failed["source.ip"], "85.245.107.41");
        assert_eq!(failed["source.port"], 51401);
        let accepted =
            text("Accepted publickey for ubuntu from 10.0.0.1 port 2222 ssh2: RSA SHA256:x");
        assert_eq!(accepted["event.outcome"], "success");
        assert_eq!(accepted["auth.method"], "publickey");
        let pam = text(
            "pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=1.2.3.4  user=root",
        );
        assert_eq!(pam["source.ip"], "1.2.3.4");
        assert_eq!(pam["user.name"], "root");
        let other = text("Connection closed by 1.2.3.4 port 22 [preauth]");
        assert!(other.get("event.outcome").is_none());
    }

    #[test]
    fn json_records_keep_their_fields_and_gain_ocsf_when_asked() {
        let mut attrs = Map::new();
        attrs.insert(OCSF_ATTR.into(), json!({"class_uid": 4003}));
        attrs.insert("eventName".into(), json!("shadowed"));
        let raw = br#"{"eventName":"ConsoleLogin"}"#;
        let event = detection_event(Shape::Json, raw, &attrs, true).unwrap();
        assert_eq!(event["eventName"], "ConsoleLogin");
        assert_eq!(event["ocsf"]["class_uid"], 4003);
        let without = detection_event(Shape::Json, raw, &attrs, false).unwrap();
        assert!(without.get("ocsf").is_none());
        assert!(detection_event(Shape::Json, b"{not json", &attrs, true).is_none());
    }
}
