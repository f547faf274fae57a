//! The one gate every route passes: who is calling, whether their role may call the route, and
//! a slower answer for sources that keep presenting wrong credentials.
//!
//! [`crate::routes`] wraps each route's handler in [`guard`] with the route's [`Access`] rule.
//! The guard takes the token from where that route's clients send it (its [`Dialect`]), looks
//! it up in constant time ([`seclog_meta::MetaStore::authenticate`]), refuses roles the rule
//! does not name, and hands the handler a [`Caller`]; handlers then check group scopes against
//! what each request names. Every refusal (401 or 403, from the guard or the handler) is
//! recorded in `seclog/access` before it is answered, and wrong credentials count against
//! their source address ([`Throttle`]).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use seclog_meta::{Role, TokenInfo};
use serde_json::{Value as Json, json};

use crate::AppState;
use crate::protocol::{Scheme, presented_token};
use crate::routes::{Access, Dialect, RouteRule};

/// Who is calling: the token's description and the connection's address.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The token (never its secret).
    pub token: TokenInfo,
    /// The peer address of the connection.
    pub peer: IpAddr,
}

impl Caller {
    /// The `actor` of this caller's access records.
    pub(crate) fn actor(&self) -> Json {
        json!({
            "token": self.token.id,
            "role": self.token.role.name(),
            "src_ip": self.peer.to_string(),
        })
    }
}

/// Why a request was refused, for the reply in the route's dialect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Denial {
    /// No credentials in the form this route accepts.
    Missing,
    /// Credentials that match no live token.
    Invalid,
    /// A valid token whose role may not call this route.
    Forbidden,
    /// Too many wrong credentials from this source lately; try again after this many seconds.
    Throttled(u64),
    /// The token store failed.
    Unavailable,
}

/// How failed authentications slow their source down.
#[derive(Debug, Clone, Copy)]
pub struct AuthSettings {
    /// Wrong credentials a source may present before its requests are delayed.
    pub free_failures: u32,
    /// A source's failures are forgotten this long after its last one.
    pub window: Duration,
    /// The first delay; each further failure doubles it, up to `max_delay`.
    pub first_delay: Duration,
    /// The longest delay.
    pub max_delay: Duration,
    /// Requests of one penalized source that may wait at once; more are refused with 429.
    pub max_waiting: u32,
}

impl Default for AuthSettings {
    fn default() -> Self {
        AuthSettings {
            free_failures: 5,
            window: Duration::from_secs(300),
            first_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(8),
            max_waiting: 4,
        }
    }
}

#[derive(Debug)]
struct Penalty {
    failures: u32,
    last_failure: Instant,
    waiting: u32,
}

/// Wrong-credential counts per source address.
#[derive(Debug, Default)]
pub(crate) struct Throttle {
    settings: AuthSettings,
    sources: Mutex<HashMap<IpAddr, Penalty>>,
}

/// Sources remembered at most; beyond this the ones whose window has passed are forgotten.
const MAX_SOURCES: usize = 100_000;

impl Throttle {
    pub(crate) fn new(settings: AuthSettings) -> Self {
        Throttle {
            settings,
            sources: Mutex::default(),
        }
    }

    /// How long a request from `source` waits before its credentials are checked; `Err` with
    /// seconds to wait when too many of its requests wait already. A waiting slot is taken
    /// and must be given back with [`Throttle::done_waiting`].
    fn admit(&self, source: IpAddr) -> Result<Duration, u64> {
        let Ok(mut sources) = self.sources.lock() else {
            return Ok(Duration::ZERO);
        };
        let Some(penalty) = sources.get_mut(&source) else {
            return Ok(Duration::ZERO);
        };
        if penalty.last_failure.elapsed() > self.settings.window {
            sources.remove(&source);
            return Ok(Duration::ZERO);
        }
        let delay = self.delay(penalty.failures);
        if delay.is_zero() {
            return Ok(delay);
        }
        if penalty.waiting >= self.settings.max_waiting {
            return Err(delay.as_secs().max(1));
        }
        penalty.waiting += 1;
        Ok(delay)
    }

    fn done_waiting(&self, source: IpAddr) {
        if let Ok(mut sources) = self.sources.lock()
            && let Some(penalty) = sources.get_mut(&source)
        {
            penalty.waiting = penalty.waiting.saturating_sub(1);
        }
    }

    fn delay(&self, failures: u32) -> Duration {
        let Some(over) = failures.checked_sub(self.settings.free_failures) else {
            return Duration::ZERO;
        };
        self.settings
            .first_delay
            .saturating_mul(1u32 << over.min(20))
            .min(self.settings.max_delay)
    }

