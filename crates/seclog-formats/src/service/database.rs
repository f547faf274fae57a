//! Database audit logs.
//!
//! PostgreSQL with pgaudit: server log files in the stderr format (a `log_line_prefix` such as
//! Debian's `%m [%p] %q%u@%d `, continuation lines starting with a tab) or the `jsonlog`
//! format (PostgreSQL 15+). Every entry becomes an event; the audit entries
//! (`AUDIT: SESSION,1,1,READ,SELECT,,,"select …",<not logged>`) get pgaudit's fields
//! (`audit_type`, `statement_id`, `substatement_id`, `class`, `command`, `object_type`,
//! `object_name`, `statement`, `parameter`) and an OCSF Datastore Activity (6005); other log
//! lines keep the prefix fields only.
//!
//! MySQL / MariaDB: MySQL's audit log JSON (an array of records, possibly still open while the
//! server writes it), Percona's `{"audit_record":{…}}` lines, and MariaDB `server_audit` lines
//! (`20240101 12:00:00,host,user,client,connection,query,QUERY,db,'select 1',0`).

use serde_json::{Map, Value, json};

use super::lines::{array_elements, json_values, numbered_lines};
use super::ocsf::{self, DATASTORE_ACTIVITY, Severity, Status, put, str_at};
use super::{Item, RawKind, ServiceEvent, Sink, rejected};
use crate::time_value::parse_time_str;
use seclog_model::Timestamp;

/// pgaudit's columns after `AUDIT: `.
const PGAUDIT_COLUMNS: [&str; 9] = [
    "audit_type",
    "statement_id",
    "substatement_id",
    "class",
    "command",
    "object_type",
    "object_name",
    "statement",
    "parameter",
];

/// Whether text looks like a PostgreSQL log with audit entries.
pub(crate) fn is_pg_text(head: &[u8]) -> bool {
    let text = String::from_utf8_lossy(head.get(..head.len().min(64 << 10)).unwrap_or_default());
    text.contains("AUDIT: SESSION,") || text.contains("AUDIT: OBJECT,")
}

/// Whether a line is a MariaDB server_audit line.
pub(crate) fn is_mariadb_line(line: &str) -> bool {
    let mut parts = line.splitn(8, ',');
    parts.next().and_then(mariadb_time).is_some()
        && parts.nth(5).is_some_and(|operation| {
            matches!(
                operation,
                "CONNECT"
                    | "DISCONNECT"
                    | "FAILED_CONNECT"
                    | "QUERY"
                    | "READ"
                    | "WRITE"
                    | "CREATE"
                    | "ALTER"
                    | "RENAME"
                    | "DROP"
            )
        })
}

pub(crate) fn decode_pgaudit(bytes: &[u8], items: &mut dyn Sink) {
    // An entry: its first line number, and its lines joined (continuations start with a tab).
    let mut entry: Option<(usize, Vec<u8>)> = None;
    for (number, line) in numbered_lines(bytes) {
        if line.first() == Some(&b'\t')
            && let Some((_, text)) = entry.as_mut()
        {
            text.push(b'\n');
            text.extend_from_slice(line);
            continue;
        }
        if let Some((first, text)) = entry.take() {
            items.push(pg_entry(&text, first));
        }
        entry = Some((number, line.to_vec()));
    }
    if let Some((first, text)) = entry {
        items.push(pg_entry(&text, first));
    }
}

