//! The request context: what every event logged while a request is handled carries
//! (correlation id, trace and span ids, client address, user agent, route, and the user and
//! session the application's auth layer names).
//!
//! The middleware ([`crate::middleware`]) opens a context for each request; code running for
//! that request (also in tasks it spawns through [`propagate`]) reaches it with [`current`],
//! [`set_user`] and [`set_session`].

use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};

tokio::task_local! {
    static CONTEXT: RequestContext;
}

/// One request's context; cheap to clone (shared).
#[derive(Debug, Clone)]
pub struct RequestContext {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    fixed: Fixed,
    identity: Mutex<Identity>,
    /// The fixed part as written on every line, made at the first line.
    rendered: std::sync::OnceLock<String>,
}

/// What the middleware knows when the request arrives.
#[derive(Debug, Clone, Default)]
pub struct Fixed {
    /// The correlation id (the caller's `X-Request-Id`, else the trace id, else a new UUIDv7).
    pub correlation_id: String,
    /// W3C trace id, 32 hex digits.
    pub trace_id: String,
    /// This request's span id, 16 hex digits.
    pub span_id: String,
    /// The caller's parent span id, when a `traceparent` was received.
    pub parent_span_id: Option<String>,
    /// The client's address (from the socket, or the forwarding headers of trusted proxies).
    pub client_ip: Option<IpAddr>,
    /// The address of the peer that connected (a proxy, when there is one).
    pub peer_ip: Option<IpAddr>,
    /// `User-Agent`.
    pub user_agent: Option<String>,
    /// The HTTP method.
    pub method: String,
    /// The route template (`/records/{id}`), when a route matched.
    pub route: Option<String>,
}

/// Who the request acts for, as the application's auth layer sets it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Identity {
    /// The user's name or id (a pseudonym when pseudonyms are on).
    pub user: Option<String>,
    /// A digest of the session identifier (never the session token itself).
    pub session: Option<String>,
}

impl RequestContext {
    /// A context with what is known when the request arrives.
    pub fn new(fixed: Fixed) -> RequestContext {
        RequestContext {
            inner: Arc::new(Inner {
                fixed,
                identity: Mutex::new(Identity::default()),
                rendered: std::sync::OnceLock::new(),
            }),
        }
    }

    /// What is known since the request arrived.
    pub fn fixed(&self) -> &Fixed {
        &self.inner.fixed
    }

    /// The fixed part rendered once by `render`, then reused.
    pub(crate) fn rendered(&self, render: impl FnOnce(&Fixed) -> String) -> &str {
        self.inner
            .rendered
            .get_or_init(|| render(&self.inner.fixed))
    }

    /// The user and session as set so far.
    pub fn identity(&self) -> Identity {
        self.inner
            .identity
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn update(&self, change: impl FnOnce(&mut Identity)) {
        change(
            &mut self
                .inner
                .identity
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        );
    }

    /// Runs `future` with this context as the current one.
    pub async fn scope<F: std::future::Future>(self, future: F) -> F::Output {
        CONTEXT.scope(self, future).await
    }
}

/// The context of the request being handled, if any.
pub fn current() -> Option<RequestContext> {
    CONTEXT.try_with(Clone::clone).ok()
}

/// Names the user the current request acts for: every later event of the request carries it.
/// With pseudonyms on, the name is replaced by its keyed pseudonym.
pub fn set_user(user: &str) {
    let written = crate::redactor().pseudonym(user);
    if let Some(context) = current() {
        context.update(|identity| identity.user = Some(written));
    }
}

/// Names the current request's session. Only a digest of `session` is kept (the first 16 bytes
/// of its SHA-256, in hex): a session token in a log would let anyone reading the log take
/// over the session.
pub fn set_session(session: &str) {
    let digest = session_digest(session);
    if let Some(context) = current() {
        context.update(|identity| identity.session = Some(digest));
    }
}

/// The digest [`set_session`] keeps of a session identifier.
pub fn session_digest(session: &str) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(session.as_bytes());
    hex::encode(&digest[..16])
}

/// Forgets the user and session (after a logout, the response's events are anonymous).
pub fn clear_identity() {
    if let Some(context) = current() {
        context.update(|identity| *identity = Identity::default());
    }
}

/// `future` with the current request's context, for tasks spawned while handling it.
pub fn propagate<F: std::future::Future>(
    future: F,
) -> impl std::future::Future<Output = F::Output> {
    let context = current();
    async move {
        match context {
            Some(context) => context.scope(future).await,
            None => future.await,
        }
    }
}
