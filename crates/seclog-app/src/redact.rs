//! Redaction that cannot be forgotten: every field name and every string value passes through
//! [`Redactor`] before it is written anywhere (stdout, spool, seclog).
//!
//! Two rules:
//! - a field or header whose *name* looks like a secret (`password`, `token`, `secret`,
//!   `authorization`, `cookie`, `api_key`, `private_key`, `credential`, ...) has its whole value
//!   replaced by [`REDACTED`], whatever the value is;
//! - inside any other string, *values shaped like credentials* are replaced: AWS access key ids,
//!   `Bearer`/`Basic` credentials, JSON Web Tokens, private-key blocks, passwords in URLs,
//!   `name=value` pairs whose name looks like a secret, and GitHub, Slack and seclog tokens.
//!
//! User identifiers can also be replaced by a keyed hash ([`Redactor::pseudonym`]): the same
//! user always gets the same pseudonym, so events can still be correlated, but the name can only
//! be recovered by someone holding the key.

use std::borrow::Cow;
use std::sync::LazyLock;

use hmac::{KeyInit, Mac};
use regex::Regex;
use serde_json::Value;

/// What a redacted value is replaced with.
pub const REDACTED: &str = "[REDACTED]";

/// Words that make a field name secret (compared on the name lower-cased, with `-`, `.` and
/// spaces read as `_`).
const SECRET_NAME_PARTS: &[&str] = &[
    "password",
    "passwd",
    "passphrase",
    "pwd",
    "secret",
    "token",
    "authorization",
    "cookie",
    "api_key",
    "apikey",
    "access_key",
    "private_key",
    "privatekey",
    "credential",
    "client_secret",
    "session_key",
    "signature",
    "otp",
    "pin",
];

/// Names that contain a secret word but are not secrets (`token_type`, counts of failures).
const SAFE_NAMES: &[&str] = &[
    "token_type",
    "password_changed",
    "password_expired",
    "otp_method",
    "signature_algorithm",
];

static CREDENTIAL_VALUES: LazyLock<Regex> = LazyLock::new(|| {
    let patterns = [
        // Private-key blocks (PEM), whole.
        r"-----BEGIN[A-Z ]*PRIVATE KEY-----[\s\S]*?(?:-----END[A-Z ]*PRIVATE KEY-----|$)",
        // Authorization schemes with their credential.
        r"(?i)\b(?:bearer|basic|token|apikey|api-key|splunk)\s+[A-Za-z0-9\-._~+/]{8,}=*",
        // JSON Web Tokens (header.payload.signature, base64url).
        r"\beyJ[A-Za-z0-9_-]{5,}\.eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*",
        // AWS access key ids.
        r"\b(?:AKIA|ASIA|ABIA|ACCA|AGPA|AIDA|AROA|ANPA|ANVA|APKA)[A-Z0-9]{16}\b",
        // GitHub, Slack, seclog, Stripe-style tokens.
        r"\bgh[pousr]_[A-Za-z0-9]{30,}\b",
        r"\bgithub_pat_[A-Za-z0-9_]{30,}\b",
        r"\bxox[abposr]-[A-Za-z0-9-]{10,}\b",
        r"\bslt_[A-Za-z0-9_-]{16,}\b",
        r"\b[sr]k_(?:live|test)_[A-Za-z0-9]{16,}\b",
        // user:password@ in URLs.
        r"(?i)\b[a-z][a-z0-9+.-]*://[^/\s:@]+:[^/\s@]+@",
        // A cookie header in text (`Cookie: a=1; sid=2`): every cookie, to the end of the line.
        r#"(?i)\b(?:set-)?cookie\s*:\s*[^\r\n"]+"#,
        // name=value, "name": "value" and name: Some("value") where the name looks like a
        // secret; a quoted value is taken whole (spaces and escaped quotes included).
        r#"(?i)\b[a-z0-9_.-]*(?:password|passwd|passphrase|pwd|secret|token|api[_-]?key|access[_-]?key|private[_-]?key|credential|authorization|cookie|session[_-]?key)[a-z0-9_.-]*"?\s*(?:=|:)\s*(?:Some\(\s*)?(?:"(?:[^"\\]|\\.)*"|(?:(?:bearer|basic|token|digest)\s+)?[^\s"&,;)]+)"#,
    ];
    Regex::new(&patterns.join("|")).expect("the credential patterns are valid")
});

