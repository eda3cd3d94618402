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
use std::io::{Read as _, Write as _};
use std::os::unix::fs::{
    DirBuilderExt as _, MetadataExt as _, OpenOptionsExt as _, PermissionsExt as _,
};
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
use zeroize::Zeroizing;

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
    /// ES256: the private scalar, base64url.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    d: Option<Zeroizing<String>>,
    /// RS256: the PKCS#8 DER, base64url.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pkcs8: Option<Zeroizing<String>>,
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
        sort_for_signing(&mut keys);
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
        let replaced = self.load(set)?;
        // The new keys first: a failure leaves the current keys current.
        let mut fresh = Vec::new();
        for &alg in set.algorithms() {
            fresh.push(self.generate(set, alg, now, rng)?);
        }
        for key in replaced.iter().filter(|k| k.retires.is_none()) {
            let path = dir.join(format!("{}.json", key.kid()));
            let mut file = read_key_file(&path)?;
            file.retires = Some(retires.as_secs());
            write_key_file(&path, &file)?;
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
                keys.push(self.decode(set, &path, &read_key_file(&path)?)?);
            }
        }
        sort_for_signing(&mut keys);
        Ok(keys)
    }

    fn decode(&self, set: KeySet, path: &Path, file: &KeyFile) -> Result<StoredKey, KeyStoreError> {
        let invalid = |reason| KeyStoreError::Invalid {
            path: path.to_owned(),
            reason,
        };
        if !set.algorithms().iter().any(|alg| alg.as_str() == file.alg) {
            return Err(invalid("this set holds no key of that algorithm"));
        }
        let loaded = match (file.alg.as_str(), &file.d, &file.pkcs8) {
            ("ES256", Some(d), None) => {
                let scalar = Zeroizing::new(
                    base64url::decode_array::<32>(d).map_err(|_| invalid("bad private scalar"))?,
                );
                let key = EcPrivateKey::from_scalar(&scalar)
                    .map_err(|_| invalid("the private scalar is not a P-256 key"))?;
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
        let (loaded, d, pkcs8) = match alg {
            Algorithm::Es256 => {
                let key = EcPrivateKey::generate(rng);
                let d = Zeroizing::new(base64url::encode(&*Zeroizing::new(key.scalar())));
                let loaded = self
                    .provider
                    .load_es256(&key)
                    .map_err(|_| KeyStoreError::Generate)?;
                (loaded, Some(d), None)
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
                (
                    loaded,
                    None,
                    Some(Zeroizing::new(base64url::encode(der.as_bytes()))),
                )
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
            d,
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

/// Orders keys so that, per algorithm, the key that signs comes last: retired
/// keys before current ones, then by creation, then by `kid` (a stable order).
fn sort_for_signing(keys: &mut [StoredKey]) {
    keys.sort_by(|a, b| {
        (a.retires.is_none(), a.created, a.kid()).cmp(&(b.retires.is_none(), b.created, b.kid()))
    });
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
    let meta = fs::symlink_metadata(path).map_err(|source| KeyStoreError::Io {
        path: path.to_owned(),
        source,
    })?;
    check_owned_private(path, &meta, "700")?;
    if !meta.is_dir() {
        return Err(KeyStoreError::Invalid {
            path: path.to_owned(),
            reason: "not a folder (a symbolic link is not accepted)",
        });
    }
    Ok(())
}

/// Refuses what group or others may read, or another user owns.
fn check_owned_private(
    path: &Path,
    meta: &fs::Metadata,
    fix: &'static str,
) -> Result<(), KeyStoreError> {
    let mode = meta.permissions().mode();
    if mode & 0o077 != 0 {
        return Err(KeyStoreError::Exposed {
            path: path.to_owned(),
            mode: mode & 0o777,
            fix,
        });
    }
    if meta.uid() != rustix::process::geteuid().as_raw() {
        return Err(KeyStoreError::Invalid {
            path: path.to_owned(),
            reason: "owned by another user",
        });
    }
    Ok(())
}

/// Reads a key file: a regular file, not a symbolic link, with one name, owned
/// by this user and private to it.
fn read_key_file(path: &Path) -> Result<KeyFile, KeyStoreError> {
    use rustix::fs::{Mode, OFlags};
    let io = |source: std::io::Error| KeyStoreError::Io {
        path: path.to_owned(),
        source,
    };
    let invalid = |reason| KeyStoreError::Invalid {
        path: path.to_owned(),
        reason,
    };
    // NOFOLLOW refuses a symbolic link; NONBLOCK keeps a FIFO from hanging the open.
    let fd = rustix::fs::open(
        path,
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|errno| {
        if errno == rustix::io::Errno::LOOP {
            invalid("a symbolic link is not accepted")
        } else {
            io(errno.into())
        }
    })?;
    let mut file = fs::File::from(fd);
    let meta = file.metadata().map_err(io)?;
    if !meta.is_file() {
        return Err(invalid("not a regular file"));
    }
    check_owned_private(path, &meta, "600")?;
    if meta.nlink() != 1 {
        return Err(invalid("the file has other names (hard links)"));
    }
    let cap = usize::try_from(MAX_KEY_FILE_LEN).unwrap_or(usize::MAX);
    let mut bytes = Zeroizing::new(Vec::with_capacity(cap + 1));
    (&mut file)
        .take(MAX_KEY_FILE_LEN + 1)
        .read_to_end(&mut bytes)
        .map_err(io)?;
    if bytes.len() > cap {
        return Err(invalid("too large"));
    }
    serde_json::from_slice(&bytes).map_err(|_| invalid("not the expected JSON"))
}

/// Writes `file` to `path` atomically: a fresh 0600 file beside it, synced,
/// renamed over it, and the folder synced so the rename survives a crash.
fn write_key_file(path: &Path, file: &KeyFile) -> Result<(), KeyStoreError> {
    let io = |source| KeyStoreError::Io {
        path: path.to_owned(),
        source,
    };
    let cap = usize::try_from(MAX_KEY_FILE_LEN).unwrap_or(usize::MAX);
    // Sized up front so that no reallocation leaves key bytes behind.
    let mut bytes = Zeroizing::new(Vec::with_capacity(cap));
    serde_json::to_writer_pretty(&mut *bytes, file).map_err(|e| io(e.into()))?;
    // A name of this process's own; create_new refuses to follow or reuse anything.
    let temporary = path.with_extension(format!("json.{}.new", std::process::id()));
    let mut out = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&temporary)
        .map_err(io)?;
    out.write_all(&bytes).map_err(io)?;
    out.sync_all().map_err(io)?;
    fs::rename(&temporary, path).map_err(io)?;
    if let Some(folder) = path.parent() {
        fs::File::open(folder)
            .and_then(|f| f.sync_all())
            .map_err(io)?;
    }
    Ok(())
}
