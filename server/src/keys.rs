//! The server's private keys: generated on first start, kept in the state
//! directory readable by atlogin alone, loaded after that, rotated on request.
//!
//! Two separate sets: the keys that sign ID tokens for the relying parties
//! (ES256 and RS256; OpenID Connect Discovery requires RS256) and the keys the
//! atproto client signs its client assertions with (ES256). A set is a folder
//! under `<state>/keys/`, one JSON file per key named by its `kid`, the RFC 7638
//! thumbprint of its public key.
//!
//! Rotation adds a fresh key per algorithm, which new tokens use at once, and
//! gives the keys it replaces a retirement time: until then they stay published
//! (tokens signed with them still verify), after it they are left out.

use std::fmt;
use std::fs;
use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::time::Duration;

use atlogin_core::base64url;
use atlogin_core::jose::Algorithm;
use atlogin_core::jose::crypto::{CryptoProvider, RsaPrivateKeyDer};
use atlogin_core::jose::jwk::EcPrivateKey;
use atlogin_core::jose::jws::JwsSigningKey;
use atlogin_core::secret::SecretBytes;
use atlogin_core::time::UnixTime;
use rand_core::CryptoRng;
use serde::{Deserialize, Serialize};

/// The size of generated RSA keys, in bits.
const RSA_BITS: usize = 2048;

/// The largest key file read.
const MAX_KEY_FILE_LEN: u64 = 16 * 1024;

/// Which set a key belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeySet {
    /// Signs ID tokens for the relying parties: ES256 and RS256.
    IdToken,
    /// Signs the atproto client's assertions (`private_key_jwt`): ES256.
    AtprotoClient,
}

impl KeySet {
    /// The folder name under `<state>/keys/`.
    fn folder(self) -> &'static str {
        match self {
            Self::IdToken => "id-token",
            Self::AtprotoClient => "atproto-client",
        }
    }

    /// The algorithms the set holds a current key for.
    #[must_use]
    pub fn algorithms(self) -> &'static [Algorithm] {
        match self {
            Self::IdToken => &[Algorithm::Rs256, Algorithm::Es256],
            Self::AtprotoClient => &[Algorithm::Es256],
        }
    }
}

/// What can go wrong with the key store. Never shows key material.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyStoreError {
    /// A file or folder could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// Others than atlogin's user may read a key file or the key folder.
    #[error("{path} is readable by other users (mode {mode:o}); run `chmod {fix} {path}`")]
    Exposed {
        /// The file or folder.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
        /// The mode to set.
        fix: &'static str,
    },
    /// A key file is not a key atlogin wrote.
    #[error("{path}: not a valid key file ({reason})")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: &'static str,
    },
    /// Key generation failed.
    #[error("generating a key failed")]
    Generate,
}

/// One key as stored.
#[derive(Serialize, Deserialize)]
struct KeyFile {
    kid: String,
    alg: String,
    created: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    retires: Option<u64>,
    /// ES256: the private JWK.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    jwk: Option<serde_json::Value>,
    /// RS256: the PKCS#8 DER, base64url.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pkcs8: Option<String>,
}

/// A loaded key with its bookkeeping.
#[derive(Clone)]
pub struct StoredKey {
    /// Ready to sign, with its `kid`.
    pub signing: JwsSigningKey,
    /// When it was made.
    pub created: UnixTime,
    /// When it stops being published, if rotation replaced it.
    pub retires: Option<UnixTime>,
}

impl fmt::Debug for StoredKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredKey")
            .field("kid", &self.signing.kid())
            .field("alg", &self.signing.algorithm())
            .field("created", &self.created)
            .field("retires", &self.retires)
            .finish_non_exhaustive()
    }
}

impl StoredKey {
    /// The key id.
    #[must_use]
    pub fn kid(&self) -> &str {
        self.signing.kid().unwrap_or_default()
    }

    /// Whether it is still published at `now`.
    #[must_use]
    pub fn is_live(&self, now: UnixTime) -> bool {
        self.retires.is_none_or(|retires| now < retires)
    }
}

/// The key folders under a state directory.
#[derive(Debug)]
pub struct KeyStore {
    root: PathBuf,
    provider: &'static dyn CryptoProvider,
}

