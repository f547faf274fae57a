//! CloudTrail records in every shape they travel in: delivery files (`{"Records":[…]}`), JSON
//! arrays, single records, NDJSON, CloudWatch Logs subscription payloads, EventBridge events
//! (`detail`), CloudTrail Lake rows (`eventJson`, `eventData`) and OpenSearch documents that
//! hold the record under `aws.cloudtrail`.
//!
//! OCSF: `ConsoleLogin` is Authentication (3002); every other record is API Activity (6003).

use std::collections::HashMap;

use serde_json::value::RawValue;
use serde_json::{Map, Value, json};

use super::lines::{array_elements, each_json_value, is_control_message, member_array};
use super::ocsf::{self, API_ACTIVITY, AUTHENTICATION, Severity, Status, put, str_at};
use super::{Item, RawKind, ServiceEvent, Sink, rejected};
use crate::time_value::parse_time_str;

pub(crate) fn decode(bytes: &[u8], items: &mut dyn Sink) {
    let mut number = 0usize;
    each_json_value(bytes, items, |value, items| {
        let records = array_elements(value)
            .or_else(|| member_array(value, "Records"))
            .unwrap_or_else(|| vec![value]);
        for record in records {
            if is_control_message(record) {
                continue;
            }
            if let Some(events) = member_array(record, "logEvents") {
                for log_event in events {
                    number += 1;
                    items.push(from_log_event(log_event, number));
                }
                continue;
            }
            number += 1;
            items.push(record_item(record.get().as_bytes(), number));
        }
    });
}

/// A CloudWatch Logs subscription event whose `message` is a CloudTrail record.
fn from_log_event(log_event: &RawValue, number: usize) -> Item {
    #[derive(serde::Deserialize)]
    struct LogEvent {
        message: String,
    }
    match serde_json::from_str::<LogEvent>(log_event.get()) {
        Ok(event) => record_item(event.message.as_bytes(), number),
        Err(error) => rejected(
            log_event.get().as_bytes(),
            format!("record {number}: not a CloudWatch Logs event: {error}"),
        ),
    }
}

/// One record (or a wrapper around one).
fn record_item(raw: &[u8], number: usize) -> Item {
    let (raw, envelope) = match unwrap_record(raw) {
        Ok(found) => found,
        Err(reason) => return rejected(raw, format!("record {number}: {reason}")),
    };
    let value: Value = match serde_json::from_slice(&raw) {
        Ok(value @ Value::Object(_)) => value,
        Ok(_) => return rejected(&raw, format!("record {number}: not a JSON object")),
        Err(error) => return rejected(&raw, format!("record {number}: invalid JSON: {error}")),
    };
    // Data lakes (Athena, Panther) may hand records over with lower-cased keys.
    let value = if value.get("eventName").is_none() && value.get("eventname").is_some() {
        canonical_keys(value)
    } else {
        value
    };
    if value.get("eventName").is_none() && value.get("eventTime").is_none() {
        return rejected(
            &raw,
            format!("record {number}: not a CloudTrail record (no eventName or eventTime)"),
        );
    }
    let time = str_at(&value, "eventTime").and_then(event_time);
    let mut fields = Map::new();
    if let Some(envelope) = envelope {
        fields.insert("envelope".into(), envelope);
    }
    Item::Event(ServiceEvent {
        time,
        kind: RawKind::Json,
        raw,
        fields,
        ocsf: normalize(&value, time),
    })
}

/// The CloudTrail record inside a wrapper, with what the wrapper said about it.
fn unwrap_record(raw: &[u8]) -> Result<(Vec<u8>, Option<Value>), String> {
    let Ok(object) = serde_json::from_slice::<HashMap<&str, &RawValue>>(raw) else {
        return Ok((raw.to_vec(), None));
    };
    if let (Some(detail), Some(kind)) = (object.get("detail"), object.get("detail-type")) {
        let mut envelope = json!({"kind": "eventbridge", "detail-type": kind});
        for key in ["id", "source", "account", "time", "region"] {
            if let Some(value) = object
                .get(key)
                .and_then(|v| serde_json::from_str(v.get()).ok())
            {
                put_value(&mut envelope, key, value);
            }
        }
        return Ok((detail.get().as_bytes().to_vec(), Some(envelope)));
    }
    if let Some(text) = object.get("eventJson") {
        let text: String = serde_json::from_str(text.get())
            .map_err(|_| "eventJson is not a JSON string".to_string())?;
        return Ok((text.into_bytes(), Some(json!({"kind": "cloudtrail-lake"}))));
    }
    if let Some(data) = object.get("eventData")
        && data.get().trim_start().starts_with('{')
    {
        return Ok((
            data.get().as_bytes().to_vec(),
            Some(json!({"kind": "cloudtrail-lake"})),
        ));
    }
    if let Some(aws) = object.get("aws")
        && let Ok(inner) = serde_json::from_str::<HashMap<&str, &RawValue>>(aws.get())
        && let Some(record) = inner.get("cloudtrail")
    {
        return Ok((
            record.get().as_bytes().to_vec(),
            Some(json!({"kind": "opensearch"})),
        ));
    }
    Ok((raw.to_vec(), None))
}

