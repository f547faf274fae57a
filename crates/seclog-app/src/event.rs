//! Typed security events, each mapped to an OCSF class, activity and severity.
//!
//! | event | OCSF class (`class_uid`) | activity | default severity |
//! |---|---|---|---|
//! | [`SecurityEvent::login_attempt`] | Authentication (3002) | Logon (1), status Unknown | Informational |
//! | [`SecurityEvent::login_success`] | Authentication (3002) | Logon (1), status Success | Informational |
//! | [`SecurityEvent::login_failure`] | Authentication (3002) | Logon (1), status Failure | High |
//! | [`SecurityEvent::mfa`] | Authentication (3002) | Logon (1), `is_mfa` | Informational / High on failure |
//! | [`SecurityEvent::logout`] | Authentication (3002) | Logoff (2), status Success | Informational |
//! | [`SecurityEvent::authorization_denied`] | Web Resource Access Activity (6004) | Access Deny (2) | High |
//! | [`SecurityEvent::data_access`] | Web Resources Activity (6001) | Create 1, Read 2, Update 3, Delete 4, Search 5, Export 7 | Informational (Low for restricted data) |
//! | [`SecurityEvent::config_change`] | Entity Management (3004) | Update (3) | Medium |
//! | [`SecurityEvent::suspicious`] | Detection Finding (2004) | Create (1) | Medium |
//!
//! The severities follow the usual mapping (authentication failure and unauthorized access
//! high, configuration change medium); [`SecurityEvent::severity`] overrides one.
//! [`SecurityEvent::emit`] sends the event through `tracing` (target `security`), so it gets the
//! request context, redaction and shipping of every other event.

use serde::Serialize;
use serde_json::{Map, Value, json};

/// The tracing target of security events.
pub const TARGET: &str = "security";
/// The field that carries a security event's JSON through `tracing`.
pub const FIELD: &str = "security_event";
/// The OCSF schema version the events follow.
pub const OCSF_VERSION: &str = "1.4.0";

/// OCSF `severity_id`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Severity {
    /// 1
    Informational,
    /// 2
    Low,
    /// 3
    Medium,
    /// 4
    High,
    /// 5
    Critical,
}

impl Severity {
    /// The OCSF id.
    pub fn id(self) -> u8 {
        match self {
            Severity::Informational => 1,
            Severity::Low => 2,
            Severity::Medium => 3,
            Severity::High => 4,
            Severity::Critical => 5,
        }
    }

    /// The OCSF caption.
    pub fn name(self) -> &'static str {
        match self {
            Severity::Informational => "Informational",
            Severity::Low => "Low",
            Severity::Medium => "Medium",
            Severity::High => "High",
            Severity::Critical => "Critical",
        }
    }

    fn level(self) -> tracing::Level {
        match self {
            Severity::Informational | Severity::Low => tracing::Level::INFO,
            Severity::Medium | Severity::High => tracing::Level::WARN,
            Severity::Critical => tracing::Level::ERROR,
        }
    }
}

/// How sensitive accessed data is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Classification {
    /// Meant for anyone.
    Public,
    /// Within the organisation.
    Internal,
    /// A need to know (personal data, customer records).
    Confidential,
    /// The most sensitive (card data, health data, secrets).
    Restricted,
}

impl Classification {
    fn name(self) -> &'static str {
        match self {
            Classification::Public => "Public",
            Classification::Internal => "Internal",
            Classification::Confidential => "Confidential",
            Classification::Restricted => "Restricted",
        }
    }

    /// OCSF `confidentiality_id`: 1 Not Confidential, 2 Confidential, 3 Secret.
    fn confidentiality_id(self) -> u8 {
        match self {
            Classification::Public | Classification::Internal => 1,
            Classification::Confidential => 2,
            Classification::Restricted => 3,
        }
    }
}

