//! The `tracing` layer: one JSON object per event, with the service, the request context and
//! redaction, handed to the outputs without waiting.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;

use crate::redact::Redactor;
use crate::ship::{ShipQueue, Stats};

/// Where lines go.
pub(crate) struct Outputs {
    pub(crate) stdout: Option<crate::stdout::StdoutQueue>,
    pub(crate) seclog: Option<ShipQueue>,
}

/// The layer (see the crate documentation for the line format).
pub struct JsonLayer {
    /// `"service":{...}`, rendered once.
    service: String,
    /// The service's name and version as OCSF `metadata.product`, rendered once.
    product: String,
    redactor: Redactor,
    outputs: Outputs,
    stats: Arc<Stats>,
}

/// Fields recorded on a span, kept in its extensions.
struct SpanFields(Map<String, Value>);

/// Members the line itself writes: an OCSF event's member of the same name is left out.
const LINE_MEMBERS: &[&str] = &[
    "timestamp",
    "level",
    "target",
    "message",
    "service",
    "correlation_id",
    "trace_id",
    "span_id",
    "src_endpoint",
    "http_request",
    "actor",
    "fields",
    "metadata",
    "time",
];

impl JsonLayer {
    pub(crate) fn new(
        service: &crate::Service,
        redactor: Redactor,
        outputs: Outputs,
        stats: Arc<Stats>,
    ) -> JsonLayer {
        let service_json = serde_json::json!({
            "name": service.name,
            "version": service.version,
            "host": service.host,
        });
        let product = serde_json::json!({
            "name": service.name,
            "version": service.version,
            "vendor_name": "seclog-app",
        });
        JsonLayer {
            service: format!("\"service\":{service_json}"),
            product: product.to_string(),
            redactor,
            outputs,
            stats,
        }
    }

    /// Writes the JSON line of one event, with its newline, to `out`.
    fn write_line<S>(&self, event: &Event<'_>, ctx: &Context<'_, S>, out: &mut Vec<u8>)
    where
        S: Subscriber + for<'lookup> LookupSpan<'lookup>,
    {
        let metadata = event.metadata();
        let mut visitor = Visitor::new(&self.redactor);
        event.record(&mut visitor);
        out.extend_from_slice(b"{\"timestamp\":\"");
        out.extend_from_slice(seclog_model::Timestamp::now().to_rfc3339().as_bytes());
        out.extend_from_slice(b"\",\"level\":\"");
        out.extend_from_slice(metadata.level().as_str().as_bytes());
        out.extend_from_slice(b"\",\"target\":");
        write_json(out, metadata.target());
        if let Some(message) = &visitor.message {
            out.extend_from_slice(b",\"message\":");
            write_json(out, message.as_str());
        }
        out.push(b',');
        out.extend_from_slice(self.service.as_bytes());
        let context = crate::context::current();
        if let Some(context) = &context {
            out.push(b',');
            out.extend_from_slice(
                context
                    .rendered(|fixed| render_fixed(fixed, &self.redactor))
                    .as_bytes(),
            );
            write_identity(out, &context.identity());
        }
        let mut fields = Map::new();
        if let Some(scope) = ctx.event_scope(event) {
            for span in scope.from_root() {
                if let Some(SpanFields(members)) = span.extensions().get::<SpanFields>() {
                    fields.extend(
                        members
                            .iter()
                            .map(|(name, value)| (name.clone(), value.clone())),
                    );
                }
            }
        }
        fields.extend(std::mem::take(&mut visitor.fields));
        if !fields.is_empty() {
            out.extend_from_slice(b",\"fields\":");
            write_json(out, &fields);
        }
        if visitor.ocsf {
            crate::event::with_emitting(|members| {
                let members = match members {
                    Some(crate::event::Emitting::Members(members)) => members,
                    Some(crate::event::Emitting::Rendered(text)) => {
                        out.push(b',');
                        out.extend_from_slice(text.as_bytes());
                        return;
                    }
                    None => return,
                };
                // Security events are few: the shared redaction walk on a copy is cheap enough.
                let mut members = Value::Object(members.clone());
                self.redactor.redact_json(&mut members);
                let Value::Object(members) = members else {
                    return;
                };
                for (name, value) in &members {
                    if LINE_MEMBERS.contains(&name.as_str()) {
                        continue;
                    }
                    out.push(b',');
                    write_json(out, name.as_str());
                    out.push(b':');
                    write_json(out, value);
                }
            });
            out.extend_from_slice(b",\"metadata\":{\"version\":\"");
            out.extend_from_slice(crate::event::OCSF_VERSION.as_bytes());
            out.extend_from_slice(b"\",\"product\":");
            out.extend_from_slice(self.product.as_bytes());
            if let Some(context) = &context {
                out.extend_from_slice(b",\"correlation_uid\":");
                write_json(out, context.fixed().correlation_id.as_str());
            }
            out.extend_from_slice(b"},\"time\":");
            let millis = seclog_model::Timestamp::now().unix_nanos() / 1_000_000;
            out.extend_from_slice(millis.to_string().as_bytes());
        }
        out.extend_from_slice(b"}\n");
    }
}

/// JSON of a value that serializes (strings, maps, numbers) into `out`.
fn write_json<T: serde::Serialize + ?Sized>(out: &mut Vec<u8>, value: &T) {
    // Writing to a Vec only fails for values that cannot be JSON (non-string map keys):
    // none are written here.
    let _ = serde_json::to_writer(&mut *out, value);
}