fn pg_entry(raw: &[u8], number: usize) -> Item {
    let Ok(text) = std::str::from_utf8(raw) else {
        return rejected(raw, format!("line {number}: not UTF-8"));
    };
    let mut fields = Map::new();
    let message = if text.starts_with('{') {
        let Ok(Value::Object(object)) = serde_json::from_str::<Value>(text) else {
            return rejected(raw, format!("line {number}: invalid jsonlog JSON"));
        };
        for (key, value) in &object {
            let name = match key.as_str() {
                "timestamp" => "log_time",
                "user" => "user_name",
                "dbname" => "database_name",
                "pid" => "process_id",
                other => other,
            };
            fields.insert(name.to_string(), value.clone());
        }
        object
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    } else {
        match pg_prefix(text) {
            Some((prefix_fields, message)) => {
                fields.extend(prefix_fields);
                // PostgreSQL puts a tab after every newline of a message in this format.
                message.replace("\n\t", "\n")
            }
            None => {
                return rejected(
                    raw,
                    format!("line {number}: not a PostgreSQL log line (no \"LEVEL:  \" message)"),
                );
            }
        }
    };
    let time = fields
        .get("log_time")
        .and_then(Value::as_str)
        .and_then(pg_time);
    let mut ocsf = Map::new();
    if let Some(audit) = message.strip_prefix("AUDIT: ") {
        let columns = match csv_row(audit) {
            Ok(columns) => columns,
            Err(reason) => return rejected(raw, format!("line {number}: pgaudit entry: {reason}")),
        };
        if columns.len() < 8 {
            return rejected(
                raw,
                format!(
                    "line {number}: pgaudit entry has {} fields, at least 8 expected",
                    columns.len()
                ),
            );
        }
        for (name, value) in PGAUDIT_COLUMNS.iter().zip(&columns) {
            if value.is_empty() {
                continue;
            }
            let value = match *name {
                "statement_id" | "substatement_id" => value
                    .parse::<u64>()
                    .map_or_else(|_| json!(value), |n| json!(n)),
                _ => json!(value),
            };
            fields.insert(name.to_string(), value);
        }
        ocsf = pg_ocsf(&fields, time);
    } else {
        fields.insert("message".into(), json!(message));
    }
    Item::Event(ServiceEvent {
        time,
        kind: RawKind::Text,
        raw: raw.to_vec(),
        fields,
        ocsf,
    })
}

/// The prefix of a stderr log line: time, `[pid]`, optional `user@db`, then `LEVEL:  message`.
fn pg_prefix(line: &str) -> Option<(Map<String, Value>, &str)> {
    let level_at = [
        "LOG:  ",
        "WARNING:  ",
        "ERROR:  ",
        "FATAL:  ",
        "PANIC:  ",
        "NOTICE:  ",
        "INFO:  ",
        "DETAIL:  ",
        "HINT:  ",
        "STATEMENT:  ",
        "CONTEXT:  ",
        "DEBUG:  ",
    ]
    .iter()
    .filter_map(|level| line.find(level).map(|at| (at, *level)))
    .min_by_key(|(at, _)| *at)?;
    let (at, level) = level_at;
    let prefix = line.get(..at)?.trim_end();
    let message = line.get(at + level.len()..)?;
    let mut fields = Map::new();
    fields.insert(
        "error_severity".into(),
        json!(level.trim_end().trim_end_matches(':')),
    );
    // `2024-11-28 03:00:00.123 UTC [4242] alice@shop` (the pid and user@db are optional).
    let mut rest = prefix;
    if let Some(open) = rest.find(" [")
        && let Some(close) = rest.get(open..).and_then(|tail| tail.find(']'))
    {
        let time = rest.get(..open)?;
        fields.insert("log_time".into(), json!(time));
        if let Some(pid) = rest
            .get(open + 2..open + close)
            .and_then(|pid| pid.split('-').next())
            .and_then(|pid| pid.parse::<u64>().ok())
        {
            fields.insert("process_id".into(), json!(pid));
        }
        rest = rest.get(open + close + 1..)?.trim();
    } else if !prefix.is_empty() {
        fields.insert("log_time".into(), json!(prefix));
        rest = "";
    }
    if let Some((user, database)) = rest.split_once('@') {
        if !user.is_empty() && !user.contains(' ') {
            fields.insert("user_name".into(), json!(user));
        }
        let database = database.split_whitespace().next().unwrap_or_default();
        if !database.is_empty() {
            fields.insert("database_name".into(), json!(database));
        }
    }
    Some((fields, message))
}

/// `2024-11-28 03:00:00.123 UTC` or with a numeric offset (`+01`, `+0530`); other zone names
/// are not knowable here.
fn pg_time(text: &str) -> Option<Timestamp> {
    let (date_time, zone) = text.rsplit_once(' ')?;
    let zone = match zone {
        "UTC" | "GMT" | "Z" => "Z".to_string(),
        offset if offset.starts_with(['+', '-']) => {
            let digits = offset.get(1..)?;
            match digits.len() {
                2 => format!("{offset}:00"),
                4 => format!("{}:{}", offset.get(..3)?, digits.get(2..)?),
                _ => offset.to_string(),
            }
        }
        _ => return None,
    };
    parse_time_str(&format!("{}{zone}", date_time.replacen(' ', "T", 1)))
}