    /// Counts a wrong credential from `source`; returns its failures in the current window.
    fn failed(&self, source: IpAddr) -> u32 {
        let Ok(mut sources) = self.sources.lock() else {
            return 0;
        };
        if sources.len() >= MAX_SOURCES {
            let window = self.settings.window;
            sources.retain(|_, penalty| penalty.last_failure.elapsed() <= window);
            if sources.len() >= MAX_SOURCES {
                // Still full of fresh failures: an attack from very many addresses. Keep
                // counting the new source by dropping an arbitrary one.
                if let Some(key) = sources.keys().next().copied() {
                    sources.remove(&key);
                }
            }
        }
        let penalty = sources.entry(source).or_insert(Penalty {
            failures: 0,
            last_failure: Instant::now(),
            waiting: 0,
        });
        if penalty.last_failure.elapsed() > self.settings.window {
            penalty.failures = 0;
        }
        penalty.failures += 1;
        penalty.last_failure = Instant::now();
        penalty.failures
    }
}

/// The credential a route's clients present, in the forms its protocol uses.
fn credential(dialect: Dialect, headers: &HeaderMap) -> Option<String> {
    match dialect {
        Dialect::Native | Dialect::Otlp => presented_token(headers, &[Scheme::Bearer]),
        Dialect::Elastic => {
            presented_token(headers, &[Scheme::ApiKey, Scheme::Basic, Scheme::Bearer])
        }
        Dialect::Hec => presented_token(headers, &[Scheme::Splunk, Scheme::Bearer, Scheme::Basic]),
        Dialect::Loki => presented_token(headers, &[Scheme::Basic, Scheme::Bearer]),
        Dialect::Firehose => headers
            .get("x-amz-firehose-access-key")
            .and_then(|value| value.to_str().ok())
            .map(|key| key.trim().to_string()),
    }
}

/// The route's rule and the state the guard needs.
#[derive(Clone)]
pub(crate) struct Guarded {
    pub(crate) state: AppState,
    pub(crate) rule: RouteRule,
}

/// Authenticates and authorizes a request for its route (see the module documentation).
pub(crate) async fn guard(
    State(guarded): State<Guarded>,
    mut request: Request,
    next: Next,
) -> Response {
    let Guarded { state, rule } = guarded;
    if rule.access == Access::Public {
        return next.run(request).await;
    }
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |info| info.0.ip());
    let target = format!("{} {}", request.method(), request.uri().path());
    let Some(presented) = credential(rule.dialect, request.headers()) else {
        let denial = failed_authentication(
            &state,
            peer,
            &target,
            "missing credentials",
            Denial::Missing,
        )
        .await;
        return crate::routes::denial(&rule, request.headers(), denial);
    };
    // Valid tokens are never slowed; answers to wrong ones are, per source.
    let token = match state.meta.authenticate(&presented) {
        Ok(Some(token)) => token,
        Ok(None) => {
            let denial = failed_authentication(
                &state,
                peer,
                &target,
                "unknown, revoked or expired token",
                Denial::Invalid,
            )
            .await;
            return crate::routes::denial(&rule, request.headers(), denial);
        }
        Err(error) => {
            tracing::error!(error = %error, "token lookup failed");
            return crate::routes::denial(&rule, request.headers(), Denial::Unavailable);
        }
    };
    let caller = Caller { token, peer };
    if !rule.access.allows(caller.token.role) {
        refused(
            &state,
            Some(&caller),
            peer,
            &target,
            "authorize",
            &format!(
                "the {} role may not call this route",
                caller.token.role.name()
            ),
        )
        .await;
        return crate::routes::denial(&rule, request.headers(), Denial::Forbidden);
    }
    request.extensions_mut().insert(caller.clone());
    let response = next.run(request).await;
    if matches!(
        response.status(),
        StatusCode::FORBIDDEN | StatusCode::UNAUTHORIZED
    ) {
        refused(
            &state,
            Some(&caller),
            peer,
            &target,
            "authorize",
            "outside the token's groups or role",
        )
        .await;
    }
    response
}

/// A failed authentication: slowed per source, recorded, and the refusal to answer with.
async fn failed_authentication(
    state: &AppState,
    peer: IpAddr,
    target: &str,
    reason: &str,
    denial: Denial,
) -> Denial {
    match slow_down(state, peer).await {
        Ok(()) => {
            refused(state, None, peer, target, "authenticate", reason).await;
            denial
        }
        Err(retry_after) => {
            refused(
                state,
                None,
                peer,
                target,
                "authenticate",
                "throttled after repeated failures",
            )
            .await;
            Denial::Throttled(retry_after)
        }
    }
}