/// Replaces secrets; see the module documentation.
#[derive(Clone, Default)]
pub struct Redactor {
    /// Extra field names (lower case) that hold secrets in this application.
    extra_names: Vec<String>,
    /// Key for pseudonyms of user identifiers; `None` keeps them as they are.
    pseudonym_key: Option<zeroize::Zeroizing<Vec<u8>>>,
    /// Names already judged (field names come from code: a few hundred at most).
    judged: std::sync::Arc<std::sync::RwLock<std::collections::HashMap<Box<str>, bool>>>,
}

/// Names remembered by one redactor at most (beyond, names are judged each time).
const MAX_JUDGED: usize = 4096;

impl std::fmt::Debug for Redactor {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Redactor")
            .field("extra_names", &self.extra_names)
            .field("pseudonyms", &self.pseudonym_key.is_some())
            .finish()
    }
}

impl Redactor {
    /// Adds field names that hold secrets in this application (compared like the built-in ones).
    #[must_use]
    pub fn with_secret_names<I, S>(mut self, names: I) -> Redactor
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.extra_names
            .extend(names.into_iter().map(|name| normalize(name.as_ref())));
        self.judged = std::sync::Arc::default();
        self
    }

    /// Replaces user identifiers by an HMAC-SHA-256 pseudonym under `key`.
    #[must_use]
    pub fn with_pseudonym_key(mut self, key: &[u8]) -> Redactor {
        self.pseudonym_key = Some(zeroize::Zeroizing::new(key.to_vec()));
        self
    }

    /// Whether values of a field (or header) with this name are secrets.
    pub fn is_secret_name(&self, name: &str) -> bool {
        let judged = self
            .judged
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(name)
            .copied();
        if let Some(secret) = judged {
            return secret;
        }
        let secret = self.judge(name);
        let mut judged = self
            .judged
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if judged.len() < MAX_JUDGED {
            judged.insert(name.into(), secret);
        }
        secret
    }

    fn judge(&self, name: &str) -> bool {
        let name = normalize(name);
        if SAFE_NAMES.contains(&name.as_str()) {
            return false;
        }
        let words: Vec<&str> = name.split('_').filter(|word| !word.is_empty()).collect();
        let joined_matches = |part: &str| {
            if part.contains('_') {
                name.contains(part)
            } else {
                // Whole words only for short parts (`pin` is not `spinner`).
                words.iter().any(|word| {
                    *word == part
                        || (part.len() >= 5 && word.contains(part))
                        || word.strip_suffix('s') == Some(part)
                })
            }
        };
        SECRET_NAME_PARTS.iter().any(|part| joined_matches(part))
            || self.extra_names.contains(&name)
    }

    /// `text` with credential-shaped values replaced (borrowed when there were none).
    pub fn redact_text<'a>(&self, text: &'a str) -> Cow<'a, str> {
        CREDENTIAL_VALUES.replace_all(text, REDACTED)
    }

    /// Redacts a JSON value in place: secret-named members are replaced whole, strings are
    /// scanned for credentials, objects and arrays are walked.
    pub fn redact_json(&self, value: &mut Value) {
        match value {
            Value::String(text) => {
                if let Cow::Owned(clean) = self.redact_text(text) {
                    *text = clean;
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|item| self.redact_json(item)),
            Value::Object(members) => {
                for (name, member) in members.iter_mut() {
                    if self.is_secret_name(name) && !member.is_null() {
                        *member = Value::String(REDACTED.into());
                    } else {
                        self.redact_json(member);
                    }
                }
            }
            Value::Null | Value::Bool(_) | Value::Number(_) => {}
        }
    }

    /// A user identifier as it may be written: its keyed pseudonym (`hmac:` and 16 bytes in
    /// hex) when a key is set, else the identifier itself (credential-shaped values redacted).
    pub fn pseudonym(&self, user: &str) -> String {
        match &self.pseudonym_key {
            Some(key) => {
                let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(key)
                    .expect("HMAC takes keys of any length");
                mac.update(user.as_bytes());
                let digest = mac.finalize().into_bytes();
                format!("hmac:{}", hex::encode(&digest[..16]))
            }
            None => self.redact_text(user).into_owned(),
        }
    }
}

