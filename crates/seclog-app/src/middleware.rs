//! The tower/axum middleware: a correlation id and trace context per request, the client's
//! address (forwarding headers believed only from trusted proxies), one request log per
//! request, and the request context for every event logged while it is handled.
//!
//! ```no_run
//! use axum::{Router, routing::get};
//! use seclog_app::middleware::RequestLogLayer;
//! let app: Router = Router::new()
//!     .route("/records/{id}", get(|| async { "ok" }))
//!     .layer(RequestLogLayer::new().trust_proxies(["10.0.0.0/8"]).unwrap());
//! ```
//! The router must be served with `into_make_service_with_connect_info::<SocketAddr>()` for
//! the socket address to be known.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::str::FromStr;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::extract::{ConnectInfo, MatchedPath};
use axum::http::{HeaderMap, HeaderValue, Request, Response};
use ipnet::IpNet;

use crate::context::{Fixed, RequestContext};

/// Which header trusted proxies record the client in.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum ForwardingHeader {
    /// `X-Forwarded-For` (nginx, HAProxy, AWS load balancers, most proxies).
    #[default]
    XForwardedFor,
    /// RFC 7239 `Forwarded: for=…`.
    Forwarded,
}

/// The middleware's layer.
#[derive(Debug, Clone, Default)]
pub struct RequestLogLayer {
    trusted: Arc<Proxies>,
}

/// Trusted proxies and the one header they write.
#[derive(Debug, Default)]
struct Proxies {
    networks: Vec<IpNet>,
    header: ForwardingHeader,
}

impl RequestLogLayer {
    /// No trusted proxies: the client is the socket's peer, forwarding headers are ignored.
    pub fn new() -> RequestLogLayer {
        RequestLogLayer::default()
    }

    /// Believes `Forwarded` and `X-Forwarded-For` from peers in these networks (`10.0.0.0/8`,
    /// `127.0.0.1`, `::1`).
    pub fn trust_proxies<I, S>(mut self, networks: I) -> Result<RequestLogLayer, crate::Error>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut trusted = Vec::new();
        for network in networks {
            let text = network.as_ref().trim();
            let parsed = IpNet::from_str(text)
                .or_else(|_| IpAddr::from_str(text).map(IpNet::from))
                .map_err(|_| {
                    crate::Error::Config(format!("{text:?} is not an address or network"))
                })?;
            trusted.push(parsed);
        }
        self.trusted = Arc::new(Proxies {
            networks: trusted,
            header: self.trusted.header,
        });
        Ok(self)
    }

    /// The header the trusted proxies write (default `X-Forwarded-For`). Only that one is
    /// read: the other is whatever the client sent, passed through by the proxy.
    #[must_use]
    pub fn forwarding_header(mut self, header: ForwardingHeader) -> RequestLogLayer {
        self.trusted = Arc::new(Proxies {
            networks: self.trusted.networks.clone(),
            header,
        });
        self
    }
}

impl<S> tower::Layer<S> for RequestLogLayer {
    type Service = RequestLog<S>;

    fn layer(&self, inner: S) -> RequestLog<S> {
        RequestLog {
            inner,
            trusted: Arc::clone(&self.trusted),
        }
    }
}

/// The middleware's service.
#[derive(Debug, Clone)]
pub struct RequestLog<S> {
    inner: S,
    trusted: Arc<Proxies>,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S, B, R> tower::Service<Request<B>> for RequestLog<S>
where
    S: tower::Service<Request<B>, Response = Response<R>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: http_body::Body + Send + 'static,
    R: http_body::Body,
{
    type Response = Response<R>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Response<R>, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        let started = Instant::now();
        let fixed = request_context(&request, &self.trusted);
        let response_headers = trace_headers(&fixed);
        let method = fixed.method.clone();
        let route = fixed.route.clone();
        let request_bytes = content_length(request.headers())
            .or_else(|| http_body::Body::size_hint(request.body()).exact());
        let context = RequestContext::new(fixed);
        request.extensions_mut().insert(context.clone());
        // The service that was made ready is the one called; a fresh clone takes its place.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        Box::pin(context.scope(async move {
            let mut result = inner.call(request).await;
            if let Ok(response) = &mut result {
                for (name, value) in response_headers {
                    response.headers_mut().insert(name, value);
                }
                let status = response.status().as_u16();
                let response_bytes = content_length(response.headers())
                    .or_else(|| http_body::Body::size_hint(response.body()).exact());
                log_request(&RequestSummary {
                    method: &method,
                    route: route.as_deref(),
                    status,
                    duration: started.elapsed(),
                    request_bytes,
                    response_bytes,
                });
            }
            result
        }))
    }
}

