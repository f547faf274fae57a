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

/// A token as the store keeps it in memory: the SHA-256 of the secret and its description.
#[derive(Debug, Clone)]
pub(crate) struct Stored {
    hash: [u8; 32],
    info: TokenInfo,
}

/// Every stored token, read once when the store opens.
pub(crate) fn load(db: &redb::Database) -> Result<Vec<Stored>> {
    let txn = db.begin_read().map_err(storage)?;
    let table = txn.open_table(TOKENS).map_err(storage)?;
    let mut tokens = Vec::new();
    for entry in table.iter().map_err(storage)? {
        let (hash, value) = entry.map_err(storage)?;
        let hash: [u8; 32] = hex::decode(hash.value())
            .ok()
            .and_then(|bytes| bytes.try_into().ok())
            .ok_or_else(|| storage("a token hash is not 32 bytes of hex"))?;
        let info: TokenInfo = serde_json::from_str(value.value()).map_err(storage)?;
        tokens.push(Stored { hash, info });
    }
    tokens
        .sort_by(|a, b| (a.info.created_unix, &a.info.id).cmp(&(b.info.created_unix, &b.info.id)));
    Ok(tokens)
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
        if expires_unix.is_some_and(|expires| expires <= now_unix()) {
            return Err(MetaError::Invalid(
                "the expiry must be in the future".into(),
            ));
        }
        let mut secret = [0u8; 32];
        getrandom::fill(&mut secret).map_err(storage)?;
        let token = format!("{TOKEN_PREFIX}{}", URL_SAFE_NO_PAD.encode(secret));
        let hash: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let hash_hex = hex::encode(hash);
        let info = TokenInfo {
            id: hash_hex.get(..12).unwrap_or_default().to_string(),
            role,
            groups: groups.to_string(),
            created_unix: now_unix(),
            expires_unix,
        };
        let value = serde_json::to_string(&info).map_err(storage)?;
        // Stored first, then shown to the lookups: requests are never held up by the commit.
        let txn = self.db.begin_write().map_err(storage)?;
        txn.open_table(TOKENS)
            .map_err(storage)?
            .insert(hash_hex.as_str(), value.as_str())
            .map_err(storage)?;
        txn.commit().map_err(storage)?;
        self.tokens.write().map_err(storage)?.push(Stored {
            hash,
            info: info.clone(),
        });
        Ok((token, info))
    }

    /// Looks a presented token up; `None` if unknown or expired. The presented token's hash is
    /// compared with every stored hash in constant time, so how long this takes tells nothing
    /// about how close a guess came.
    pub fn authenticate(&self, token: &str) -> Result<Option<TokenInfo>> {
        use subtle::ConstantTimeEq;
        if !token.starts_with(TOKEN_PREFIX) || token.len() > 128 {
            return Ok(None);
        }
        let hash: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let cache = self.tokens.read().map_err(storage)?;
        let mut found = None;
        for stored in cache.iter() {
            if bool::from(stored.hash.ct_eq(&hash)) {
                found = Some(&stored.info);
            }
        }
        Ok(found
            .filter(|info| info.expires_unix.is_none_or(|expires| expires > now_unix()))
            .cloned())
    }

    /// Every token's description, oldest first (expired ones too, until revoked).
    pub fn list_tokens(&self) -> Result<Vec<TokenInfo>> {
        let cache = self.tokens.read().map_err(storage)?;
        Ok(cache.iter().map(|stored| stored.info.clone()).collect())
    }

    /// Revokes the token whose id is `id` or starts with it (at least 8 characters, naming
    /// one token); its description is returned, `None` if no token has that id.
    pub fn revoke_token(&self, id: &str) -> Result<Option<TokenInfo>> {
        if id.len() < 8 {
            return Err(MetaError::Invalid(
                "give at least 8 characters of the token id".into(),
            ));
        }
        let stored = {
            let cache = self.tokens.read().map_err(storage)?;
            let matching: Vec<&Stored> = cache
                .iter()
                .filter(|stored| stored.info.id.starts_with(id))
                .collect();
            match matching.as_slice() {
                [] => return Ok(None),
                [stored] => (*stored).clone(),
                _ => {
                    return Err(MetaError::Invalid(format!(
                        "{id} names more than one token; give more of the id"
                    )));
                }
            }
        };
        // Hidden from the lookups first, then removed for good.
        self.tokens
            .write()
            .map_err(storage)?
            .retain(|cached| cached.hash != stored.hash);
        let txn = self.db.begin_write().map_err(storage)?;
        txn.open_table(TOKENS)
            .map_err(storage)?
            .remove(hex::encode(stored.hash).as_str())
            .map_err(storage)?;
        txn.commit().map_err(storage)?;
        Ok(Some(stored.info))
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
        let (expiring, _) = meta
            .create_token(Role::Reader, "*", Some(now_unix() + 1))
            .unwrap();
        assert!(meta.authenticate(&expiring).unwrap().is_some());
        std::thread::sleep(std::time::Duration::from_millis(2100));
        assert_eq!(meta.authenticate(&expiring).unwrap(), None, "expired");
        assert!(meta.create_token(Role::Reader, "a*b*", None).is_err());
        assert!(meta.revoke_token("abc").is_err(), "too short an id");
        assert_eq!(meta.revoke_token(&info.id).unwrap(), Some(info.clone()));
        assert_eq!(meta.revoke_token(&info.id).unwrap(), None);
        assert_eq!(meta.authenticate(&token).unwrap(), None);
        assert!(
            meta.create_token(Role::Reader, "*", Some(now_unix() - 1))
                .is_err(),
            "already expired"
        );
        drop(meta);
        // Revocation is durable, and tokens are found again after reopening.
        let meta = MetaStore::open(dir.path()).unwrap();
        assert_eq!(meta.authenticate(&token).unwrap(), None);
        assert_eq!(
            meta.list_tokens().unwrap().len(),
            1,
            "the expired one is listed until revoked"
        );
        drop(meta);
        let raw = std::fs::read(dir.path().join("seclog.redb")).unwrap();
        assert!(
            !raw.windows(token.len())
                .any(|window| window == token.as_bytes()),
            "secret stored"
        );
    }
}