fn normalize(name: &str) -> String {
    // camelCase → snake_case, then separators → `_`.
    let mut out = String::with_capacity(name.len() + 4);
    let mut previous_lower = false;
    for character in name.chars() {
        if character.is_ascii_uppercase() && previous_lower {
            out.push('_');
        }
        previous_lower = character.is_ascii_lowercase() || character.is_ascii_digit();
        match character {
            '-' | '.' | ' ' => out.push('_'),
            other => out.push(other.to_ascii_lowercase()),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_names_are_recognised_in_every_spelling() {
        let redactor = Redactor::default().with_secret_names(["X-Internal-Key"]);
        for name in [
            "password",
            "Password",
            "user_password",
            "newPassword",
            "passwd",
            "client_secret",
            "clientSecret",
            "access_token",
            "refreshToken",
            "Authorization",
            "proxy-authorization",
            "Cookie",
            "set-cookie",
            "X-API-Key",
            "apiKey",
            "aws_secret_access_key",
            "private_key",
            "credentials",
            "pin",
            "x-internal-key",
        ] {
            assert!(redactor.is_secret_name(name), "{name} is a secret name");
        }
        for name in [
            "user",
            "username",
            "spinner",
            "token_type",
            "path",
            "status",
            "session_id",
        ] {
            assert!(
                !redactor.is_secret_name(name),
                "{name} is not a secret name"
            );
        }
    }

    #[test]
    fn credential_shaped_values_are_replaced_inside_text() {
        let redactor = Redactor::default();
        let cases = [
            "login with Authorization: Bearer abc.def-ghi_jkl~123 failed",
            "key AKIAIOSFODNN7EXAMPLE used",
            "jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlX3ZhbHVl here",
            "connect postgres://app:hunter2@db:5432/x",
            "retry with password=hunter2&user=alice",
            r#"{"password": "hunter2"}"#,
            "token ghp_abcdefghijklmnopqrstuvwxyz0123456789 leaked",
            "seclog slt_abcdefghijklmnopqrstuvwx1234 sent",
            "-----BEGIN PRIVATE KEY-----\nMIIEvQ\n-----END PRIVATE KEY-----",
            "Basic YWxpY2U6d29uZGVybGFuZA==",
            "Cookie: theme=dark; sid=abc.def; other=hunter2",
            r#"{"cookie": "theme=dark; sid=abc.def"}"#,
            r#"{"password": "correct hunter2 battery"}"#,
            r#"Login { user: "alice", password: Some("hunter2") }"#,
            r#"{"token": "with \"quote\" hunter2"}"#,
        ];
        for case in cases {
            let clean = redactor.redact_text(case);
            assert!(clean.contains(REDACTED), "{case:?} → {clean:?}");
            for secret in [
                "abc.def-ghi",
                "AKIAIOSFODNN7EXAMPLE",
                "c2lnbmF0dXJl",
                "hunter2",
                "ghp_abc",
                "slt_abc",
                "MIIEvQ",
                "YWxpY2U6",
                "sid=abc",
                "battery",
            ] {
                assert!(!clean.contains(secret), "{case:?} → {clean:?}");
            }
        }
        let plain = "user alice read record 42 from 10.0.0.1";
        assert!(matches!(redactor.redact_text(plain), Cow::Borrowed(_)));
    }

    #[test]
    fn json_is_walked_and_pseudonyms_are_keyed() {
        let redactor = Redactor::default();
        let mut value = serde_json::json!({
            "user": "alice",
            "headers": {"authorization": "Bearer x", "accept": "text/html"},
            "form": [{"password": "wonderland"}, {"note": "key=AKIAIOSFODNN7EXAMPLE"}],
            "password_changed": true,
        });
        redactor.redact_json(&mut value);
        let text = value.to_string();
        assert!(!text.contains("wonderland") && !text.contains("Bearer x"));
        assert!(!text.contains("AKIAIOSFODNN7EXAMPLE"));
        assert_eq!(value["headers"]["accept"], "text/html");
        assert_eq!(value["password_changed"], true);
        let keyed = Redactor::default().with_pseudonym_key(b"k1");
        assert_eq!(keyed.pseudonym("alice"), keyed.pseudonym("alice"));
        assert_ne!(keyed.pseudonym("alice"), keyed.pseudonym("bob"));
        assert_ne!(
            keyed.pseudonym("alice"),
            Redactor::default()
                .with_pseudonym_key(b"k2")
                .pseudonym("alice")
        );
        assert!(keyed.pseudonym("alice").starts_with("hmac:"));
        assert_eq!(redactor.pseudonym("alice"), "alice");
    }
}