struct RequestSummary<'a> {
    method: &'a str,
    route: Option<&'a str>,
    status: u16,
    duration: std::time::Duration,
    request_bytes: Option<u64>,
    response_bytes: Option<u64>,
}

/// One OCSF HTTP Activity (4002) line per request.
fn log_request(summary: &RequestSummary<'_>) {
    let activity = seclog_model::ocsf::http_activity(summary.method);
    let failed = summary.status >= 400;
    let (status_id, status_name) = if failed {
        (2, "Failure")
    } else {
        (1, "Success")
    };
    let optional = |value: Option<u64>| value.map_or_else(|| "null".to_string(), |n| n.to_string());
    // Every value here is a number or a fixed word: rendered directly, nothing to redact.
    let members = format!(
        "\"class_uid\":4002,\"class_name\":\"HTTP Activity\",\"category_uid\":4,\
         \"category_name\":\"Network Activity\",\"activity_id\":{},\"activity_name\":\"{}\",\
         \"type_uid\":{},\"severity_id\":1,\"severity\":\"Informational\",\
         \"status_id\":{status_id},\"status\":\"{status_name}\",\
         \"http_response\":{{\"code\":{},\"length\":{}}},\"http_request_length\":{},\
         \"duration\":{:.3}",
        activity.0,
        activity.1,
        400_200 + activity.0,
        summary.status,
        optional(summary.response_bytes),
        optional(summary.request_bytes),
        summary.duration.as_secs_f64() * 1000.0,
    );
    let route = summary.route.unwrap_or("(no route)");
    let status = summary.status;
    let level = if status >= 500 {
        tracing::Level::WARN
    } else {
        tracing::Level::INFO
    };
    let message = format!("{} {route} {status}", summary.method);
    crate::event::emit_body(
        crate::event::Target::Http,
        level,
        &message,
        crate::event::Emitting::Rendered(members),
    );
}

fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(axum::http::header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

fn request_context<B>(request: &Request<B>, trusted: &Proxies) -> Fixed {
    let headers = request.headers();
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|info| info.0.ip().to_canonical());
    let parent = headers
        .get("traceparent")
        .and_then(|value| value.to_str().ok())
        .and_then(parse_traceparent);
    let trace_id = parent
        .as_ref()
        .map_or_else(|| random_hex(16), |parent| parent.trace_id.clone());
    let request_id = headers
        .get("x-request-id")
        .and_then(|value| value.to_str().ok())
        .map(str::trim)
        .filter(|id| valid_request_id(id));
    let correlation_id = match (request_id, &parent) {
        (Some(id), _) => id.to_string(),
        (None, Some(parent)) => parent.trace_id.clone(),
        (None, None) => uuid_v7(),
    };
    let user_agent = headers
        .get(axum::http::header::USER_AGENT)
        .and_then(|value| value.to_str().ok())
        .map(|agent| {
            // Header values that are `str` are visible ASCII: any byte is a boundary.
            agent
                .get(..agent.len().min(512))
                .unwrap_or(agent)
                .to_string()
        });
    Fixed {
        correlation_id,
        trace_id,
        span_id: random_hex(8),
        parent_span_id: parent.map(|parent| parent.span_id),
        client_ip: peer.map(|peer| client_ip(peer, headers, &trusted.networks, trusted.header)),
        peer_ip: peer,
        user_agent,
        method: request.method().as_str().to_string(),
        route: request
            .extensions()
            .get::<MatchedPath>()
            .map(|path| path.as_str().to_string()),
    }
}

