//! The provider's parsers of untrusted input: the authorization request query,
//! the token request form with its Authorization header, and client
//! authentication, including the verification of client assertions.
#![no_main]

use std::sync::LazyLock;

use atlogin_core::jose::{DefaultProvider, EcPrivateKey, JwkSet, JwsSigningKey, RsaPrivateKeyDer};
use atlogin_core::provider::{
    ClientAuth, ClientSecret, ProviderConfig, RegisteredClient, StoredSecret, authenticate_client,
    authorize, bearer_token, parse_token_request,
};
use atlogin_core::secret::SecretBytes;
use atlogin_core::time::UnixTime;
use libfuzzer_sys::fuzz_target;

/// A provider with one secret client and one `private_key_jwt` client.
static CONFIG: LazyLock<ProviderConfig> = LazyLock::new(|| {
    let provider = DefaultProvider::get();
    let der = RsaPrivateKeyDer::Pkcs8(SecretBytes::new(
        include_bytes!("../../core/testdata/rfc7515-a2-rsa.pkcs8.der").to_vec(),
    ));
    let rs = JwsSigningKey::new(provider.load_rs256(&der).expect("fixed key")).with_kid("rs-1");
    let client_key = EcPrivateKey::from_scalar(&[7; 32]).expect("fixed scalar");
    let client_key =
        JwsSigningKey::new(provider.load_es256(&client_key).expect("fixed key")).with_kid("c");
    let mas = RegisteredClient::new(
        "mas",
        vec!["https://mas.example.com/cb".into()],
        ClientAuth::ClientSecretBasic(StoredSecret::Plain(ClientSecret::new("secret-0123456789"))),
    );
    let jwt = RegisteredClient::new(
        "jwt",
        vec!["https://jwt.example.com/cb".into()],
        ClientAuth::PrivateKeyJwt(JwkSet::new(vec![client_key.public_jwk()])),
    );
    ProviderConfig::new("https://atlogin.example.org/", vec![rs], vec![mas, jwt])
        .expect("fixed config")
});

fuzz_target!(|data: &[u8]| {
    let now = UnixTime::from_secs(1_700_000_000);
    // The first line is the Authorization header, the rest the body.
    let (header, body) = match data.iter().position(|b| *b == b'\n') {
        Some(split) => (std::str::from_utf8(&data[..split]).ok(), &data[split + 1..]),
        None => (None, data),
    };
    if let Ok(query) = std::str::from_utf8(data) {
        let _ = authorize(&CONFIG, query, now);
    }
    if let Ok(request) = parse_token_request(body, header) {
        let _ = request.lookup_key();
        let _ = authenticate_client(&CONFIG, &request.auth, now, DefaultProvider::get());
    }
    let _ = bearer_token(header, Some(body));
});