fn pg_ocsf(fields: &Map<String, Value>, time: Option<Timestamp>) -> Map<String, Value> {
    let command = fields
        .get("command")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let class = fields
        .get("class")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let severity = if class == "ROLE" {
        Severity::Low
    } else {
        Severity::Informational
    };
    let mut event = ocsf::base(
        DATASTORE_ACTIVITY,
        sql_activity(command),
        severity,
        time,
        "PostgreSQL",
    );
    ocsf::set_status(&mut event, Status::Success);
    let get = |name: &str| fields.get(name).cloned().unwrap_or(Value::Null);
    ocsf::copy(
        &mut event,
        fields,
        &[
            ("actor.user.name", "user_name"),
            ("actor.process.pid", "process_id"),
            ("database.name", "database_name"),
        ],
    );
    put(&mut event, "database.type", json!("Relational"));
    put(&mut event, "database.type_id", json!(1));
    put(&mut event, "query_info.query_string", get("statement"));
    put(&mut event, "api.operation", json!(command));
    if fields.get("object_type").and_then(Value::as_str) == Some("TABLE") {
        put(&mut event, "table.name", get("object_name"));
    }
    put(&mut event, "metadata.event_code", get("class"));
    put(&mut event, "metadata.log_name", json!("pgaudit"));
    event
}

/// Datastore Activity activity from an SQL command (`SELECT`, `CREATE TABLE`, …).
fn sql_activity(command: &str) -> (u32, &'static str) {
    let verb = command
        .split(|c: char| c.is_whitespace() || c == '_')
        .next()
        .unwrap_or_default()
        .to_ascii_uppercase();
    match verb.as_str() {
        "SELECT" | "SHOW" | "EXPLAIN" => (4, "Query"),
        "INSERT" | "COPY" | "REPLACE" | "LOAD" => (5, "Write"),
        "UPDATE" | "ALTER" | "GRANT" | "REVOKE" | "RENAME" | "SET" => (2, "Update"),
        "DELETE" | "TRUNCATE" | "DROP" => (7, "Delete"),
        "CREATE" => (6, "Create"),
        "CONNECT" => (3, "Connect"),
        _ => (99, "Other"),
    }
}

/// One CSV row (`,` separated, `"` quoted with `""` escapes).
fn csv_row(text: &str) -> Result<Vec<String>, String> {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut chars = text.chars().peekable();
    let mut quoted = false;
    let mut at_start = true;
    while let Some(c) = chars.next() {
        if quoted {
            if c == '"' {
                if chars.peek() == Some(&'"') {
                    field.push('"');
                    chars.next();
                } else {
                    quoted = false;
                }
            } else {
                field.push(c);
            }
            continue;
        }
        match c {
            '"' if at_start => {
                quoted = true;
                at_start = false;
            }
            ',' => {
                fields.push(std::mem::take(&mut field));
                at_start = true;
            }
            other => {
                field.push(other);
                at_start = false;
            }
        }
    }
    if quoted {
        return Err("a quoted field is not closed".into());
    }
    fields.push(field);
    Ok(fields)
}

pub(crate) fn decode_mysql(bytes: &[u8], items: &mut dyn Sink) {
    let first = bytes.iter().find(|byte| !byte.is_ascii_whitespace());
    if !matches!(first, Some(b'{' | b'[')) {
        for (number, line) in numbered_lines(bytes) {
            items.push(mariadb_line(line, number));
        }
        return;
    }
    let mut number = 0;
    for value in json_values(bytes) {
        match value {
            Ok(value) => {
                for record in array_elements(value).unwrap_or_else(|| vec![value]) {
                    number += 1;
                    items.push(mysql_record(record.get().as_bytes(), number));
                }
            }
            Err(bad) if bad.raw.first() == Some(&b'[') => {
                // MySQL keeps the array open while it writes: read it a record per line.
                open_array(bytes, items);
                return;
            }
            Err(bad) => items.push(Item::Rejected(bad)),
        }
    }
}

/// An audit log array that is not closed yet: `[`, then records separated by `,` and newlines.
fn open_array(bytes: &[u8], items: &mut dyn Sink) {
    for (number, line) in numbered_lines(bytes) {
        let trimmed = std::str::from_utf8(line).ok().map(str::trim).unwrap_or("");
        let trimmed = trimmed.trim_start_matches('[').trim_end_matches(']');
        let trimmed = trimmed.trim_end_matches(',').trim();
        if !trimmed.is_empty() {
            items.push(mysql_record(trimmed.as_bytes(), number));
        }
    }
}