/// CloudTrail's names for keys that arrive lower-cased.
const KEYS: &[&str] = &[
    "eventVersion",
    "userIdentity",
    "eventTime",
    "eventSource",
    "eventName",
    "awsRegion",
    "sourceIPAddress",
    "userAgent",
    "requestParameters",
    "responseElements",
    "additionalEventData",
    "requestID",
    "eventID",
    "readOnly",
    "resources",
    "eventType",
    "apiVersion",
    "managementEvent",
    "recipientAccountId",
    "eventCategory",
    "tlsDetails",
    "errorCode",
    "errorMessage",
    "sessionCredentialFromConsole",
    "serviceEventDetails",
    "sharedEventID",
    "vpcEndpointId",
    "principalId",
    "accountId",
    "accessKeyId",
    "userName",
    "sessionContext",
    "sessionIssuer",
    "invokedBy",
    "mfaAuthenticated",
    "creationDate",
    "webIdFederationData",
    "tlsVersion",
    "cipherSuite",
    "clientProvidedHostHeader",
];

/// The record with keys renamed to CloudTrail's casing (recursively, known keys only).
fn canonical_keys(value: Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(key, value)| {
                    let name = KEYS
                        .iter()
                        .find(|known| known.eq_ignore_ascii_case(&key))
                        .map_or(key, |known| known.to_string());
                    (name, canonical_keys(value))
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(canonical_keys).collect()),
        other => other,
    }
}

/// `eventTime`: RFC 3339, or without a zone (`2023-01-10 21:04:02`, as data lakes print it),
/// which is UTC.
fn event_time(text: &str) -> Option<seclog_model::Timestamp> {
    parse_time_str(text).or_else(|| parse_time_str(&format!("{}Z", text.replacen(' ', "T", 1))))
}

fn put_value(target: &mut Value, key: &str, value: Value) {
    if let Value::Object(map) = target {
        map.insert(key.to_string(), value);
    }
}

/// OCSF for one CloudTrail record.
pub(crate) fn normalize(
    record: &Value,
    time: Option<seclog_model::Timestamp>,
) -> Map<String, Value> {
    let name = str_at(record, "eventName").unwrap_or_default();
    let error_code = str_at(record, "errorCode");
    if name == "ConsoleLogin" {
        return console_login(record, time);
    }
    let denied = error_code.is_some_and(is_access_denied);
    let severity = match error_code {
        None => Severity::Informational,
        Some(_) if denied => Severity::Medium,
        Some(_) => Severity::Low,
    };
    let mut event = ocsf::base(
        API_ACTIVITY,
        api_activity(record),
        severity,
        time,
        "CloudTrail",
    );
    ocsf::set_status(
        &mut event,
        if error_code.is_some() {
            Status::Failure
        } else {
            Status::Success
        },
    );
    put(&mut event, "api.operation", json!(name));
    put(&mut event, "api.service.name", field(record, "eventSource"));
    put(&mut event, "api.request.uid", field(record, "requestID"));
    put(&mut event, "api.version", field(record, "apiVersion"));
    put(&mut event, "api.response.error", field(record, "errorCode"));
    put(
        &mut event,
        "api.response.message",
        field(record, "errorMessage"),
    );
    put(&mut event, "status_code", field(record, "errorCode"));
    put(&mut event, "status_detail", field(record, "errorMessage"));
    common(&mut event, record);
    if let Some(Value::Array(resources)) = record.get("resources") {
        let resources: Vec<Value> = resources
            .iter()
            .map(|resource| {
                let mut out = Map::new();
                put(&mut out, "uid", field(resource, "ARN"));
                put(&mut out, "type", field(resource, "type"));
                put(&mut out, "owner.account.uid", field(resource, "accountId"));
                Value::Object(out)
            })
            .collect();
        put(&mut event, "resources", Value::Array(resources));
    }
    event
}