impl KeyStore {
    /// The store under `state_dir/keys`, created (mode 0700) when missing.
    pub fn open(
        state_dir: &Path,
        provider: &'static dyn CryptoProvider,
    ) -> Result<Self, KeyStoreError> {
        let root = state_dir.join("keys");
        create_private_dir(&root)?;
        Ok(Self { root, provider })
    }

    /// The keys of `set` still published at `now`, oldest first, after making a
    /// key for every algorithm the set lacks one for.
    pub fn load_or_generate<R: CryptoRng + ?Sized>(
        &self,
        set: KeySet,
        now: UnixTime,
        rng: &mut R,
    ) -> Result<Vec<StoredKey>, KeyStoreError> {
        let mut keys = self.load(set)?;
        for &alg in set.algorithms() {
            let current = keys
                .iter()
                .any(|k| k.signing.algorithm() == alg && k.retires.is_none());
            if !current {
                keys.push(self.generate(set, alg, now, rng)?);
            }
        }
        keys.retain(|k| k.is_live(now));
        keys.sort_by_key(|k| (k.created, k.retires.is_none()));
        Ok(keys)
    }

    /// Adds a fresh key per algorithm of `set` and retires the keys it replaces
    /// `grace` from `now`. Returns the new keys.
    pub fn rotate<R: CryptoRng + ?Sized>(
        &self,
        set: KeySet,
        now: UnixTime,
        grace: Duration,
        rng: &mut R,
    ) -> Result<Vec<StoredKey>, KeyStoreError> {
        let retires = now.saturating_add(grace);
        let dir = self.root.join(set.folder());
        for key in self.load(set)? {
            if key.retires.is_none() {
                let path = dir.join(format!("{}.json", key.kid()));
                let mut file = read_key_file(&path)?;
                file.retires = Some(retires.as_secs());
                write_key_file(&path, &file)?;
            }
        }
        let mut fresh = Vec::new();
        for &alg in set.algorithms() {
            fresh.push(self.generate(set, alg, now, rng)?);
        }
        Ok(fresh)
    }

    /// Every key of `set` on disk, retired or not.
    pub fn load(&self, set: KeySet) -> Result<Vec<StoredKey>, KeyStoreError> {
        let dir = self.root.join(set.folder());
        create_private_dir(&dir)?;
        let entries = fs::read_dir(&dir).map_err(|source| KeyStoreError::Io {
            path: dir.clone(),
            source,
        })?;
        let mut keys = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|source| KeyStoreError::Io {
                path: dir.clone(),
                source,
            })?;
            let path = entry.path();
            if path.extension().is_some_and(|e| e == "json") {
                keys.push(self.decode(&path, &read_key_file(&path)?)?);
            }
        }
        keys.sort_by_key(|k| (k.created, k.retires.is_none()));
        Ok(keys)
    }

    fn decode(&self, path: &Path, file: &KeyFile) -> Result<StoredKey, KeyStoreError> {
        let invalid = |reason| KeyStoreError::Invalid {
            path: path.to_owned(),
            reason,
        };
        let loaded = match (file.alg.as_str(), &file.jwk, &file.pkcs8) {
            ("ES256", Some(jwk), None) => {
                let key = EcPrivateKey::from_jwk_json(jwk.to_string().as_bytes())
                    .map_err(|_| invalid("the private JWK does not parse"))?;
                self.provider
                    .load_es256(&key)
                    .map_err(|_| invalid("the key is rejected"))?
            }
            ("RS256", None, Some(pkcs8)) => {
                let der = base64url::decode(pkcs8).map_err(|_| invalid("bad base64url"))?;
                self.provider
                    .load_rs256(&RsaPrivateKeyDer::Pkcs8(SecretBytes::new(der)))
                    .map_err(|_| invalid("the key is rejected"))?
            }
            _ => return Err(invalid("unknown algorithm or key fields")),
        };
        let signing = JwsSigningKey::new(loaded);
        let kid = thumbprint_kid(&signing);
        if kid != file.kid || path.file_stem().is_none_or(|stem| *stem != *kid) {
            return Err(invalid("the kid does not match the key"));
        }
        Ok(StoredKey {
            signing: signing.with_kid(kid),
            created: UnixTime::from_secs(file.created),
            retires: file.retires.map(UnixTime::from_secs),
        })
    }

    fn generate<R: CryptoRng + ?Sized>(
        &self,
        set: KeySet,
        alg: Algorithm,
        now: UnixTime,
        rng: &mut R,
    ) -> Result<StoredKey, KeyStoreError> {
        let (loaded, jwk, pkcs8) = match alg {
            Algorithm::Es256 => {
                let key = EcPrivateKey::generate(rng);
                let jwk: serde_json::Value = serde_json::from_str(&key.to_jwk_json(None))
                    .map_err(|_| KeyStoreError::Generate)?;
                let loaded = self
                    .provider
                    .load_es256(&key)
                    .map_err(|_| KeyStoreError::Generate)?;
                (loaded, Some(jwk), None)
            }
            Algorithm::Rs256 => {
                use rsa::pkcs8::EncodePrivateKey as _;
                let key =
                    rsa::PrivateKey::new(rng, RSA_BITS).map_err(|_| KeyStoreError::Generate)?;
                let der = key.to_pkcs8_der().map_err(|_| KeyStoreError::Generate)?;
                let loaded = self
                    .provider
                    .load_rs256(&RsaPrivateKeyDer::Pkcs8(SecretBytes::new(
                        der.as_bytes().to_vec(),
                    )))
                    .map_err(|_| KeyStoreError::Generate)?;
                (loaded, None, Some(base64url::encode(der.as_bytes())))
            }
            _ => return Err(KeyStoreError::Generate),
        };
        let signing = JwsSigningKey::new(loaded);
        let kid = thumbprint_kid(&signing);
        let file = KeyFile {
            kid: kid.clone(),
            alg: alg.as_str().to_owned(),
            created: now.as_secs(),
            retires: None,
            jwk,
            pkcs8,
        };
        let path = self.root.join(set.folder()).join(format!("{kid}.json"));
        write_key_file(&path, &file)?;
        Ok(StoredKey {
            signing: signing.with_kid(kid),
            created: now,
            retires: None,
        })
    }
}