/// Counts a failed authentication from `peer` and waits as long as its earlier failures say;
/// `Err` with seconds to retry after when too many of its answers wait already.
async fn slow_down(state: &AppState, peer: IpAddr) -> Result<(), u64> {
    let delay = state.throttle.admit(peer);
    let failures = state.throttle.failed(peer);
    if failures == state.throttle.settings.free_failures + 1 {
        tracing::warn!(source = %peer, failures, "repeated authentication failures; answers to this source are slowed");
    }
    let delay = delay?;
    if !delay.is_zero() {
        // The waiting slot is given back however the wait ends (a client that hangs up
        // cancels this future).
        let _slot = WaitSlot {
            throttle: &state.throttle,
            peer,
        };
        tokio::time::sleep(delay).await;
    }
    Ok(())
}

/// A source's place among the answers waiting to be slowed.
struct WaitSlot<'a> {
    throttle: &'a Throttle,
    peer: IpAddr,
}

impl Drop for WaitSlot<'_> {
    fn drop(&mut self) {
        self.throttle.done_waiting(self.peer);
    }
}

/// Records a refused request in `seclog/access` (logged if that fails: the refusal stands).
async fn refused(
    state: &AppState,
    caller: Option<&Caller>,
    peer: IpAddr,
    target: &str,
    action: &str,
    reason: &str,
) {
    let actor = caller.map_or_else(|| json!({ "src_ip": peer.to_string() }), Caller::actor);
    // The path is the client's choice: only its start is kept.
    let target: String = target.chars().take(256).collect();
    let entry = json!({
        "action": action,
        "status": "denied",
        "reason": reason,
        "request": target,
        "src_ip": peer.to_string(),
    });
    if let Err(error) = crate::access::store(state, entry, actor).await {
        tracing::error!(error = %error.message, "recording a refused request failed");
    }
}

impl Access {
    /// The roles this rule admits, in words.
    pub fn roles(self) -> &'static str {
        match self {
            Access::Public => "all",
            Access::AnyToken => "any",
            Access::Ingest => "ingest and admin",
            Access::Read => "reader, auditor and admin",
            Access::Audit => "auditor and admin",
            Access::Admin => "admin",
        }
    }

    /// True if a token of `role` may call a route with this rule.
    pub fn allows(self, role: Role) -> bool {
        match self {
            Access::Public | Access::AnyToken => true,
            Access::Ingest => matches!(role, Role::Ingest | Role::Admin),
            Access::Read => matches!(role, Role::Reader | Role::Auditor | Role::Admin),
            Access::Audit => matches!(role, Role::Auditor | Role::Admin),
            Access::Admin => role == Role::Admin,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_after_the_free_failures_up_to_the_cap() {
        let throttle = Throttle::new(AuthSettings::default());
        let source: IpAddr = "192.0.2.7".parse().unwrap();
        let other: IpAddr = "192.0.2.8".parse().unwrap();
        for _ in 0..4 {
            throttle.failed(source);
        }
        assert_eq!(throttle.admit(source), Ok(Duration::ZERO));
        throttle.failed(source);
        assert_eq!(throttle.admit(source), Ok(Duration::from_millis(250)));
        throttle.done_waiting(source);
        throttle.failed(source);
        assert_eq!(throttle.admit(source), Ok(Duration::from_millis(500)));
        throttle.done_waiting(source);
        for _ in 0..30 {
            throttle.failed(source);
        }
        assert_eq!(throttle.admit(source), Ok(Duration::from_secs(8)));
        assert_eq!(
            throttle.admit(other),
            Ok(Duration::ZERO),
            "other sources unaffected"
        );
        // Three more wait at once: the fifth is refused outright.
        for _ in 0..3 {
            assert!(throttle.admit(source).is_ok());
        }
        assert_eq!(throttle.admit(source), Err(8));
        throttle.done_waiting(source);
        assert!(throttle.admit(source).is_ok());
    }

    #[test]
    fn failures_are_forgotten_after_the_window() {
        let throttle = Throttle::new(AuthSettings {
            window: Duration::from_millis(50),
            ..AuthSettings::default()
        });
        let source: IpAddr = "2001:db8::1".parse().unwrap();
        for _ in 0..10 {
            throttle.failed(source);
        }
        assert!(!throttle.admit(source).unwrap().is_zero());
        throttle.done_waiting(source);
        std::thread::sleep(Duration::from_millis(80));
        assert_eq!(throttle.admit(source), Ok(Duration::ZERO));
        assert_eq!(throttle.failed(source), 1);
    }
}