/// What was done with data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DataAction {
    /// Created.
    Create,
    /// Read.
    Read,
    /// Changed.
    Update,
    /// Deleted.
    Delete,
    /// Searched.
    Search,
    /// Exported (downloaded in bulk).
    Export,
}

impl DataAction {
    fn activity(self) -> (u8, &'static str) {
        match self {
            DataAction::Create => (1, "Create"),
            DataAction::Read => (2, "Read"),
            DataAction::Update => (3, "Update"),
            DataAction::Delete => (4, "Delete"),
            DataAction::Search => (5, "Search"),
            DataAction::Export => (7, "Export"),
        }
    }
}

/// One security event, ready to [`emit`](SecurityEvent::emit).
#[derive(Debug, Clone)]
#[must_use = "a security event does nothing until it is emitted"]
pub struct SecurityEvent {
    message: String,
    severity: Severity,
    body: Map<String, Value>,
}

struct Class {
    uid: u32,
    name: &'static str,
    category_uid: u32,
    category_name: &'static str,
}

const AUTHENTICATION: Class = Class {
    uid: 3002,
    name: "Authentication",
    category_uid: 3,
    category_name: "Identity & Access Management",
};
const ENTITY_MANAGEMENT: Class = Class {
    uid: 3004,
    name: "Entity Management",
    category_uid: 3,
    category_name: "Identity & Access Management",
};
const WEB_RESOURCES: Class = Class {
    uid: 6001,
    name: "Web Resources Activity",
    category_uid: 6,
    category_name: "Application Activity",
};
const WEB_RESOURCE_ACCESS: Class = Class {
    uid: 6004,
    name: "Web Resource Access Activity",
    category_uid: 6,
    category_name: "Application Activity",
};
const DETECTION_FINDING: Class = Class {
    uid: 2004,
    name: "Detection Finding",
    category_uid: 2,
    category_name: "Findings",
};

/// OCSF `status_id`.
#[derive(Clone, Copy)]
enum Status {
    Unknown,
    Success,
    Failure,
}

impl SecurityEvent {
    fn new(class: &Class, activity: (u8, &str), severity: Severity, message: String) -> Self {
        let (activity_id, activity_name) = activity;
        let mut body = Map::new();
        body.insert("class_uid".into(), class.uid.into());
        body.insert("class_name".into(), class.name.into());
        body.insert("category_uid".into(), class.category_uid.into());
        body.insert("category_name".into(), class.category_name.into());
        body.insert("activity_id".into(), activity_id.into());
        body.insert("activity_name".into(), activity_name.into());
        body.insert(
            "type_uid".into(),
            (u64::from(class.uid) * 100 + u64::from(activity_id)).into(),
        );
        SecurityEvent {
            message,
            severity,
            body,
        }
    }

    fn status(mut self, status: Status, detail: Option<&str>) -> Self {
        let (id, name) = match status {
            Status::Unknown => (0, "Unknown"),
            Status::Success => (1, "Success"),
            Status::Failure => (2, "Failure"),
        };
        self.body.insert("status_id".into(), id.into());
        self.body.insert("status".into(), name.into());
        if let Some(detail) = detail {
            self.body.insert("status_detail".into(), detail.into());
        }
        self
    }

    fn authentication(
        user: &str,
        activity: (u8, &str),
        severity: Severity,
        message: String,
    ) -> Self {
        let mut event = SecurityEvent::new(&AUTHENTICATION, activity, severity, message);
        event.body.insert(
            "user".into(),
            json!({ "name": crate::redactor().pseudonym(user) }),
        );
        event
    }

    /// A login began (before the outcome is known).
    pub fn login_attempt(user: &str) -> Self {
        Self::authentication(
            user,
            (1, "Logon"),
            Severity::Informational,
            "login attempt".into(),
        )
        .status(Status::Unknown, None)
    }