fn mysql_record(raw: &[u8], number: usize) -> Item {
    let record: Value = match serde_json::from_slice(raw) {
        Ok(value @ Value::Object(_)) => value,
        Ok(_) => return rejected(raw, format!("record {number}: not a JSON object")),
        Err(error) => return rejected(raw, format!("record {number}: invalid JSON: {error}")),
    };
    let (time, ocsf) = if let Some(percona) = record.get("audit_record") {
        let time = str_at(percona, "timestamp").and_then(mysql_time);
        (time, percona_ocsf(percona, time))
    } else if record.get("class").is_some() && record.get("timestamp").is_some() {
        let time = str_at(&record, "timestamp").and_then(mysql_time);
        (time, mysql_ocsf(&record, time))
    } else {
        return rejected(
            raw,
            format!(
                "record {number}: not a MySQL audit record (no class/timestamp or audit_record)"
            ),
        );
    };
    Item::Event(ServiceEvent {
        time,
        kind: RawKind::Json,
        raw: raw.to_vec(),
        fields: Map::new(),
        ocsf,
    })
}

/// `2019-10-03 13:50:01` (UTC, as MySQL writes it) or `2020-01-01T00:00:00 UTC` (Percona).
fn mysql_time(text: &str) -> Option<Timestamp> {
    let text = text.trim().trim_end_matches(" UTC");
    parse_time_str(text).or_else(|| parse_time_str(&format!("{}Z", text.replacen(' ', "T", 1))))
}

fn mysql_ocsf(record: &Value, time: Option<Timestamp>) -> Map<String, Value> {
    let class = str_at(record, "class").unwrap_or_default();
    let event_name = str_at(record, "event").unwrap_or_default();
    let field = |path: &str| ocsf::at(record, path).cloned().unwrap_or(Value::Null);
    let (activity, status_code, query) = match class {
        "connection" => (
            if event_name == "disconnect" {
                (99, "Other")
            } else {
                (3, "Connect")
            },
            ocsf::at(record, "connection_data.status").and_then(Value::as_i64),
            Value::Null,
        ),
        "table_access" => (
            sql_activity(str_at(record, "table_access_data.sql_command").unwrap_or_default()),
            None,
            field("table_access_data.query"),
        ),
        _ => (
            sql_activity(str_at(record, "general_data.sql_command").unwrap_or_default()),
            ocsf::at(record, "general_data.status").and_then(Value::as_i64),
            field("general_data.query"),
        ),
    };
    let failed = status_code.is_some_and(|code| code != 0);
    let mut event = datastore_event(activity, failed, status_code, time, "MySQL");
    put(&mut event, "actor.user.name", field("account.user"));
    put(&mut event, "src_endpoint.hostname", field("account.host"));
    put(&mut event, "src_endpoint.ip", field("login.ip"));
    put(&mut event, "actor.session.uid", field("connection_id"));
    put(&mut event, "query_info.query_string", query);
    put(
        &mut event,
        "database.name",
        ocsf::at(record, "connection_data.db")
            .or_else(|| ocsf::at(record, "table_access_data.db"))
            .cloned()
            .unwrap_or_default(),
    );
    put(&mut event, "table.name", field("table_access_data.table"));
    put(&mut event, "database.type", json!("Relational"));
    put(&mut event, "database.type_id", json!(1));
    put(
        &mut event,
        "metadata.event_code",
        json!(format!("{class}/{event_name}")),
    );
    put(&mut event, "metadata.log_name", json!("MySQL audit log"));
    event
}

fn percona_ocsf(record: &Value, time: Option<Timestamp>) -> Map<String, Value> {
    let name = str_at(record, "name").unwrap_or_default();
    let field = |path: &str| ocsf::at(record, path).cloned().unwrap_or(Value::Null);
    let activity = match name {
        "Connect" | "Change user" => (3, "Connect"),
        "Quit" => (99, "Other"),
        _ => sql_activity(str_at(record, "command_class").unwrap_or_default()),
    };
    let status = ocsf::at(record, "status")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    let mut event = datastore_event(activity, status != 0, Some(status), time, "MySQL");
    let user = str_at(record, "user")
        .and_then(|user| user.split('[').next())
        .map(str::trim);
    put(&mut event, "actor.user.name", ocsf::text(user));
    put(&mut event, "src_endpoint.hostname", field("host"));
    put(&mut event, "src_endpoint.ip", field("ip"));
    put(&mut event, "actor.session.uid", field("connection_id"));
    put(&mut event, "query_info.query_string", field("sqltext"));
    put(&mut event, "database.name", field("db"));
    put(&mut event, "database.type", json!("Relational"));
    put(&mut event, "database.type_id", json!(1));
    put(&mut event, "metadata.event_code", json!(name));
    put(&mut event, "metadata.log_name", json!("Percona audit log"));
    event
}

