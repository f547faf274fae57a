//! Every route of the HTTP API with the access rule that guards it: the router is built from
//! this one table, so a route cannot exist without a rule, and [`route_rules`] lets a test walk
//! them all.

use axum::Router;
use axum::http::{HeaderMap, Method};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, delete, get, post, put};
use serde::Serialize;

use crate::auth::{Denial, Guarded, guard};
use crate::error::ApiError;
use crate::{AppState, admin, elastic, firehose, hec, hunt, import, ingest, loki, otlp, search};

/// Which roles may call a route. Group scopes are checked by the handler against the groups a
/// request names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Access {
    /// No token (liveness, metrics, HEC's health check).
    Public,
    /// Any valid token.
    AnyToken,
    /// Ingest and admin tokens: append to the groups the token covers.
    Ingest,
    /// Reader, auditor and admin tokens: reads of log data, recorded in `seclog/access`.
    /// Auditors read only `seclog/access` and content-free proofs.
    Read,
    /// Auditor and admin tokens: integrity material.
    Audit,
    /// Admin tokens: tokens, retention, legal holds, the clock; recorded in `seclog/access`.
    Admin,
}

/// How a route's clients present their token and expect refusals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Dialect {
    /// seclog's API: `Authorization: Bearer`, JSON errors.
    Native,
    /// Elasticsearch: `ApiKey`, basic auth or bearer; Elasticsearch's error shape.
    Elastic,
    /// Splunk HEC: `Authorization: Splunk`; HEC's codes (an unknown token is 403).
    Hec,
    /// Loki: basic auth or bearer; plain-text errors.
    Loki,
    /// OTLP/HTTP: bearer; `google.rpc.Status`.
    Otlp,
    /// Amazon Data Firehose: `X-Amz-Firehose-Access-Key`; Firehose's error shape.
    Firehose,
}

/// One route and its rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RouteRule {
    /// HTTP method.
    #[serde(serialize_with = "method_name")]
    pub method: Method,
    /// Path pattern, as axum matches it.
    pub path: &'static str,
    /// Who may call it.
    pub access: Access,
    /// Where its credentials are and how refusals look.
    pub dialect: Dialect,
}

fn method_name<S: serde::Serializer>(method: &Method, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(method.as_str())
}