/// The RFC 7638 thumbprint of the public key, as the `kid`.
fn thumbprint_kid(signing: &JwsSigningKey) -> String {
    signing.public_jwk().thumbprint().to_string()
}

fn create_private_dir(path: &Path) -> Result<(), KeyStoreError> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
        .map_err(|source| KeyStoreError::Io {
            path: path.to_owned(),
            source,
        })?;
    check_private(path, "700")
}

/// Refuses a file or folder that group or others may read.
fn check_private(path: &Path, fix: &'static str) -> Result<(), KeyStoreError> {
    let mode = fs::metadata(path)
        .map_err(|source| KeyStoreError::Io {
            path: path.to_owned(),
            source,
        })?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        return Err(KeyStoreError::Exposed {
            path: path.to_owned(),
            mode: mode & 0o777,
            fix,
        });
    }
    Ok(())
}

fn read_key_file(path: &Path) -> Result<KeyFile, KeyStoreError> {
    check_private(path, "600")?;
    let io = |source| KeyStoreError::Io {
        path: path.to_owned(),
        source,
    };
    let len = fs::metadata(path).map_err(io)?.len();
    if len > MAX_KEY_FILE_LEN {
        return Err(KeyStoreError::Invalid {
            path: path.to_owned(),
            reason: "too large",
        });
    }
    let bytes = zeroize::Zeroizing::new(fs::read(path).map_err(io)?);
    serde_json::from_slice(&bytes).map_err(|_| KeyStoreError::Invalid {
        path: path.to_owned(),
        reason: "not the expected JSON",
    })
}

/// Writes `file` to `path` atomically: a fresh 0600 file beside it, synced,
/// then renamed over it.
fn write_key_file(path: &Path, file: &KeyFile) -> Result<(), KeyStoreError> {
    let io = |source| KeyStoreError::Io {
        path: path.to_owned(),
        source,
    };
    let bytes = zeroize::Zeroizing::new(serde_json::to_vec_pretty(file).map_err(|e| io(e.into()))?);
    let temporary = path.with_extension("json.new");
    // A leftover from a crash is ours to replace.
    let _ = fs::remove_file(&temporary);
    let mut out = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&temporary)
        .map_err(io)?;
    out.write_all(&bytes).map_err(io)?;
    out.sync_all().map_err(io)?;
    fs::rename(&temporary, path).map_err(io)?;
    Ok(())
}
