//! AWS Config: configuration history and snapshot files (`{"configurationItems":[…]}`),
//! change notifications (`{"configurationItem":…,"configurationItemDiff":…}`), and single
//! configuration items.
//!
//! OCSF: Cloud Resources Inventory Info (5023), activity Log.

use serde_json::{Map, Value, json};

use super::lines::{array_elements, each_json_value, member_array};
use super::ocsf::{self, CLOUD_RESOURCES_INVENTORY, Severity, Status, put, str_at};
use super::{Item, RawKind, ServiceEvent, Sink, rejected};
use crate::time_value::parse_time_str;

pub(crate) fn decode(bytes: &[u8], items: &mut dyn Sink) {
    let mut number = 0;
    each_json_value(bytes, items, |value, items| {
        let records = member_array(value, "configurationItems")
            .or_else(|| array_elements(value))
            .unwrap_or_else(|| vec![value]);
        for record in records {
            number += 1;
            items.push(item(record.get().as_bytes(), number));
        }
    });
}

fn item(raw: &[u8], number: usize) -> Item {
    let record: Value = match serde_json::from_slice(raw) {
        Ok(value @ Value::Object(_)) => value,
        Ok(_) => return rejected(raw, format!("record {number}: not a JSON object")),
        Err(error) => return rejected(raw, format!("record {number}: invalid JSON: {error}")),
    };
    // A notification holds the item; a history or snapshot file holds items directly.
    let configuration_item = record.get("configurationItem").unwrap_or(&record);
    if configuration_item.get("resourceType").is_none() {
        return rejected(
            raw,
            format!("record {number}: not an AWS Config configuration item (no resourceType)"),
        );
    }
    let time = str_at(configuration_item, "configurationItemCaptureTime")
        .or_else(|| str_at(&record, "notificationCreationTime"))
        .and_then(parse_time_str);
    let status = str_at(configuration_item, "configurationItemStatus");
    let severity = if status == Some("ResourceDeleted") {
        Severity::Low
    } else {
        Severity::Informational
    };
    let mut event = ocsf::base(
        CLOUD_RESOURCES_INVENTORY,
        (1, "Log"),
        severity,
        time,
        "AWS Config",
    );
    ocsf::set_status(&mut event, Status::Success);
    let field = |path: &str| {
        ocsf::at(configuration_item, path)
            .cloned()
            .unwrap_or(Value::Null)
    };
    let mut resource = Map::new();
    put(&mut resource, "uid", field("ARN"));
    put(&mut resource, "name", field("resourceName"));
    put(&mut resource, "type", field("resourceType"));
    put(&mut resource, "region", field("awsRegion"));
    put(
        &mut resource,
        "created_time_dt",
        field("resourceCreationTime"),
    );
    if let Some(Value::Object(tags)) = configuration_item.get("tags") {
        let labels: Vec<Value> = tags
            .iter()
            .map(|(key, value)| json!(format!("{key}={}", value.as_str().unwrap_or_default())))
            .collect();
        put(&mut resource, "labels", Value::Array(labels));
    }
    put(&mut resource, "owner.account.uid", field("awsAccountId"));
    if resource.get("uid").is_none() {
        put(&mut resource, "uid", field("resourceId"));
    }
    put(&mut event, "resources", json!([resource]));
    put(&mut event, "status_detail", json!(status));
    put(&mut event, "metadata.uid", field("configurationStateId"));
    put(
        &mut event,
        "metadata.log_version",
        field("configurationItemVersion"),
    );
    put(
        &mut event,
        "metadata.event_code",
        field("configurationItemStatus"),
    );
    put(
        &mut event,
        "metadata.log_name",
        json!("AWS Config configuration items"),
    );
    put(&mut event, "cloud.provider", json!("AWS"));
    put(&mut event, "cloud.account.uid", field("awsAccountId"));
    put(&mut event, "cloud.region", field("awsRegion"));
    put(&mut event, "cloud.zone", field("availabilityZone"));
    Item::Event(ServiceEvent {
        time,
        kind: RawKind::Json,
        raw: raw.to_vec(),
        fields: Map::new(),
        ocsf: event,
    })
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::panic, clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn history_files_and_notifications() {
        let history = br#"{"fileVersion":"1.0","configurationItems":[{"configurationItemVersion":"1.3","configurationItemCaptureTime":"2024-02-01T10:00:00.000Z","configurationStateId":1706781600000,"awsAccountId":"111122223333","configurationItemStatus":"ResourceDiscovered","resourceType":"AWS::S3::Bucket","resourceId":"logs","resourceName":"logs","ARN":"arn:aws:s3:::logs","awsRegion":"us-east-1","tags":{"team":"sec"},"configuration":{"name":"logs"}}]}"#;
        let items = super::super::collect(|items| decode(history, items));
        let [Item::Event(event)] = items.as_slice() else {
            panic!("{items:?}")
        };
        assert_eq!(event.ocsf["resources"][0]["uid"], "arn:aws:s3:::logs");
        assert_eq!(event.ocsf["resources"][0]["labels"][0], "team=sec");
        assert_eq!(event.ocsf["class_uid"], 5023);
        let notification = br#"{"configurationItemDiff":{"changeType":"DELETE"},"configurationItem":{"configurationItemCaptureTime":"2024-02-01T10:00:00.000Z","configurationItemStatus":"ResourceDeleted","resourceType":"AWS::EC2::SecurityGroup","resourceId":"sg-1","awsRegion":"us-east-1"},"notificationCreationTime":"2024-02-01T10:00:01.000Z","messageType":"ConfigurationItemChangeNotification","recordVersion":"1.3"}"#;
        let items = super::super::collect(|items| decode(notification, items));
        let [Item::Event(event)] = items.as_slice() else {
            panic!("{items:?}")
        };
        assert_eq!(event.ocsf["severity_id"], 2);
        assert_eq!(event.ocsf["resources"][0]["uid"], "sg-1");
        assert!(matches!(
            super::super::collect(|items| decode(br#"{"a":1}"#, items)).as_slice(),
            [Item::Rejected(_)]
        ));
    }
}