fn trace_headers(fixed: &Fixed) -> Vec<(&'static str, HeaderValue)> {
    let mut headers = Vec::new();
    if let Ok(value) = HeaderValue::from_str(&fixed.correlation_id) {
        headers.push(("x-request-id", value));
    }
    let traceparent = format!("00-{}-{}-01", fixed.trace_id, fixed.span_id);
    if let Ok(value) = HeaderValue::from_str(&traceparent) {
        headers.push(("traceparent", value));
    }
    headers
}

/// Request ids are taken as given when they are 1-128 letters, digits, `.`, `_`, `:` or `-`
/// (nothing that could forge a log line or a JSON member).
fn valid_request_id(id: &str) -> bool {
    (1..=128).contains(&id.len())
        && id
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || b"._:-".contains(&byte))
}

struct TraceParent {
    trace_id: String,
    span_id: String,
}

/// W3C Trace Context `traceparent`: `00-<32 hex trace id>-<16 hex span id>-<2 hex flags>`.
fn parse_traceparent(text: &str) -> Option<TraceParent> {
    let mut parts = text.trim().split('-');
    let (version, trace_id, span_id, flags) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let hex = |part: &str, len: usize| {
        part.len() == len
            && part
                .bytes()
                .all(|byte| byte.is_ascii_digit() || (b'a'..=b'f').contains(&byte))
    };
    let valid = hex(version, 2)
        && version != "ff"
        && (version != "00" || parts.next().is_none())
        && hex(trace_id, 32)
        && trace_id.bytes().any(|byte| byte != b'0')
        && hex(span_id, 16)
        && span_id.bytes().any(|byte| byte != b'0')
        && hex(flags, 2);
    valid.then(|| TraceParent {
        trace_id: trace_id.to_string(),
        span_id: span_id.to_string(),
    })
}

/// A UUIDv7 (time-ordered) from the clock and the thread's fast generator (no system call).
fn uuid_v7() -> String {
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_millis() as u64);
    let random = fastrand::u128(..).to_be_bytes();
    let mut tail = [0u8; 10];
    tail.copy_from_slice(&random[..10]);
    uuid::Builder::from_unix_timestamp_millis(millis, &tail)
        .into_uuid()
        .to_string()
}

/// A W3C trace id (16 random bytes) or span id (8), in lower-case hex; never all zero.
fn random_hex(bytes: usize) -> String {
    let value = fastrand::u128(1..).to_be_bytes();
    hex::encode(&value[16 - bytes.min(16)..])
}

/// The client: the peer, unless the peer is a trusted proxy; then the forwarding chain is
/// walked from the right (the hop nearest to us) past trusted proxies, and the first address
/// not trusted is the client. Headers from untrusted peers are ignored entirely, so a client
/// cannot name its own address.
pub fn client_ip(
    peer: IpAddr,
    headers: &HeaderMap,
    trusted: &[IpNet],
    header: ForwardingHeader,
) -> IpAddr {
    // `::ffff:10.0.0.5` (a dual-stack listener) is 10.0.0.5.
    let peer = peer.to_canonical();
    let is_trusted = |address: &IpAddr| trusted.iter().any(|network| network.contains(address));
    if !is_trusted(&peer) {
        return peer;
    }
    let chain = forwarded_chain(headers, header);
    let mut client = peer;
    for hop in chain.iter().rev() {
        match hop {
            Some(address) => {
                client = *address;
                if !is_trusted(address) {
                    return client;
                }
            }
            // An obfuscated or malformed hop: nothing to its left can be checked.
            None => return client,
        }
    }
    client
}

/// The addresses of the chosen forwarding header, left to right, over all its lines; `None`
/// for a hop that is not an address.
fn forwarded_chain(headers: &HeaderMap, header: ForwardingHeader) -> Vec<Option<IpAddr>> {
    match header {
        ForwardingHeader::Forwarded => headers
            .get_all(axum::http::header::FORWARDED)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|line| line.split(','))
            .map(|element| {
                element
                    .split(';')
                    .find_map(|pair| {
                        let (name, value) = pair.split_once('=')?;
                        name.trim()
                            .eq_ignore_ascii_case("for")
                            .then(|| parse_node(value.trim().trim_matches('"')))
                    })
                    .flatten()
            })
            .collect(),
        ForwardingHeader::XForwardedFor => headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|line| line.split(','))
            .map(|hop| parse_node(hop.trim()))
            .collect(),
    }
}