    /// A login succeeded.
    pub fn login_success(user: &str) -> Self {
        Self::authentication(
            user,
            (1, "Logon"),
            Severity::Informational,
            "login succeeded".into(),
        )
        .status(Status::Success, None)
    }

    /// A login failed, with the reason (`unknown user`, `wrong password`, `account locked`):
    /// the reason goes to seclog, not to the client.
    pub fn login_failure(user: &str, reason: &str) -> Self {
        Self::authentication(user, (1, "Logon"), Severity::High, "login failed".into())
            .status(Status::Failure, Some(reason))
    }

    /// A second factor (`totp`, `webauthn`, `sms`, ...) was checked.
    pub fn mfa(user: &str, factor: &str, succeeded: bool) -> Self {
        let (severity, status, message) = if succeeded {
            (
                Severity::Informational,
                Status::Success,
                "second factor accepted",
            )
        } else {
            (Severity::High, Status::Failure, "second factor refused")
        };
        let mut event =
            Self::authentication(user, (1, "Logon"), severity, message.into()).status(status, None);
        event.body.insert("is_mfa".into(), true.into());
        event
            .body
            .insert("auth_factors".into(), json!([{ "factor_type": factor }]));
        event
    }

    /// A user logged out.
    pub fn logout(user: &str) -> Self {
        Self::authentication(
            user,
            (2, "Logoff"),
            Severity::Informational,
            "logged out".into(),
        )
        .status(Status::Success, None)
    }

    /// A request was refused for lack of permission: `resource` (`/admin/settings`,
    /// `record:42`) and the permission it needed (`admin`, `records:read`).
    pub fn authorization_denied(resource: &str, permission: &str) -> Self {
        let mut event = SecurityEvent::new(
            &WEB_RESOURCE_ACCESS,
            (2, "Access Deny"),
            Severity::High,
            "access denied".into(),
        )
        .status(Status::Failure, Some("missing permission"));
        event.body.insert(
            "web_resources".into(),
            json!([{ "uid": resource, "type": "resource" }]),
        );
        event.body.insert("privileges".into(), json!([permission]));
        event
    }

    /// Data was accessed: the resource (`record:42`), its type (`medical_record`), how
    /// sensitive it is and what was done with it.
    pub fn data_access(
        resource: &str,
        resource_type: &str,
        classification: Classification,
        action: DataAction,
    ) -> Self {
        let severity = if classification == Classification::Restricted {
            Severity::Low
        } else {
            Severity::Informational
        };
        let (_, verb) = action.activity();
        let mut event = SecurityEvent::new(
            &WEB_RESOURCES,
            action.activity(),
            severity,
            format!("data {}", verb.to_lowercase()),
        )
        .status(Status::Success, None);
        event.body.insert(
            "web_resources".into(),
            json!([{
                "uid": resource,
                "type": resource_type,
                "data_classification": {
                    "classification": classification.name(),
                    "confidentiality_id": classification.confidentiality_id(),
                },
            }]),
        );
        event
    }

    /// A configuration item (`settings`, `feature_flags.x`) changed: the SHA-256 digests of its
    /// canonical JSON before and after are recorded (not the values, which may hold secrets),
    /// with the names of the top-level members that changed.
    pub fn config_change(what: &str, before: &impl Serialize, after: &impl Serialize) -> Self {
        let before = serde_json::to_value(before).unwrap_or(Value::Null);
        let after = serde_json::to_value(after).unwrap_or(Value::Null);
        let changed: Vec<&String> = match (&before, &after) {
            (Value::Object(old), Value::Object(new)) => {
                let mut names: Vec<&String> = old
                    .keys()
                    .chain(new.keys())
                    .filter(|name| old.get(*name) != new.get(*name))
                    .collect();
                names.sort();
                names.dedup();
                names
            }
            _ => Vec::new(),
        };
        let mut event = SecurityEvent::new(
            &ENTITY_MANAGEMENT,
            (3, "Update"),
            Severity::Medium,
            "configuration changed".into(),
        )
        .status(Status::Success, None);
        event.body.insert(
            "entity".into(),
            json!({ "name": what, "type": "configuration", "data": { "sha256": digest(&before) } }),
        );
        event.body.insert(
            "entity_result".into(),
            json!({
                "name": what,
                "type": "configuration",
                "data": { "sha256": digest(&after), "changed": changed },
            }),
        );
        event
    }

