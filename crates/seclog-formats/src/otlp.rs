//! OTLP/HTTP logs (`POST /v1/logs`): an `ExportLogsServiceRequest` as protobuf or as OTLP/JSON.
//!
//! Each log record becomes one event whose `raw` is the record as JSON, in OTLP/JSON's naming
//! with attribute lists written as objects (`"attributes": {"http.method": "GET"}`) and ids in
//! hex, so that every attribute is a field; the resource and the instrumentation scope go
//! beside it (`resource`, `scope`).

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue};
use prost::Message;
use serde_json::{Map, Value, json};

use seclog_model::Timestamp;

/// One log record of a request.
#[derive(Debug, Clone, PartialEq)]
pub struct OtlpLog {
    /// `service.name` of the record's resource.
    pub service: Option<String>,
    /// `timeUnixNano`, else `observedTimeUnixNano`.
    pub time: Option<Timestamp>,
    /// The record as JSON.
    pub record: Value,
    /// The resource's attributes and the scope: `{"resource": {...}, "scope": {...}}`.
    pub context: Value,
}

/// Decodes a protobuf request.
///
/// # Errors
///
/// The body is not an `ExportLogsServiceRequest`: the reason.
pub fn decode_otlp_protobuf(body: &[u8]) -> Result<Vec<OtlpLog>, String> {
    let request = ExportLogsServiceRequest::decode(body)
        .map_err(|error| format!("not an OTLP ExportLogsServiceRequest: {error}"))?;
    Ok(logs(request))
}

/// Decodes an OTLP/JSON request.
///
/// # Errors
///
/// The body is not an OTLP/JSON `ExportLogsServiceRequest`: the reason.
pub fn decode_otlp_json(body: &[u8]) -> Result<Vec<OtlpLog>, String> {
    let request: ExportLogsServiceRequest = serde_json::from_slice(body)
        .map_err(|error| format!("not an OTLP/JSON ExportLogsServiceRequest: {error}"))?;
    Ok(logs(request))
}

fn any_json(value: Option<&AnyValue>) -> Value {
    match value.and_then(|value| value.value.as_ref()) {
        None => Value::Null,
        Some(Any::StringValue(text)) => json!(text),
        Some(Any::BoolValue(flag)) => json!(flag),
        Some(Any::IntValue(int)) => json!(int),
        Some(Any::DoubleValue(float)) => json!(float),
        Some(Any::ArrayValue(array)) => Value::Array(
            array
                .values
                .iter()
                .map(|item| any_json(Some(item)))
                .collect(),
        ),
        Some(Any::KvlistValue(list)) => attributes(&list.values),
        Some(Any::BytesValue(bytes)) => json!(hex(bytes)),
        // An index into a profiles string table: meaningless without it, kept as sent.
        Some(Any::StringValueStrindex(index)) => json!({ "stringValueStrindex": index }),
    }
}

fn attributes(list: &[KeyValue]) -> Value {
    Value::Object(
        list.iter()
            .map(|pair| (pair.key.clone(), any_json(pair.value.as_ref())))
            .collect(),
    )
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

fn time(nanos: u64) -> Option<Timestamp> {
    (nanos > 0)
        .then(|| i64::try_from(nanos).ok())
        .flatten()
        .map(Timestamp::from_unix_nanos)
}

fn logs(request: ExportLogsServiceRequest) -> Vec<OtlpLog> {
    let mut out = Vec::new();
    for resource_logs in request.resource_logs {
        let resource = resource_logs
            .resource
            .as_ref()
            .map_or_else(|| json!({}), |resource| attributes(&resource.attributes));
        let service = resource
            .get("service.name")
            .and_then(Value::as_str)
            .map(str::to_string);
        for scope_logs in resource_logs.scope_logs {
            let scope = scope_logs.scope.as_ref().map_or_else(
                || json!({}),
                |scope| {
                    json!({
                        "name": scope.name,
                        "version": scope.version,
                        "attributes": attributes(&scope.attributes),
                    })
                },
            );
            for record in scope_logs.log_records {
                let mut object = Map::new();
                if record.time_unix_nano > 0 {
                    object.insert(
                        "timeUnixNano".into(),
                        json!(record.time_unix_nano.to_string()),
                    );
                }
                if record.observed_time_unix_nano > 0 {
                    object.insert(
                        "observedTimeUnixNano".into(),
                        json!(record.observed_time_unix_nano.to_string()),
                    );
                }
                if record.severity_number != 0 {
                    object.insert("severityNumber".into(), json!(record.severity_number));
                }
                if !record.severity_text.is_empty() {
                    object.insert("severityText".into(), json!(record.severity_text));
                }
                if !record.event_name.is_empty() {
                    object.insert("eventName".into(), json!(record.event_name));
                }
                object.insert("body".into(), any_json(record.body.as_ref()));
                if !record.attributes.is_empty() {
                    object.insert("attributes".into(), attributes(&record.attributes));
                }
                if record.dropped_attributes_count > 0 {
                    object.insert(
                        "droppedAttributesCount".into(),
                        json!(record.dropped_attributes_count),
                    );
                }
                if record.flags != 0 {
                    object.insert("flags".into(), json!(record.flags));
                }
                if !record.trace_id.is_empty() {
                    object.insert("traceId".into(), json!(hex(&record.trace_id)));
                }
                if !record.span_id.is_empty() {
                    object.insert("spanId".into(), json!(hex(&record.span_id)));
                }
                out.push(OtlpLog {
                    service: service.clone(),
                    time: time(record.time_unix_nano)
                        .or_else(|| time(record.observed_time_unix_nano)),
                    record: Value::Object(object),
                    context: json!({ "resource": resource, "scope": scope }),
                });
            }
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)]
mod tests {
    use super::*;

    const JSON: &str = r#"{"resourceLogs":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"checkout"}}]},
      "scopeLogs":[{"scope":{"name":"app.logger","version":"1.0"},
      "logRecords":[{"timeUnixNano":"1764237600000000000","observedTimeUnixNano":"1764237600100000000",
        "severityNumber":17,"severityText":"ERROR","body":{"stringValue":"card declined"},
        "attributes":[{"key":"user.id","value":{"intValue":"42"}},{"key":"tags","value":{"arrayValue":{"values":[{"stringValue":"a"}]}}}],
        "traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174"}]}]}]}"#;

    #[test]
    fn json_and_protobuf_give_the_same_events() {
        let from_json = decode_otlp_json(JSON.as_bytes()).expect("JSON");
        assert_eq!(from_json.len(), 1);
        let log = &from_json[0];
        assert_eq!(log.service.as_deref(), Some("checkout"));
        assert_eq!(
            log.time.map(|t| t.unix_nanos()),
            Some(1_764_237_600_000_000_000)
        );
        assert_eq!(log.record["body"], "card declined");
        assert_eq!(log.record["severityText"], "ERROR");
        assert_eq!(log.record["attributes"]["user.id"], 42);
        assert_eq!(log.record["attributes"]["tags"][0], "a");
        assert_eq!(log.record["traceId"], "5b8efff798038103d269b633813fc60c");
        assert_eq!(log.context["scope"]["name"], "app.logger");
        let request: ExportLogsServiceRequest = serde_json::from_str(JSON).expect("JSON");
        let from_protobuf = decode_otlp_protobuf(&request.encode_to_vec()).expect("protobuf");
        assert_eq!(from_protobuf, from_json);
        assert!(decode_otlp_protobuf(b"\xff\xff\xff").is_err());
        assert!(decode_otlp_json(b"{\"resourceLogs\": 5}").is_err());
    }
}