/// Authentication for a console sign-in.
fn console_login(record: &Value, time: Option<seclog_model::Timestamp>) -> Map<String, Value> {
    let outcome = str_at(record, "responseElements.ConsoleLogin");
    let failed = outcome == Some("Failure") || record.get("errorMessage").is_some();
    let severity = if failed {
        Severity::Medium
    } else {
        Severity::Informational
    };
    let mut event = ocsf::base(AUTHENTICATION, (1, "Logon"), severity, time, "CloudTrail");
    ocsf::set_status(
        &mut event,
        match (failed, outcome) {
            (true, _) => Status::Failure,
            (false, Some("Success")) => Status::Success,
            _ => Status::Unknown,
        },
    );
    put(&mut event, "status_detail", field(record, "errorMessage"));
    if let Some(mfa) = str_at(record, "additionalEventData.MFAUsed") {
        put(&mut event, "is_mfa", json!(mfa == "Yes"));
    }
    put(
        &mut event,
        "dst_endpoint.svc_name",
        field(record, "eventSource"),
    );
    put(
        &mut event,
        "auth_protocol",
        json!(if str_at(record, "userIdentity.type") == Some("SAMLUser") {
            "SAML"
        } else {
            "Password"
        }),
    );
    put(&mut event, "api.operation", json!("ConsoleLogin"));
    common(&mut event, record);
    let actor_user = event
        .get("actor")
        .and_then(|actor| actor.get("user"))
        .cloned();
    if let Some(user) = actor_user {
        put(&mut event, "user", user);
    }
    event
}

/// Actor, source, cloud and metadata attributes every CloudTrail mapping has.
fn common(event: &mut Map<String, Value>, record: &Value) {
    let identity = record.get("userIdentity").unwrap_or(&Value::Null);
    let user_type = str_at(identity, "type");
    let name = str_at(identity, "userName")
        .or_else(|| str_at(identity, "sessionContext.sessionIssuer.userName"))
        .or_else(|| (user_type == Some("Root")).then_some("root"))
        .or_else(|| str_at(identity, "invokedBy"));
    put(event, "actor.user.type", field(identity, "type"));
    put(event, "actor.user.name", ocsf::text(name));
    put(
        event,
        "actor.user.uid",
        ocsf::text(str_at(identity, "arn").or_else(|| str_at(identity, "principalId"))),
    );
    put(event, "actor.user.uid_alt", field(identity, "principalId"));
    put(
        event,
        "actor.user.account.uid",
        field(identity, "accountId"),
    );
    put(
        event,
        "actor.user.credential_uid",
        field(identity, "accessKeyId"),
    );
    put(
        event,
        "actor.session.issuer",
        field(identity, "sessionContext.sessionIssuer.arn"),
    );
    put(
        event,
        "actor.session.created_time_dt",
        field(identity, "sessionContext.attributes.creationDate"),
    );
    if let Some(mfa) = str_at(identity, "sessionContext.attributes.mfaAuthenticated") {
        put(event, "actor.session.is_mfa", json!(mfa == "true"));
    }
    put(event, "actor.invoked_by", field(identity, "invokedBy"));
    if let Some(source) = str_at(record, "sourceIPAddress") {
        match ocsf::ip(source) {
            Some(ip) => put(event, "src_endpoint.ip", json!(ip)),
            None => put(event, "src_endpoint.domain", json!(source)),
        }
    }
    put(event, "src_endpoint.uid", field(record, "vpcEndpointId"));
    put(event, "http_request.user_agent", field(record, "userAgent"));
    put(event, "tls.version", field(record, "tlsDetails.tlsVersion"));
    put(event, "tls.cipher", field(record, "tlsDetails.cipherSuite"));
    put(event, "cloud.provider", json!("AWS"));
    put(event, "cloud.region", field(record, "awsRegion"));
    put(
        event,
        "cloud.account.uid",
        ocsf::text(str_at(record, "recipientAccountId").or_else(|| str_at(identity, "accountId"))),
    );
    put(event, "metadata.uid", field(record, "eventID"));
    put(event, "metadata.event_code", field(record, "eventType"));
    put(
        event,
        "metadata.product.version",
        field(record, "eventVersion"),
    );
    put(
        event,
        "metadata.product.feature.name",
        field(record, "eventCategory"),
    );
    put(event, "metadata.log_name", json!("CloudTrail"));
}