    /// The application noticed something suspicious (a tampered parameter, an impossible
    /// sequence of requests, a honeytoken used).
    pub fn suspicious(title: &str, description: &str) -> Self {
        let mut event = SecurityEvent::new(
            &DETECTION_FINDING,
            (1, "Create"),
            Severity::Medium,
            format!("suspicious activity: {title}"),
        );
        event.body.insert(
            "finding_info".into(),
            json!({
                "title": title,
                "desc": description,
                "uid": uuid::Uuid::now_v7().to_string(),
                "types": ["application"],
            }),
        );
        event
    }

    /// Overrides the severity.
    pub fn severity(mut self, severity: Severity) -> Self {
        self.severity = severity;
        self
    }

    /// Adds a member (an OCSF attribute, e.g. `"auth_protocol"` or `"dst_endpoint"`), redacted
    /// like every field. The members every line writes itself (`timestamp`, `message`,
    /// `service`, `correlation_id`, `trace_id`, `span_id`, `src_endpoint`, `http_request`,
    /// `actor`, `fields`, `metadata`, `time`, …) are the request's and are not replaced.
    pub fn with(mut self, name: &str, value: impl Into<Value>) -> Self {
        self.body.insert(name.to_string(), value.into());
        self
    }

    /// The OCSF members of the event (without the context added when it is written).
    pub fn to_json(&self) -> Map<String, Value> {
        let mut body = self.body.clone();
        body.insert("severity_id".into(), self.severity.id().into());
        body.insert("severity".into(), self.severity.name().into());
        body
    }

    /// Sends the event through `tracing` (target `security`, level from the severity).
    pub fn emit(self) {
        let level = self.severity.level();
        let body = self.to_json();
        emit_body(
            Target::Security,
            level,
            &self.message,
            Emitting::Members(body),
        );
    }
}

/// The `tracing` target an OCSF event goes out under.
#[derive(Clone, Copy)]
pub(crate) enum Target {
    /// Security events.
    Security,
    /// Request logs of the middleware.
    Http,
}

/// The OCSF members of an event being emitted.
pub(crate) enum Emitting {
    /// Members whose strings may hold anything the application passed: redacted when written.
    Members(Map<String, Value>),
    /// Members rendered already (`"a":1,"b":"x"`, no braces) from values seclog-app made
    /// itself (the request log): written as they are.
    Rendered(String),
}

thread_local! {
    /// The OCSF members of the event being emitted on this thread: the layer reads them
    /// while the `tracing` call runs (no serialization round trip), other subscribers format
    /// them through [`Members`].
    static EMITTING: std::cell::RefCell<Option<Emitting>> = const { std::cell::RefCell::new(None) };
}

/// Runs `read` on the OCSF members of the event being emitted on this thread, if any.
pub(crate) fn with_emitting<R>(read: impl FnOnce(Option<&Emitting>) -> R) -> R {
    EMITTING.with(|cell| match cell.try_borrow() {
        Ok(members) => read(members.as_ref()),
        Err(_) => read(None),
    })
}

/// The field value other subscribers see: the members as JSON, formatted only on demand.
struct Members;

impl std::fmt::Display for Members {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        with_emitting(|members| match members {
            Some(Emitting::Members(members)) => {
                // Other subscribers (a fmt layer composed beside seclog-app's) see the members
                // redacted too.
                let mut value = Value::Object(members.clone());
                crate::redactor().redact_json(&mut value);
                let text = serde_json::to_string(&value).map_err(|_| std::fmt::Error)?;
                formatter.write_str(&text)
            }
            Some(Emitting::Rendered(text)) => write!(formatter, "{{{text}}}"),
            None => Ok(()),
        })
    }
}

