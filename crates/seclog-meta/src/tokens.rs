//! API tokens: 256-bit random secrets shown once, stored only as SHA-256 hashes.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use redb::{ReadableDatabase, ReadableTable};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::{MetaError, MetaStore, Result, TOKENS, storage};

const TOKEN_PREFIX: &str = "slt_";

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Append to matching groups; nothing else.
    Ingest,
    /// Read matching groups.
    Reader,
    /// Verify integrity, fetch checkpoints and proofs.
    Auditor,
    /// Everything, audited.
    Admin,
}

impl Role {
    /// The role's name, as [`Role::parse`] reads it.
    pub fn name(self) -> &'static str {
        match self {
            Role::Ingest => "ingest",
            Role::Reader => "reader",
            Role::Auditor => "auditor",
            Role::Admin => "admin",
        }
    }

    /// Parses a role name.
    pub fn parse(text: &str) -> Result<Self> {
        match text {
            "ingest" => Ok(Role::Ingest),
            "reader" => Ok(Role::Reader),
            "auditor" => Ok(Role::Auditor),
            "admin" => Ok(Role::Admin),
            other => Err(MetaError::Invalid(format!(
                "unknown role {other:?} (ingest, reader, auditor, admin)"
            ))),
        }
    }
}

/// A token's stored description (never the secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenInfo {
    /// Public identifier (first hex digits of the hash).
    pub id: String,
    /// Its role.
    pub role: Role,
    /// Group pattern it applies to: `*`, an exact name, or a prefix ending in `*`.
    pub groups: String,
    /// Creation time, Unix seconds.
    pub created_unix: i64,
    /// Expiry, Unix seconds.
    pub expires_unix: Option<i64>,
}

impl TokenInfo {
    /// True if the pattern covers `group`.
    pub fn covers(&self, group: &str) -> bool {
        match self.groups.strip_suffix('*') {
            Some(prefix) => group.starts_with(prefix),
            None => self.groups == group,
        }
    }
}

/// Hex SHA-256 of a token: the only form that is stored.
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs() as i64)
        .unwrap_or(0)
}

impl MetaStore {
    /// Creates a token; returns the secret (show it once) and its description.
    pub fn create_token(
        &self,
        role: Role,
        groups: &str,
        expires_unix: Option<i64>,
    ) -> Result<(String, TokenInfo)> {
        if groups.is_empty() || groups.trim_end_matches('*').contains('*') {
            return Err(MetaError::Invalid(
                "group pattern must be '*', a name, or a prefix ending in '*'".into(),
            ));
        }
        let mut secret = [0u8; 32];
        getrandom::fill(&mut secret).map_err(storage)?;
        let token = format!("{TOKEN_PREFIX}{}", URL_SAFE_NO_PAD.encode(secret));
        let hash = hash_token(&token);
        let info = TokenInfo {
            id: hash.get(..12).unwrap_or_default().to_string(),
            role,
            groups: groups.to_string(),
            created_unix: now_unix(),
            expires_unix,
        };
        let value = serde_json::to_string(&info).map_err(storage)?;
        let txn = self.db.begin_write().map_err(storage)?;
        txn.open_table(TOKENS)
            .map_err(storage)?
            .insert(hash.as_str(), value.as_str())
            .map_err(storage)?;
        txn.commit().map_err(storage)?;
        Ok((token, info))
    }

    /// Looks a presented token up by its hash; `None` if unknown or expired.
    pub fn authenticate(&self, token: &str) -> Result<Option<TokenInfo>> {
        if !token.starts_with(TOKEN_PREFIX) || token.len() > 128 {
            return Ok(None);
        }
        let hash = hash_token(token);
        let txn = self.db.begin_read().map_err(storage)?;
        let table = txn.open_table(TOKENS).map_err(storage)?;
        let Some(value) = table.get(hash.as_str()).map_err(storage)? else {
            return Ok(None);
        };
        let info: TokenInfo = serde_json::from_str(value.value()).map_err(storage)?;
        if info
            .expires_unix
            .is_some_and(|expires| expires <= now_unix())
        {
            return Ok(None);
        }
        Ok(Some(info))
    }

    /// Every token's description.
    pub fn list_tokens(&self) -> Result<Vec<TokenInfo>> {
        let txn = self.db.begin_read().map_err(storage)?;
        let table = txn.open_table(TOKENS).map_err(storage)?;
        let mut tokens = Vec::new();
        for entry in table.iter().map_err(storage)? {
            let (_, value) = entry.map_err(storage)?;
            tokens.push(serde_json::from_str(value.value()).map_err(storage)?);
        }
        Ok(tokens)
    }

    /// Revokes the token with this id; false if none.
    pub fn revoke_token(&self, id: &str) -> Result<bool> {
        let txn = self.db.begin_write().map_err(storage)?;
        let removed = {
            let mut table = txn.open_table(TOKENS).map_err(storage)?;
            let hash = table
                .iter()
                .map_err(storage)?
                .filter_map(std::result::Result::ok)
                .map(|(key, _)| key.value().to_string())
                .find(|hash| hash.starts_with(id) && id.len() >= 8);
            match hash {
                Some(hash) => table.remove(hash.as_str()).map_err(storage)?.is_some(),
                None => false,
            }
        };
        txn.commit().map_err(storage)?;
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_hashed_scoped_expiring_and_revocable() {
        let dir = tempfile::tempdir().unwrap();
        let meta = MetaStore::open(dir.path()).unwrap();
        let (token, info) = meta.create_token(Role::Ingest, "app/*", None).unwrap();
        assert!(info.covers("app/payments") && !info.covers("aws/cloudtrail"));
        assert_eq!(meta.authenticate(&token).unwrap(), Some(info.clone()));
        let (expired, _) = meta
            .create_token(Role::Reader, "*", Some(now_unix() - 1))
            .unwrap();
        assert_eq!(meta.authenticate(&expired).unwrap(), None);
        assert!(meta.create_token(Role::Reader, "a*b*", None).is_err());
        assert!(meta.revoke_token(&info.id).unwrap());
        assert_eq!(meta.authenticate(&token).unwrap(), None);
        drop(meta);
        let raw = std::fs::read(dir.path().join("seclog.redb")).unwrap();
        assert!(
            !raw.windows(token.len())
                .any(|window| window == token.as_bytes()),
            "secret stored"
        );
    }
}