/// `192.0.2.1`, `192.0.2.1:443`, `[2001:db8::1]:443`, `2001:db8::1`.
fn parse_node(text: &str) -> Option<IpAddr> {
    let address = if let Ok(address) = IpAddr::from_str(text) {
        address
    } else if let Some(rest) = text.strip_prefix('[') {
        IpAddr::from_str(rest.split(']').next()?).ok()?
    } else {
        SocketAddr::from_str(text).ok()?.ip()
    };
    Some(address.to_canonical())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                axum::http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        map
    }

    #[test]
    fn forwarding_headers_count_only_from_trusted_proxies() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let proxy: IpAddr = "10.0.0.5".parse().unwrap();
        let stranger: IpAddr = "198.51.100.7".parse().unwrap();
        let xff = ForwardingHeader::XForwardedFor;
        let spoofed = headers(&[("x-forwarded-for", "1.2.3.4")]);
        assert_eq!(client_ip(stranger, &spoofed, &trusted, xff), stranger);
        let via_proxy = headers(&[("x-forwarded-for", "1.2.3.4, 203.0.113.9, 10.0.0.9")]);
        assert_eq!(
            client_ip(proxy, &via_proxy, &trusted, xff),
            "203.0.113.9".parse::<IpAddr>().unwrap()
        );
        let forwarded = headers(&[(
            "forwarded",
            "for=192.0.2.60;proto=http, for=\"[2001:db8:cafe::17]:4711\"",
        )]);
        let rfc = ForwardingHeader::Forwarded;
        assert_eq!(
            client_ip(proxy, &forwarded, &trusted, rfc),
            "2001:db8:cafe::17".parse::<IpAddr>().unwrap()
        );
        // A proxy that writes X-Forwarded-For passes the client's own Forwarded through:
        // it is not read.
        let forged = headers(&[
            ("forwarded", "for=6.6.6.6"),
            ("x-forwarded-for", "203.0.113.9"),
        ]);
        assert_eq!(
            client_ip(proxy, &forged, &trusted, xff),
            "203.0.113.9".parse::<IpAddr>().unwrap()
        );
        let hidden = headers(&[("forwarded", "for=192.0.2.60, for=_hidden, for=10.1.1.1")]);
        assert_eq!(
            client_ip(proxy, &hidden, &trusted, rfc),
            "10.1.1.1".parse::<IpAddr>().unwrap()
        );
        assert_eq!(client_ip(proxy, &HeaderMap::new(), &trusted, xff), proxy);
        // Dual-stack listeners see IPv4 peers as mapped IPv6 addresses.
        let mapped: IpAddr = "::ffff:10.0.0.5".parse().unwrap();
        assert_eq!(
            client_ip(mapped, &via_proxy, &trusted, xff),
            "203.0.113.9".parse::<IpAddr>().unwrap()
        );
        let mapped_hops = headers(&[("x-forwarded-for", "::ffff:198.51.100.3")]);
        assert_eq!(
            client_ip(proxy, &mapped_hops, &trusted, xff),
            "198.51.100.3".parse::<IpAddr>().unwrap()
        );
    }

    #[test]
    fn traceparent_and_request_ids_are_validated() {
        let parent =
            parse_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").unwrap();
        assert_eq!(parent.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
        assert!(
            parse_traceparent("00-00000000000000000000000000000000-00f067aa0ba902b7-01").is_none()
        );
        assert!(
            parse_traceparent("ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").is_none()
        );
        assert!(
            parse_traceparent("00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01").is_none()
        );
        assert!(valid_request_id("req-42.a:b_c"));
        assert!(!valid_request_id("x\"}, {\"admin\": true"));
        assert!(!valid_request_id(&"a".repeat(129)));
    }
}