/// A Datastore Activity event of a database audit record: a failed login is Medium, another
/// failure Low; a non-zero `code` is the status code.
fn datastore_event(
    activity: (u32, &str),
    failed: bool,
    code: Option<i64>,
    time: Option<Timestamp>,
    product: &str,
) -> Map<String, Value> {
    let severity = match (failed, activity.0) {
        (true, 3) => Severity::Medium,
        (true, _) => Severity::Low,
        _ => Severity::Informational,
    };
    let mut event = ocsf::base(DATASTORE_ACTIVITY, activity, severity, time, product);
    ocsf::set_status(
        &mut event,
        if failed {
            Status::Failure
        } else {
            Status::Success
        },
    );
    if let Some(code) = code.filter(|code| *code != 0) {
        put(&mut event, "status_code", json!(code.to_string()));
    }
    event
}

/// `20240101 12:00:00` (server time, taken as UTC).
fn mariadb_time(text: &str) -> Option<Timestamp> {
    let (date, clock) = text.split_once(' ')?;
    if date.len() != 8 {
        return None;
    }
    parse_time_str(&format!(
        "{}-{}-{}T{clock}Z",
        date.get(..4)?,
        date.get(4..6)?,
        date.get(6..)?
    ))
}

const MARIADB_COLUMNS: [&str; 10] = [
    "timestamp",
    "serverhost",
    "username",
    "host",
    "connectionid",
    "queryid",
    "operation",
    "database",
    "object",
    "retcode",
];

