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
    service: Map<String, Value>,
    redactor: Redactor,
    outputs: Outputs,
    stats: Arc<Stats>,
}

/// Fields recorded on a span, kept in its extensions.
struct SpanFields(Map<String, Value>);

impl JsonLayer {
    pub(crate) fn new(
        service: &crate::Service,
        redactor: Redactor,
        outputs: Outputs,
        stats: Arc<Stats>,
    ) -> JsonLayer {
        let mut members = Map::new();
        members.insert("name".into(), service.name.clone().into());
        members.insert("version".into(), service.version.clone().into());
        members.insert("host".into(), service.host.clone().into());
        JsonLayer {
            service: members,
            redactor,
            outputs,
            stats,
        }
    }

    /// The JSON line of one event (without the trailing newline).
    fn line<S>(&self, event: &Event<'_>, ctx: &Context<'_, S>) -> Map<String, Value>
    where
        S: Subscriber + for<'lookup> LookupSpan<'lookup>,
    {
        let metadata = event.metadata();
        let mut visitor = Visitor::new(&self.redactor);
        event.record(&mut visitor);
        let mut line = Map::new();
        line.insert(
            "timestamp".into(),
            seclog_model::Timestamp::now().to_rfc3339().into(),
        );
        line.insert("level".into(), metadata.level().as_str().into());
        line.insert("target".into(), metadata.target().into());
        if let Some(message) = visitor.message.take() {
            line.insert("message".into(), message.into());
        }
        line.insert("service".into(), Value::Object(self.service.clone()));
        if let Some(context) = crate::context::current() {
            add_context(&mut line, &context);
        }
        let mut fields = Map::new();
        if let Some(scope) = ctx.event_scope(event) {
            for span in scope.from_root() {
                if let Some(SpanFields(members)) = span.extensions().get::<SpanFields>() {
                    fields.extend(members.clone());
                }
            }
        }
        fields.extend(std::mem::take(&mut visitor.fields));
        if !fields.is_empty() {
            line.insert("fields".into(), Value::Object(fields));
        }
        if let Some(Value::Object(mut security)) = visitor.security.take() {
            // The event's own OCSF members; the context's members stay where both exist.
            let mut members = Map::new();
            std::mem::swap(&mut members, &mut security);
            for (name, value) in members {
                line.entry(name).or_insert(value);
            }
            let correlation = line.get("correlation_id").cloned();
            let metadata = line
                .entry("metadata")
                .or_insert_with(|| Value::Object(Map::new()));
            if let Value::Object(metadata) = metadata {
                metadata.insert("version".into(), crate::event::OCSF_VERSION.into());
                metadata.insert(
                    "product".into(),
                    serde_json::json!({
                        "name": self.service.get("name"),
                        "version": self.service.get("version"),
                        "vendor_name": "seclog-app",
                    }),
                );
                if let Some(correlation) = correlation {
                    metadata.insert("correlation_uid".into(), correlation);
                }
            }
            line.insert(
                "time".into(),
                (seclog_model::Timestamp::now().unix_nanos() / 1_000_000).into(),
            );
        }
        // Whatever a field held, nothing credential-shaped leaves the process.
        let mut value = Value::Object(line);
        self.redactor.redact_json(&mut value);
        match value {
            Value::Object(line) => line,
            _ => Map::new(),
        }
    }
}

fn add_context(line: &mut Map<String, Value>, context: &crate::context::RequestContext) {
    let fixed = context.fixed();
    line.insert("correlation_id".into(), fixed.correlation_id.clone().into());
    line.insert("trace_id".into(), fixed.trace_id.clone().into());
    line.insert("span_id".into(), fixed.span_id.clone().into());
    if let Some(ip) = fixed.client_ip {
        line.insert(
            "src_endpoint".into(),
            serde_json::json!({ "ip": ip.to_string() }),
        );
    }
    let mut request = Map::new();
    request.insert("http_method".into(), fixed.method.clone().into());
    if let Some(route) = &fixed.route {
        request.insert("url".into(), serde_json::json!({ "path": route }));
    }
    if let Some(agent) = &fixed.user_agent {
        request.insert("user_agent".into(), agent.clone().into());
    }
    request.insert("uid".into(), fixed.correlation_id.clone().into());
    line.insert("http_request".into(), Value::Object(request));
    let identity = context.identity();
    if identity.user.is_some() || identity.session.is_some() {
        let mut actor = Map::new();
        if let Some(user) = identity.user {
            actor.insert("user".into(), serde_json::json!({ "name": user }));
        }
        if let Some(session) = identity.session {
            actor.insert("session".into(), serde_json::json!({ "uid": session }));
        }
        line.insert("actor".into(), Value::Object(actor));
    }
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
        let line = self.line(event, &ctx);
        let mut bytes = serde_json::to_vec(&Value::Object(line)).unwrap_or_default();
        bytes.push(b'\n');
        match (&self.outputs.stdout, &self.outputs.seclog) {
            (Some(stdout), Some(seclog)) => {
                stdout.push(bytes.clone());
                seclog.push(bytes);
            }
            (Some(stdout), None) => stdout.push(bytes),
            (None, Some(seclog)) => seclog.push(bytes),
            (None, None) => {}
        }
    }
}

/// Collects an event's or span's fields, redacted by name and value.
struct Visitor<'a> {
    redactor: &'a Redactor,
    message: Option<String>,
    security: Option<Value>,
    fields: Map<String, Value>,
}

impl<'a> Visitor<'a> {
    fn new(redactor: &'a Redactor) -> Visitor<'a> {
        Visitor {
            redactor,
            message: None,
            security: None,
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
}

impl Visit for Visitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "message" => self.message = Some(self.redactor.redact_text(value).into_owned()),
            name => {
                let text = self.redactor.redact_field(name, value).into_owned();
                self.put(field, Value::String(text));
            }
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let text = format!("{value:?}");
        match field.name() {
            "message" => self.message = Some(self.redactor.redact_text(&text).into_owned()),
            crate::event::FIELD => {
                self.security = serde_json::from_str(&text).ok();
            }
            name => {
                let text = self.redactor.redact_field(name, &text).into_owned();
                self.put(field, Value::String(text));
            }
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
        let text = self.redactor.redact_text(&value.to_string()).into_owned();
        self.put(field, Value::String(text));
    }
}
