//! Stores authorization codes in an atlogin state directory's SQLite database,
//! as the server stores them when a sign-in finishes, for `scripts/bench-server`'s
//! token-endpoint load: each code is redeemable once by the relying party
//! `mas` with the PKCE verifier below.
//!
//!   mint-codes <state-dir> <issuer> <count> <codes-file>
//!
//! For benchmarks only: the codes come from a seeded generator.

use std::io::Write as _;
use std::time::Duration;

use atlogin_core::identity::{Did, Handle, Mode};
use atlogin_core::jose::{DefaultProvider, JwsSigningKey, RsaPrivateKeyDer};
use atlogin_core::provider::{
    AuthenticatedUser, ClientAuth, ClientSecret, Lifetimes, ProviderConfig, RegisteredClient,
    StoredSecret, authorize, issue_code, storage_key,
};
use atlogin_core::secret::SecretBytes;
use atlogin_core::time::UnixTime;
use atlogin_server::store::{Batch, Kind, Put, SqliteStore, Store};
use rand_core::SeedableRng;

const REDIRECT: &str = "https://mas.example.com/upstream/callback/01HRPHARNESS00000000000001";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
const RSA_PKCS8: &[u8] = include_bytes!("../../core/testdata/rfc7515-a2-rsa.pkcs8.der");

#[expect(clippy::print_stderr, reason = "a command-line tool's usage line")]
fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, state_dir, issuer, count, out] = args.as_slice() else {
        eprintln!("usage: mint-codes <state-dir> <issuer> <count> <codes-file>");
        std::process::exit(2);
    };
    let count: usize = count.parse().expect("a count");
    #[expect(
        clippy::disallowed_methods,
        reason = "codes are stamped with the present"
    )]
    let now = UnixTime::from_secs(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("after 1970")
            .as_secs(),
    );
    let der = RsaPrivateKeyDer::Pkcs8(SecretBytes::new(RSA_PKCS8.to_vec()));
    let key =
        JwsSigningKey::new(DefaultProvider::get().load_rs256(&der).expect("key")).with_kid("bench");
    let mas = RegisteredClient::new(
        "mas",
        vec![REDIRECT.into()],
        ClientAuth::ClientSecretBasic(StoredSecret::Plain(ClientSecret::new(
            "unused-here-0123456789",
        ))),
    );
    let mut lifetimes = Lifetimes::default();
    lifetimes.code = Duration::from_secs(600);
    let config = ProviderConfig::new(issuer, vec![key], vec![mas])
        .expect("provider config")
        .with_lifetimes(lifetimes);
    let query = format!(
        "response_type=code&client_id=mas&redirect_uri={}&scope=openid%20profile&state=s&nonce=n&code_challenge={CHALLENGE}&code_challenge_method=S256",
        url::form_urlencoded::byte_serialize(REDIRECT.as_bytes()).collect::<String>()
    );
    let pending = authorize(&config, &query, now).expect("authorization request");
    let did = Did::parse("did:plc:ewvi7nxzyoun6zhxrhs64oiz", Mode::Production).expect("did");
    let handle = Handle::parse("alice.example.com", Mode::Production).expect("handle");
    let mut rng = chacha20::ChaCha20Rng::from_seed(
        now.as_secs()
            .to_le_bytes()
            .repeat(4)
            .try_into()
            .expect("32 bytes"),
    );

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let store = rt
        .block_on(SqliteStore::open(
            &std::path::Path::new(state_dir).join("atlogin.sqlite3"),
        ))
        .expect("the state directory's database");
    let mut file = std::io::BufWriter::new(std::fs::File::create(out).expect("codes file"));
    let mut puts = Vec::new();
    for _ in 0..count {
        let user = AuthenticatedUser::new(did.clone(), now).with_handle(Some(handle.clone()));
        let (_, code, grant) = issue_code(&config, &pending, user, now, &mut rng).expect("code");
        writeln!(file, "{}", code.secret()).expect("written");
        puts.push(
            Put::new(
                Kind::Code,
                storage_key(code.secret()),
                serde_json::to_string(&grant).expect("json"),
                grant.expires_at,
            )
            .for_subject(did.as_str()),
        );
        if puts.len() == 2_000 {
            let batch = Batch {
                puts: std::mem::take(&mut puts),
                ..Batch::default()
            };
            assert!(rt.block_on(store.commit(batch, now)).expect("stored"));
        }
    }
    let batch = Batch {
        puts,
        ..Batch::default()
    };
    assert!(rt.block_on(store.commit(batch, now)).expect("stored"));
    file.flush().expect("written");
}