fn field(value: &Value, path: &str) -> Value {
    match ocsf::at(value, path) {
        Some(Value::String(text)) => ocsf::text(Some(text)),
        Some(other @ (Value::Number(_) | Value::Bool(_))) => other.clone(),
        _ => Value::Null,
    }
}

fn is_access_denied(code: &str) -> bool {
    let lower = code.to_ascii_lowercase();
    lower.contains("accessdenied") || lower.contains("unauthorized") || lower.contains("forbidden")
}

/// API Activity activity from the operation's verb (or `readOnly`).
fn api_activity(record: &Value) -> (u32, &'static str) {
    if record.get("readOnly") == Some(&Value::Bool(true)) {
        return (2, "Read");
    }
    let name = str_at(record, "eventName").unwrap_or_default();
    let verb_end = name
        .char_indices()
        .skip(1)
        .find(|(_, c)| c.is_ascii_uppercase())
        .map_or(name.len(), |(at, _)| at);
    let verb = name.get(..verb_end).unwrap_or(name);
    match verb {
        "Get" | "Describe" | "List" | "Lookup" | "Search" | "Head" | "Select" | "Query"
        | "Scan" | "View" | "Batch"
            if name.starts_with("BatchGet") || verb != "Batch" =>
        {
            (2, "Read")
        }
        "Create" | "Add" | "Register" | "Run" | "Allocate" | "Import" | "Issue" | "Associate"
        | "Attach" | "Authorize" | "Copy" | "Generate" | "Invoke" | "Send" | "Publish"
        | "Upload" | "Request" => (1, "Create"),
        "Update" | "Put" | "Modify" | "Set" | "Change" | "Enable" | "Disable" | "Replace"
        | "Reset" | "Tag" | "Untag" | "Start" | "Stop" | "Reboot" | "Restore" | "Rotate"
        | "Apply" | "Assume" | "Switch" | "Accept" | "Reject" | "Resume" | "Suspend" => {
            (3, "Update")
        }
        "Delete" | "Remove" | "Terminate" | "Deregister" | "Detach" | "Disassociate" | "Revoke"
        | "Release" | "Purge" | "Destroy" | "Unregister" | "Leave" => (4, "Delete"),
        _ => (99, "Other"),
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::panic, clippy::unwrap_used)]
mod tests {
    use super::*;

    fn activity(name: &str) -> u32 {
        api_activity(&json!({"eventName": name})).0
    }

    #[test]
    fn activities_follow_the_verb() {
        assert_eq!(activity("GetObject"), 2);
        assert_eq!(activity("BatchGetSecretValue"), 2);
        assert_eq!(activity("CreateUser"), 1);
        assert_eq!(activity("PutBucketPolicy"), 3);
        assert_eq!(activity("DeleteTrail"), 4);
        assert_eq!(activity("ConsoleLogin"), 99);
        assert_eq!(activity("BatchDeleteImage"), 99);
        assert_eq!(
            api_activity(&json!({"eventName": "AssumeRole", "readOnly": true})).0,
            2
        );
    }

    #[test]
    fn eventbridge_records_are_unwrapped() {
        let text = br#"{"version":"0","id":"e1","detail-type":"AWS API Call via CloudTrail","source":"aws.s3","account":"123456789012","time":"2024-01-01T00:00:00Z","region":"us-east-1","resources":[],"detail":{"eventVersion":"1.09","eventTime":"2024-01-01T00:00:00Z","eventName":"PutBucketAcl","eventSource":"s3.amazonaws.com"}}"#;
        let items = super::super::collect(|items| decode(text, items));
        let [Item::Event(event)] = items.as_slice() else {
            panic!("{items:?}")
        };
        assert!(event.raw.starts_with(b"{\"eventVersion\""));
        assert_eq!(event.fields["envelope"]["kind"], "eventbridge");
        assert_eq!(event.fields["envelope"]["id"], "e1");
        assert_eq!(event.ocsf["activity_id"], 3);
    }
}