fn mariadb_line(line: &[u8], number: usize) -> Item {
    let Ok(text) = std::str::from_utf8(line) else {
        return rejected(line, format!("line {number}: not UTF-8"));
    };
    let mut parts: Vec<String> = Vec::new();
    // The object is quoted with single quotes and may hold commas; the rest are plain.
    let mut rest = text;
    for _ in 0..8 {
        let Some((part, tail)) = rest.split_once(',') else {
            break;
        };
        parts.push(part.to_string());
        rest = tail;
    }
    if parts.len() < 8 {
        return rejected(
            line,
            format!("line {number}: not a MariaDB audit line (fewer than 10 fields)"),
        );
    }
    let (object, retcode) = match rest.rsplit_once(',') {
        Some((object, retcode)) => (object, retcode),
        None => (rest, ""),
    };
    let object = object
        .strip_prefix('\'')
        .and_then(|o| o.strip_suffix('\''))
        .unwrap_or(object)
        .replace("\\'", "'");
    parts.push(object);
    parts.push(retcode.to_string());
    let Some(time) = parts.first().and_then(|t| mariadb_time(t)) else {
        return rejected(line, format!("line {number}: the audit time is not a time"));
    };
    let mut fields = Map::new();
    for (name, value) in MARIADB_COLUMNS.iter().zip(&parts) {
        if value.is_empty() {
            continue;
        }
        let value = match *name {
            "connectionid" | "queryid" | "retcode" => value
                .parse::<i64>()
                .map_or_else(|_| json!(value), |n| json!(n)),
            _ => json!(value),
        };
        fields.insert(name.to_string(), value);
    }
    let operation = fields
        .get("operation")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let retcode = fields.get("retcode").and_then(Value::as_i64).unwrap_or(0);
    let activity = match operation {
        "CONNECT" | "FAILED_CONNECT" => (3, "Connect"),
        "DISCONNECT" => (99, "Other"),
        "READ" => (1, "Read"),
        "WRITE" => (5, "Write"),
        "CREATE" => (6, "Create"),
        "DROP" => (7, "Delete"),
        "ALTER" | "RENAME" => (2, "Update"),
        _ => sql_activity(
            fields
                .get("object")
                .and_then(Value::as_str)
                .unwrap_or_default(),
        ),
    };
    let failed = retcode != 0 || operation == "FAILED_CONNECT";
    let mut event = datastore_event(activity, failed, Some(retcode), Some(time), "MariaDB");
    let get = |name: &str| fields.get(name).cloned().unwrap_or(Value::Null);
    ocsf::copy(
        &mut event,
        &fields,
        &[
            ("actor.user.name", "username"),
            ("src_endpoint.hostname", "host"),
            ("actor.session.uid", "connectionid"),
            ("database.name", "database"),
        ],
    );
    put(&mut event, "database.type", json!("Relational"));
    put(&mut event, "database.type_id", json!(1));
    if operation == "QUERY" {
        put(&mut event, "query_info.query_string", get("object"));
    } else if matches!(
        operation,
        "READ" | "WRITE" | "CREATE" | "DROP" | "ALTER" | "RENAME"
    ) {
        put(&mut event, "table.name", get("object"));
    }
    put(&mut event, "metadata.event_code", json!(operation));
    put(
        &mut event,
        "metadata.log_name",
        json!("MariaDB server_audit"),
    );
    Item::Event(ServiceEvent {
        time: Some(time),
        kind: RawKind::Text,
        raw: line.to_vec(),
        fields,
        ocsf: event,
    })
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::panic, clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn pgaudit_stderr_entries_with_continuations() {
        let log = "2024-11-28 03:00:00.123 UTC [4242] alice@shop LOG:  AUDIT: SESSION,1,1,READ,SELECT,,,\"SELECT a, b\n\tFROM t\",<not logged>\n\
                   2024-11-28 03:00:01.000 UTC [4242] alice@shop LOG:  connection authorized: user=alice\n";
        let items = super::super::collect(|items| decode_pgaudit(log.as_bytes(), items));
        let [Item::Event(audit), Item::Event(other)] = items.as_slice() else {
            panic!("{items:?}")
        };
        assert_eq!(audit.fields["statement"], "SELECT a, b\nFROM t");
        assert!(audit.raw.ends_with(b"SELECT a, b\n\tFROM t\",<not logged>"));
        assert_eq!(audit.fields["class"], "READ");
        assert_eq!(audit.fields["user_name"], "alice");
        assert_eq!(audit.fields["process_id"], 4242);
        assert_eq!(audit.ocsf["activity_name"], "Query");
        assert_eq!(audit.ocsf["database"]["name"], "shop");
        assert_eq!(
            audit.time.map(|t| t.to_rfc3339()).as_deref(),
            Some("2024-11-28T03:00:00.123000000Z")
        );
        assert!(other.ocsf.is_empty());
        assert_eq!(other.fields["message"], "connection authorized: user=alice");
    }

    #[test]
    fn mysql_json_open_arrays_and_mariadb_lines() {
        let open = b"[\n{\"timestamp\":\"2019-10-03 13:50:01\",\"id\":0,\"class\":\"connection\",\"event\":\"connect\",\"connection_id\":8,\"account\":{\"user\":\"root\",\"host\":\"localhost\"},\"login\":{\"user\":\"root\",\"os\":\"\",\"ip\":\"10.0.0.9\",\"proxy\":\"\"},\"connection_data\":{\"connection_type\":\"ssl\",\"status\":1045,\"db\":\"shop\"}},\n{\"timestamp\":\"2019-10-03 13:50:02\",\"id\":1,\"class\":\"general\",\"event\":\"status\",\"connection_id\":8,\"account\":{\"user\":\"root\",\"host\":\"localhost\"},\"general_data\":{\"command\":\"Query\",\"sql_command\":\"drop_table\",\"query\":\"DROP TABLE t\",\"status\":0}},\n";
        let items = super::super::collect(|items| decode_mysql(open, items));
        let [Item::Event(login), Item::Event(drop)] = items.as_slice() else {
            panic!("{items:?}")
        };
        assert_eq!(login.ocsf["status"], "Failure");
        assert_eq!(login.ocsf["severity_id"], 3);
        assert_eq!(login.ocsf["src_endpoint"]["ip"], "10.0.0.9");
        assert_eq!(drop.ocsf["query_info"]["query_string"], "DROP TABLE t");
        let maria = b"20240101 12:00:00,db1,bob,10.0.0.7,12,34,QUERY,shop,'SELECT \\'a,b\\'',0\n";
        let items = super::super::collect(|items| decode_mysql(maria, items));
        let [Item::Event(query)] = items.as_slice() else {
            panic!("{items:?}")
        };
        assert_eq!(query.fields["object"], "SELECT 'a,b'");
        assert_eq!(query.ocsf["activity_name"], "Query");
        assert!(is_mariadb_line(
            std::str::from_utf8(maria).expect("utf8").trim()
        ));
    }
}
