//! The key store on a real file system.

use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::time::Duration;

use atlogin_core::jose::Algorithm;
use atlogin_core::jose::crypto::DefaultProvider;
use atlogin_core::jose::jwk::JwkSet;
use atlogin_core::jose::jws::Verifier;
use atlogin_core::time::UnixTime;
use atlogin_server::keys::{KeySet, KeyStore, KeyStoreError, StoredKey};
use serde_json::json;

fn rng(seed: u8) -> chacha20::ChaCha20Rng {
    use rand_core::SeedableRng;
    chacha20::ChaCha20Rng::from_seed([seed; 32])
}

const T0: UnixTime = UnixTime::from_secs(1_800_000_000);

fn store(dir: &Path) -> KeyStore {
    KeyStore::open(dir, DefaultProvider::get()).expect("store opens")
}

fn kids(keys: &[StoredKey]) -> Vec<(Algorithm, String)> {
    keys.iter()
        .map(|k| (k.signing.algorithm(), k.kid().to_owned()))
        .collect()
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).expect("metadata").permissions().mode() & 0o777
}

#[test]
fn first_start_generates_private_files_and_later_starts_load_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let first = store(dir.path())
        .load_or_generate(KeySet::IdToken, T0, &mut rng(1))
        .expect("generated");
    let mut algs: Vec<&str> = first
        .iter()
        .map(|k| k.signing.algorithm().as_str())
        .collect();
    algs.sort_unstable();
    assert_eq!(algs, ["ES256", "RS256"]);
    let client = store(dir.path())
        .load_or_generate(KeySet::AtprotoClient, T0, &mut rng(2))
        .expect("generated");
    assert_eq!(client.len(), 1);
    assert_eq!(client[0].signing.algorithm(), Algorithm::Es256);

    assert_eq!(mode(&dir.path().join("keys")), 0o700);
    for set in ["id-token", "atproto-client"] {
        let folder = dir.path().join("keys").join(set);
        assert_eq!(mode(&folder), 0o700);
        for entry in fs::read_dir(&folder).expect("folder") {
            assert_eq!(mode(&entry.expect("entry").path()), 0o600);
        }
    }

    // A restart (another RNG, so nothing could be regenerated the same) loads
    // the same keys.
    let again = store(dir.path())
        .load_or_generate(KeySet::IdToken, T0, &mut rng(9))
        .expect("loaded");
    assert_eq!(kids(&again), kids(&first));
    // The two sets are separate.
    assert!(!kids(&again).iter().any(|(_, kid)| kid == client[0].kid()));

    // A loaded key signs what the published key verifies.
    for key in &again {
        let token = key
            .signing
            .sign(Some("JWT"), &json!({"sub": "did:plc:abc"}))
            .expect("signs");
        let jwks = JwkSet::new(again.iter().map(|k| k.signing.public_jwk()).collect());
        let verified = Verifier::new(DefaultProvider::get())
            .with_algorithms(&[Algorithm::Rs256, Algorithm::Es256])
            .verify(&token, &jwks)
            .expect("verifies");
        assert_eq!(verified.header().kid.as_deref(), Some(key.kid()));
    }
}

#[test]
fn rotation_adds_current_keys_and_retires_the_old_after_the_grace() {
    let dir = tempfile::tempdir().expect("tempdir");
    let keys = store(dir.path());
    let old = keys
        .load_or_generate(KeySet::AtprotoClient, T0, &mut rng(1))
        .expect("generated");
    let later = T0.saturating_add(Duration::from_secs(60));
    let fresh = keys
        .rotate(
            KeySet::AtprotoClient,
            later,
            Duration::from_secs(3600),
            &mut rng(2),
        )
        .expect("rotated");
    assert_eq!(fresh.len(), 1);
    assert_ne!(fresh[0].kid(), old[0].kid());

    // During the grace both are published, the new one last (the one that signs).
    let during = keys
        .load_or_generate(KeySet::AtprotoClient, later, &mut rng(3))
        .expect("loaded");
    assert_eq!(
        kids(&during),
        [kids(&old)[0].clone(), kids(&fresh)[0].clone()]
    );
    assert!(during[0].retires.is_some() && during[1].retires.is_none());

    // After it, only the new one.
    let after = later.saturating_add(Duration::from_secs(3600));
    let published = keys
        .load_or_generate(KeySet::AtprotoClient, after, &mut rng(4))
        .expect("loaded");
    assert_eq!(kids(&published), kids(&fresh));
}

#[test]
fn refuses_key_files_others_can_read() {
    let dir = tempfile::tempdir().expect("tempdir");
    let keys = store(dir.path());
    let made = keys
        .load_or_generate(KeySet::AtprotoClient, T0, &mut rng(1))
        .expect("generated");
    let path = dir
        .path()
        .join("keys/atproto-client")
        .join(format!("{}.json", made[0].kid()));
    fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).expect("chmod");
    let error = keys.load(KeySet::AtprotoClient).expect_err("refused");
    assert!(
        matches!(error, KeyStoreError::Exposed { mode: 0o644, .. }),
        "{error}"
    );
    assert!(error.to_string().contains("chmod 600"), "{error}");
}