/// The request's fixed members: `"correlation_id":…,"trace_id":…,"span_id":…,
/// "src_endpoint":{…},"http_request":{…}` (the user agent redacted).
fn render_fixed(fixed: &crate::context::Fixed, redactor: &Redactor) -> String {
    let mut request = Map::new();
    request.insert("http_method".into(), fixed.method.clone().into());
    if let Some(route) = &fixed.route {
        request.insert("url".into(), serde_json::json!({ "path": route }));
    }
    if let Some(agent) = &fixed.user_agent {
        request.insert(
            "user_agent".into(),
            redactor.redact_text(agent).into_owned().into(),
        );
    }
    request.insert("uid".into(), fixed.correlation_id.clone().into());
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(b"\"correlation_id\":");
    write_json(&mut out, fixed.correlation_id.as_str());
    out.extend_from_slice(b",\"trace_id\":");
    write_json(&mut out, fixed.trace_id.as_str());
    out.extend_from_slice(b",\"span_id\":");
    write_json(&mut out, fixed.span_id.as_str());
    if let Some(ip) = fixed.client_ip {
        out.extend_from_slice(b",\"src_endpoint\":{\"ip\":\"");
        out.extend_from_slice(ip.to_string().as_bytes());
        out.extend_from_slice(b"\"}");
    }
    out.extend_from_slice(b",\"http_request\":");
    write_json(&mut out, &request);
    String::from_utf8(out).unwrap_or_default()
}

/// `,"actor":{"user":{"name":…},"session":{"uid":…}}` when the request has a user or session.
fn write_identity(out: &mut Vec<u8>, identity: &crate::context::Identity) {
    if identity.user.is_none() && identity.session.is_none() {
        return;
    }
    out.extend_from_slice(b",\"actor\":{");
    if let Some(user) = &identity.user {
        out.extend_from_slice(b"\"user\":{\"name\":");
        write_json(out, user.as_str());
        out.push(b'}');
    }
    if let Some(session) = &identity.session {
        if identity.user.is_some() {
            out.push(b',');
        }
        out.extend_from_slice(b"\"session\":{\"uid\":");
        write_json(out, session.as_str());
        out.push(b'}');
    }
    out.push(b'}');
}

impl<S> tracing_subscriber::Layer<S> for JsonLayer
where
    S: Subscriber + for<'lookup> LookupSpan<'lookup>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut visitor = Visitor::new(&self.redactor);
        attrs.record(&mut visitor);
        let mut fields = visitor.fields;
        if let Some(message) = visitor.message {
            fields.insert("message".into(), message.into());
        }
        span.extensions_mut().insert(SpanFields(fields));
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut visitor = Visitor::new(&self.redactor);
        values.record(&mut visitor);
        let mut extensions = span.extensions_mut();
        if let Some(SpanFields(fields)) = extensions.get_mut::<SpanFields>() {
            fields.extend(visitor.fields);
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let target = event.metadata().target();
        // The shipper's own HTTP client and TLS logs would feed themselves.
        if ["seclog_app::ship", "ureq", "rustls"]
            .iter()
            .any(|own| target.starts_with(own))
        {
            return;
        }
        self.stats.events.fetch_add(1, Ordering::Relaxed);
        let mut line = Vec::with_capacity(1024);
        self.write_line(event, &ctx, &mut line);
        if let Some(stdout) = &self.outputs.stdout {
            stdout.push(&line);
        }
        if let Some(seclog) = &self.outputs.seclog {
            seclog.push(&line);
        }
    }
}

/// Collects an event's or span's fields, redacted by name and value.
struct Visitor<'a> {
    redactor: &'a Redactor,
    message: Option<String>,
    /// The event carries OCSF members (see [`crate::event::with_emitting`]).
    ocsf: bool,
    fields: Map<String, Value>,
}

impl<'a> Visitor<'a> {
    fn new(redactor: &'a Redactor) -> Visitor<'a> {
        Visitor {
            redactor,
            message: None,
            ocsf: false,
            fields: Map::new(),
        }
    }

    fn put(&mut self, field: &Field, value: Value) {
        let name = field.name();
        let value = if self.redactor.is_secret_name(name) {
            Value::String(crate::redact::REDACTED.into())
        } else {
            value
        };
        self.fields.insert(name.to_string(), value);
    }

    /// A text field: a secret-named one replaced whole (and never formatted), any other
    /// scanned for credential-shaped values.
    fn put_text(&mut self, field: &Field, text: &dyn std::fmt::Display) {
        let name = field.name();
        let value = if self.redactor.is_secret_name(name) {
            crate::redact::REDACTED.to_string()
        } else {
            self.redactor.redact_text(&text.to_string()).into_owned()
        };
        self.fields.insert(name.to_string(), Value::String(value));
    }
}

impl Visit for Visitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "message" => self.message = Some(self.redactor.redact_text(value).into_owned()),
            _ => self.put_text(field, &value),
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        match field.name() {
            "message" => {
                let text = format!("{value:?}");
                self.message = Some(self.redactor.redact_text(&text).into_owned());
            }
            // The members are read where they are, not formatted.
            crate::event::FIELD => self.ocsf = true,
            _ => self.put_text(field, &format_args!("{value:?}")),
        }
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, value.into());
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field, value.into());
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.put(field, value.into());
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field, value.into());
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.put_text(field, &value);
    }
}