fn table() -> Vec<(RouteRule, MethodRouter<AppState>)> {
    use Access::{Admin, AnyToken, Audit, Ingest, Public, Read};
    use Dialect::{Elastic, Firehose, Hec, Loki, Native, Otlp};
    let rule = |method: Method, path: &'static str, access: Access, dialect: Dialect| RouteRule {
        method,
        path,
        access,
        dialect,
    };
    vec![
        (
            rule(Method::GET, "/healthz", Public, Native),
            get(crate::healthz),
        ),
        (
            rule(Method::GET, "/metrics", Public, Native),
            get(crate::metrics_text),
        ),
        (
            rule(Method::GET, "/", AnyToken, Elastic),
            get(elastic::info),
        ),
        (
            rule(Method::POST, "/_bulk", Ingest, Elastic),
            post(elastic::bulk),
        ),
        (
            rule(Method::PUT, "/_bulk", Ingest, Elastic),
            put(elastic::bulk),
        ),
        (
            rule(Method::POST, "/{index}/_bulk", Ingest, Elastic),
            post(elastic::bulk),
        ),
        (
            rule(Method::PUT, "/{index}/_bulk", Ingest, Elastic),
            put(elastic::bulk),
        ),
        (
            rule(Method::POST, "/api/v1/firehose", Ingest, Firehose),
            post(firehose::deliver),
        ),
        (
            rule(Method::POST, "/loki/api/v1/push", Ingest, Loki),
            post(loki::push),
        ),
        (
            rule(Method::POST, "/v1/logs", Ingest, Otlp),
            post(otlp::logs),
        ),
        (
            rule(Method::POST, "/services/collector", Ingest, Hec),
            post(hec::event),
        ),
        (
            rule(Method::POST, "/services/collector/event", Ingest, Hec),
            post(hec::event),
        ),
        (
            rule(Method::POST, "/services/collector/event/1.0", Ingest, Hec),
            post(hec::event),
        ),
        (
            rule(Method::POST, "/services/collector/raw", Ingest, Hec),
            post(hec::raw),
        ),
        (
            rule(Method::POST, "/services/collector/raw/1.0", Ingest, Hec),
            post(hec::raw),
        ),
        (
            rule(Method::GET, "/services/collector/health", Public, Hec),
            get(hec::health),
        ),
        (
            rule(Method::GET, "/services/collector/health/1.0", Public, Hec),
            get(hec::health),
        ),
        (
            rule(Method::POST, "/api/v1/ingest/{*group}", Ingest, Native),
            post(ingest::ingest),
        ),
        (
            rule(Method::POST, "/api/v1/import", Ingest, Native),
            post(import::import),
        ),
        (
            rule(Method::GET, "/api/v1/status", AnyToken, Native),
            get(crate::status),
        ),
        (
            rule(Method::GET, "/api/v1/alerts", Read, Native),
            get(crate::alerts_list),
        ),
        (
            rule(Method::GET, "/api/v1/checkpoint", Audit, Native),
            get(crate::checkpoint),
        ),
        (
            rule(Method::PUT, "/api/v1/retention/{*group}", Admin, Native),
            put(admin::set_retention),
        ),
        (
            rule(Method::GET, "/api/v1/retention", Admin, Native),
            get(admin::list_retention),
        ),
        (
            rule(Method::PUT, "/api/v1/holds/{*group}", Admin, Native),
            put(admin::place_hold),
        ),
        (
            rule(Method::DELETE, "/api/v1/holds/{*group}", Admin, Native),
            delete(admin::release_hold),
        ),
        (
            rule(Method::GET, "/api/v1/clock", Audit, Native),
            get(admin::clock),
        ),
        (
            rule(Method::POST, "/api/v1/clock", Admin, Native),
            post(admin::confirm_clock),
        ),
        (
            rule(Method::POST, "/api/v1/tokens", Admin, Native),
            post(admin::create_token),
        ),
        (
            rule(Method::GET, "/api/v1/tokens", Admin, Native),
            get(admin::list_tokens),
        ),
        (
            rule(Method::DELETE, "/api/v1/tokens/{id}", Admin, Native),
            delete(admin::revoke_token),
        ),
        (
            rule(Method::POST, "/api/v1/query", Read, Native),
            post(search::query),
        ),
        (
            rule(Method::POST, "/api/v1/query/histogram", Read, Native),
            post(search::histogram),
        ),
        (
            rule(Method::POST, "/api/v1/hunt", Read, Native),
            post(hunt::hunt),
        ),
        (
            rule(Method::GET, "/api/v1/groups/{*rest}", Read, Native),
            get(search::group_route),
        ),
    ]
}

/// Every route with its rule, in the router's order.
pub fn route_rules() -> Vec<RouteRule> {
    table().into_iter().map(|(rule, _)| rule).collect()
}

/// Builds the router: each route's handler behind [`guard`] with its rule.
pub(crate) fn router(state: AppState) -> Router {
    let mut router = Router::new();
    for (rule, handler) in table() {
        let path = rule.path;
        let guarded = Guarded {
            state: state.clone(),
            rule,
        };
        router = router.route(
            path,
            handler.layer(middleware::from_fn_with_state(guarded, guard)),
        );
    }
    router.fallback(crate::not_found).with_state(state)
}

/// A refused request in `dialect`'s shape.
pub(crate) fn denial(rule: &RouteRule, headers: &HeaderMap, denial: Denial) -> Response {
    let access = rule.access;
    match rule.dialect {
        Dialect::Native => match denial {
            Denial::Missing | Denial::Invalid => ApiError::unauthorized(),
            Denial::Forbidden => {
                ApiError::forbidden(format!("this endpoint is for {} tokens", access.roles()))
            }
            Denial::Throttled(seconds) => ApiError::throttled(seconds),
            Denial::Unavailable => ApiError::unavailable("authentication is unavailable", 1),
        }
        .into_response(),
        Dialect::Elastic => elastic::denial(denial),
        Dialect::Hec => hec::denial(denial),
        Dialect::Loki => loki::denial(denial),
        Dialect::Otlp => otlp::denial(headers, denial),
        Dialect::Firehose => firehose::denial(headers, denial),
    }
}
