//! Plain-HTTP requests that return every status as a [`Reply`] instead of an error.

use std::time::Duration;

use serde_json::Value;

/// An HTTP reply, whatever its status.
#[derive(Debug)]
pub struct Reply {
    /// HTTP status code.
    pub status: u16,
    /// Response headers (lower-case names).
    pub headers: Vec<(String, String)>,
    /// Response body.
    pub body: Vec<u8>,
}

impl Reply {
    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON (panics with the body otherwise).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|error| {
            panic!(
                "reply {} is not JSON ({error}): {:?}",
                self.status,
                self.text()
            )
        })
    }

    /// A header value by (case-insensitive) name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// `error.code` of a JSON error reply.
    pub fn error_code(&self) -> String {
        let body = self.json();
        body["error"]["code"]
            .as_str()
            .unwrap_or_else(|| panic!("no error.code in {body}"))
            .to_string()
    }
}

/// An agent that returns 4xx/5xx replies instead of errors.
pub fn agent(timeout: Duration) -> ureq::Agent {
    let config = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(timeout))
        .build();
    ureq::Agent::new_with_config(config)
}

fn into_reply(response: ureq::http::Response<ureq::Body>) -> Result<Reply, ureq::Error> {
    let status = response.status().as_u16();
    let headers = response
        .headers()
        .iter()
        .map(|(name, value)| {
            (
                name.as_str().to_string(),
                String::from_utf8_lossy(value.as_bytes()).into_owned(),
            )
        })
        .collect();
    let body = response
        .into_body()
        .with_config()
        .limit(64 << 20)
        .read_to_vec()?;
    Ok(Reply {
        status,
        headers,
        body,
    })
}

/// GET with an optional bearer token; `Err` only for transport failures.
pub fn try_get(agent: &ureq::Agent, url: &str, token: Option<&str>) -> Result<Reply, ureq::Error> {
    let mut request = agent.get(url);
    if let Some(token) = token {
        request = request.header("Authorization", format!("Bearer {token}"));
    }
    into_reply(request.call()?)
}

/// POST with an optional bearer token and extra headers; `Err` only for transport failures.
pub fn try_post(
    agent: &ureq::Agent,
    url: &str,
    token: Option<&str>,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<Reply, ureq::Error> {
    let mut request = agent.post(url);
    if let Some(token) = token {
        request = request.header("Authorization", format!("Bearer {token}"));
    }
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    into_reply(request.send(body)?)
}

/// GET, panicking on transport failures.
pub fn get(url: &str, token: Option<&str>) -> Reply {
    try_get(&agent(Duration::from_secs(30)), url, token)
        .unwrap_or_else(|error| panic!("GET {url} failed: {error}"))
}

/// POST, panicking on transport failures.
pub fn post(url: &str, token: Option<&str>, headers: &[(&str, &str)], body: &[u8]) -> Reply {
    try_post(&agent(Duration::from_secs(60)), url, token, headers, body)
        .unwrap_or_else(|error| panic!("POST {url} failed: {error}"))
}

/// Any method with the given headers (no token added); `Err` only for transport failures.
pub fn try_send(
    agent: &ureq::Agent,
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<Reply, ureq::Error> {
    let mut request = ureq::http::Request::builder().method(method).uri(url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let request = request.body(body.to_vec()).expect("a valid request");
    into_reply(agent.run(request)?)
}