#[test]
fn refuses_a_key_file_whose_kid_is_not_its_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let keys = store(dir.path());
    let made = keys
        .load_or_generate(KeySet::AtprotoClient, T0, &mut rng(1))
        .expect("generated");
    let folder = dir.path().join("keys/atproto-client");
    let path = folder.join(format!("{}.json", made[0].kid()));
    let mut file: serde_json::Value =
        serde_json::from_slice(&fs::read(&path).expect("read")).expect("json");
    file["kid"] = json!("someone-else");
    fs::write(&path, serde_json::to_vec(&file).expect("json")).expect("write");
    let error = keys.load(KeySet::AtprotoClient).expect_err("refused");
    assert!(error.to_string().contains("kid does not match"), "{error}");
}

#[test]
fn debug_output_shows_no_key_material() {
    let dir = tempfile::tempdir().expect("tempdir");
    let made = store(dir.path())
        .load_or_generate(KeySet::IdToken, T0, &mut rng(1))
        .expect("generated");
    for key in &made {
        let path = dir
            .path()
            .join("keys/id-token")
            .join(format!("{}.json", key.kid()));
        let file: serde_json::Value =
            serde_json::from_slice(&fs::read(&path).expect("read")).expect("json");
        let private = file["d"]
            .as_str()
            .or(file["pkcs8"].as_str())
            .expect("the private key is stored");
        let debug = format!("{key:?}");
        assert!(debug.contains(key.kid()), "{debug}");
        assert!(!debug.contains(&private[..24]), "{debug}");
    }
}

#[test]
fn the_newest_current_key_signs_even_when_made_in_the_same_second() {
    let dir = tempfile::tempdir().expect("tempdir");
    let keys = store(dir.path());
    let old = keys
        .load_or_generate(KeySet::IdToken, T0, &mut rng(1))
        .expect("generated");
    // Rotated in the very second the first keys were made.
    let fresh = keys
        .rotate(KeySet::IdToken, T0, Duration::from_secs(3600), &mut rng(2))
        .expect("rotated");
    let published = keys
        .load_or_generate(KeySet::IdToken, T0, &mut rng(3))
        .expect("loaded");
    assert_eq!(published.len(), 4);
    // Per algorithm, the last key (the one core signs with) is the fresh one.
    for alg in [Algorithm::Rs256, Algorithm::Es256] {
        let last = published
            .iter()
            .rev()
            .find(|k| k.signing.algorithm() == alg)
            .expect("a key");
        assert!(fresh.iter().any(|f| f.kid() == last.kid()), "{alg:?}");
        assert!(old.iter().all(|o| o.kid() != last.kid()), "{alg:?}");
    }
}

#[test]
fn refuses_symbolic_links_misnamed_files_and_foreign_algorithms() {
    let dir = tempfile::tempdir().expect("tempdir");
    let keys = store(dir.path());
    let made = keys
        .load_or_generate(KeySet::IdToken, T0, &mut rng(1))
        .expect("generated");
    let id_folder = dir.path().join("keys/id-token");
    let client_folder = dir.path().join("keys/atproto-client");
    fs::create_dir_all(&client_folder).expect("folder");
    fs::set_permissions(&client_folder, fs::Permissions::from_mode(0o700)).expect("chmod");
    let rsa = made
        .iter()
        .find(|k| k.signing.algorithm() == Algorithm::Rs256)
        .expect("rsa");
    let rsa_path = id_folder.join(format!("{}.json", rsa.kid()));

    // An RS256 key placed among the atproto client's ES256 keys.
    let foreign = client_folder.join(format!("{}.json", rsa.kid()));
    fs::copy(&rsa_path, &foreign).expect("copy");
    fs::set_permissions(&foreign, fs::Permissions::from_mode(0o600)).expect("chmod");
    let error = keys.load(KeySet::AtprotoClient).expect_err("refused");
    assert!(
        error.to_string().contains("no key of that algorithm"),
        "{error}"
    );
    fs::remove_file(&foreign).expect("rm");

    // A symbolic link to a valid key file.
    let link = client_folder.join("link.json");
    std::os::unix::fs::symlink(&rsa_path, &link).expect("symlink");
    let error = keys.load(KeySet::AtprotoClient).expect_err("refused");
    assert!(error.to_string().contains("symbolic link"), "{error}");
    fs::remove_file(&link).expect("rm");

    // A valid key under another key's name.
    let es = made
        .iter()
        .find(|k| k.signing.algorithm() == Algorithm::Es256)
        .expect("es");
    let misnamed = id_folder.join("misnamed.json");
    fs::copy(id_folder.join(format!("{}.json", es.kid())), &misnamed).expect("copy");
    fs::set_permissions(&misnamed, fs::Permissions::from_mode(0o600)).expect("chmod");
    let error = keys.load(KeySet::IdToken).expect_err("refused");
    assert!(error.to_string().contains("kid does not match"), "{error}");
}