/// Emits an OCSF event: `body` holds its members, `message` its text.
pub(crate) fn emit_body(target: Target, level: tracing::Level, message: &str, body: Emitting) {
    let previous = EMITTING.with(|cell| cell.replace(Some(body)));
    let members = Members;
    match (target, level) {
        (Target::Security, tracing::Level::ERROR) => {
            tracing::error!(target: "security", security_event = %members, "{message}");
        }
        (Target::Security, tracing::Level::WARN) => {
            tracing::warn!(target: "security", security_event = %members, "{message}");
        }
        (Target::Security, _) => {
            tracing::info!(target: "security", security_event = %members, "{message}");
        }
        (Target::Http, tracing::Level::WARN | tracing::Level::ERROR) => {
            tracing::warn!(target: "http", security_event = %members, "{message}");
        }
        (Target::Http, _) => {
            tracing::info!(target: "http", security_event = %members, "{message}");
        }
    }
    EMITTING.with(|cell| cell.replace(previous));
}

fn digest(value: &Value) -> String {
    use sha2::Digest;
    // Members sorted by name at every depth: equal values get equal digests whatever order
    // they were built in.
    let canonical = canonical_json(value);
    hex::encode(sha2::Sha256::digest(canonical.as_bytes()))
}

fn canonical_json(value: &Value) -> String {
    match value {
        Value::Object(members) => {
            let mut names: Vec<&String> = members.keys().collect();
            names.sort();
            let inner: Vec<String> = names
                .into_iter()
                .map(|name| {
                    format!(
                        "{}:{}",
                        Value::String(name.clone()),
                        canonical_json(&members[name])
                    )
                })
                .collect();
            format!("{{{}}}", inner.join(","))
        }
        Value::Array(items) => format!(
            "[{}]",
            items
                .iter()
                .map(canonical_json)
                .collect::<Vec<_>>()
                .join(",")
        ),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_carry_their_ocsf_class_and_default_severity() {
        let failure = SecurityEvent::login_failure("alice", "wrong password").to_json();
        assert_eq!(failure["class_uid"], 3002);
        assert_eq!(failure["type_uid"], 300_201);
        assert_eq!(failure["status_id"], 2);
        assert_eq!(failure["severity_id"], 4);
        assert_eq!(failure["user"]["name"], "alice");
        let denied = SecurityEvent::authorization_denied("/admin/settings", "admin").to_json();
        assert_eq!(
            (denied["class_uid"].clone(), denied["severity_id"].clone()),
            (json!(6004), json!(4))
        );
        let change = SecurityEvent::config_change(
            "settings",
            &json!({"mfa": false, "b": 1}),
            &json!({"b": 1, "mfa": true}),
        )
        .to_json();
        assert_eq!(change["severity_id"], 3);
        assert_eq!(change["entity_result"]["data"]["changed"], json!(["mfa"]));
        assert_ne!(
            change["entity"]["data"]["sha256"],
            change["entity_result"]["data"]["sha256"]
        );
        let same =
            SecurityEvent::config_change("s", &json!({"a": 1, "b": 2}), &json!({"b": 2, "a": 1}))
                .to_json();
        assert_eq!(
            same["entity"]["data"]["sha256"],
            same["entity_result"]["data"]["sha256"]
        );
        let read = SecurityEvent::data_access(
            "record:7",
            "record",
            Classification::Restricted,
            DataAction::Read,
        )
        .severity(Severity::Medium)
        .to_json();
        assert_eq!(
            (
                read["class_uid"].clone(),
                read["activity_id"].clone(),
                read["severity_id"].clone()
            ),
            (json!(6001), json!(2), json!(3))
        );
    }
}
