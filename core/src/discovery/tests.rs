//! Flow tests: discovery against scripted answers, asserting the exact requests.

use serde_json::json;

use super::*;

type Out = Result<AuthorizationServer, DiscoveryError>;

const PDS: &str = "https://pds.example.com";
const ISSUER: &str = "https://entryway.example.com";

fn url(text: &str) -> Url {
    Url::parse(text).expect("valid url")
}

#[expect(
    clippy::unnecessary_wraps,
    reason = "answers are fed to the machine as results"
)]
fn json_response(status: u16, body: &Value) -> Result<Response, TransportError> {
    let mut response = http::Response::new(serde_json::to_vec(body).expect("json"));
    *response.status_mut() = http::StatusCode::from_u16(status).expect("status");
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json; charset=utf-8"),
    );
    Ok(response)
}

fn resource_metadata(resource: &str, issuer: &str) -> Value {
    json!({
        "resource": resource,
        "authorization_servers": [issuer],
        "scopes_supported": [],
        "bearer_methods_supported": ["header"],
        "resource_documentation": "https://atproto.com",
    })
}

/// Shaped like the metadata @atproto/pds serves (see shared/notes/real-pds.md).
fn server_metadata(issuer: &str) -> Value {
    let algs = [
        "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES256K", "ES384", "ES512",
    ];
    json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/oauth/authorize"),
        "token_endpoint": format!("{issuer}/oauth/token"),
        "pushed_authorization_request_endpoint": format!("{issuer}/oauth/par"),
        "require_pushed_authorization_requests": true,
        "revocation_endpoint": format!("{issuer}/oauth/revoke"),
        "jwks_uri": format!("{issuer}/oauth/jwks"),
        "scopes_supported": ["atproto", "transition:email", "transition:generic", "transition:chat.bsky"],
        "response_types_supported": ["code"],
        "response_modes_supported": ["query", "fragment", "form_post"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["none", "private_key_jwt"],
        "token_endpoint_auth_signing_alg_values_supported": algs,
        "dpop_signing_alg_values_supported": algs,
        "request_object_signing_alg_values_supported": ["none", "ES256"],
        "client_id_metadata_document_supported": true,
        "authorization_response_iss_parameter_supported": true,
        "request_parameter_supported": true,
        "request_uri_parameter_supported": true,
        "require_request_uri_registration": true,
        "prompt_values_supported": ["none", "login", "consent", "select_account", "create"],
        "subject_types_supported": ["public"],
    })
}

fn drain(machine: &mut AuthServerDiscovery) -> Vec<Action<Out>> {
    std::iter::from_fn(|| machine.poll()).collect()
}

/// The one GET the machine wants now: its id and URL, with the limits checked.
fn next_fetch(machine: &mut AuthServerDiscovery) -> (RequestId, String) {
    let actions = drain(machine);
    let [Action::Fetch(fetch)] = actions.as_slice() else {
        panic!("expected one fetch, got {actions:?}")
    };
    assert_eq!(fetch.request.method(), http::Method::GET);
    assert_eq!(
        fetch.request.headers()[http::header::ACCEPT],
        "application/json"
    );
    assert_eq!(
        fetch.limits,
        FetchLimits {
            max_body_len: 64 * 1024,
            max_redirects: 0
        }
    );
    (fetch.id, fetch.request.uri().to_string())
}

fn result(machine: &mut AuthServerDiscovery) -> Out {
    let mut actions = drain(machine);
    assert_eq!(actions.len(), 1, "{actions:?}");
    match actions.pop() {
        Some(Action::Done(out)) => out,
        other => panic!("expected the result, got {other:?}"),
    }
}

/// Runs discovery from the PDS with the given answers.
fn discover(
    resource: Result<Response, TransportError>,
    server: Option<Result<Response, TransportError>>,
) -> Out {
    let mut machine = AuthServerDiscovery::from_pds(&url(PDS), Mode::Production).expect("valid");
    let (id, fetched) = next_fetch(&mut machine);
    assert_eq!(
        fetched,
        "https://pds.example.com/.well-known/oauth-protected-resource"
    );
    machine.handle_response(id, resource);
    if let Some(server) = server {
        let (id, fetched) = next_fetch(&mut machine);
        assert_eq!(
            fetched,
            "https://entryway.example.com/.well-known/oauth-authorization-server"
        );
        machine.handle_response(id, server);
    }
    result(&mut machine)
}

fn discover_server(metadata: &Value) -> Out {
    discover(
        json_response(200, &resource_metadata(PDS, ISSUER)),
        Some(json_response(200, metadata)),
    )
}

#[test]
fn from_a_pds_to_checked_metadata() {
    let found = discover_server(&server_metadata(ISSUER)).expect("discovers");
    assert_eq!(found.resource, Some(url(PDS)));
    let metadata = found.metadata;
    assert_eq!(metadata.issuer, ISSUER);
    assert_eq!(
        metadata.authorization_endpoint,
        url("https://entryway.example.com/oauth/authorize")
    );
    assert_eq!(
        metadata.token_endpoint,
        url("https://entryway.example.com/oauth/token")
    );
    assert_eq!(
        metadata.pushed_authorization_request_endpoint,
        url("https://entryway.example.com/oauth/par")
    );
    assert_eq!(
        metadata.revocation_endpoint,
        Some(url("https://entryway.example.com/oauth/revoke"))
    );
    assert!(
        metadata
            .scopes_supported
            .contains(&"transition:email".to_owned())
    );
    assert!(
        metadata
            .dpop_signing_alg_values_supported
            .contains(&"ES256".to_owned())
    );
}

#[test]
fn resource_metadata_failures() {
    let cases: Vec<(Result<Response, TransportError>, String)> = vec![
        (json_response(404, &json!({})), "https://pds.example.com/.well-known/oauth-protected-resource answered HTTP 404".into()),
        (json_response(301, &json!({})), "https://pds.example.com/.well-known/oauth-protected-resource answered HTTP 301".into()),
        (json_response(201, &resource_metadata(PDS, ISSUER)), "https://pds.example.com/.well-known/oauth-protected-resource answered HTTP 201".into()),
        (Err(TransportError::Timeout), "could not fetch https://pds.example.com/.well-known/oauth-protected-resource: timed out".into()),
        (Ok(http::Response::new(b"{}".to_vec())), "https://pds.example.com/.well-known/oauth-protected-resource did not answer with JSON".into()),
    ];
    for (answer, message) in cases {
        assert_eq!(
            discover(answer, None).expect_err("fails").to_string(),
            message
        );
    }
    let prefix = "the protected resource metadata of https://pds.example.com is not acceptable: ";
    for (metadata, problem) in [
        (
            resource_metadata("https://other.example.com", ISSUER),
            "it names the resource https://other.example.com, not https://pds.example.com",
        ),
        (
            resource_metadata("https://pds.example.com/xrpc", ISSUER),
            "it names the resource https://pds.example.com/xrpc, not https://pds.example.com",
        ),
        (
            resource_metadata("https://pds.example.com/#x", ISSUER),
            "it names the resource https://pds.example.com/#x, not https://pds.example.com",
        ),
        (json!({"resource": PDS}), "it names no authorization server"),
        (
            json!({"resource": PDS, "authorization_servers": []}),
            "it names no authorization server",
        ),
        (
            json!({"resource": PDS, "authorization_servers": [ISSUER, "https://b.example.com"]}),
            "it names more than one authorization server",
        ),
        (
            json!({"resource": PDS, "authorization_servers": ISSUER}),
            "it is not well-formed (authorization_servers is not an array)",
        ),
        (
            json!({"resource": PDS, "authorization_servers": [7]}),
            "it is not well-formed (authorization_servers holds a non-string)",
        ),
        (
            json!({"authorization_servers": [ISSUER]}),
            "it is not well-formed (no resource)",
        ),
        (
            resource_metadata(PDS, "http://entryway.example.com"),
            "its authorization server http://entryway.example.com is unusable: plain http is allowed in development only",
        ),
        (
            resource_metadata(PDS, "https://entryway.example.com/"),
            "its authorization server https://entryway.example.com/ is unusable: not written as a bare origin (no trailing slash, default port, lower case)",
        ),
        (
            resource_metadata(PDS, "https://entryway.example.com/oauth"),
            "its authorization server https://entryway.example.com/oauth is unusable: a path is not allowed",
        ),
        (
            resource_metadata(PDS, "https://entryway.example.com:8443"),
            "its authorization server https://entryway.example.com:8443 is unusable: a port other than the default is allowed in development only",
        ),
    ] {
        let err = discover(json_response(200, &metadata), None).expect_err("fails");
        assert_eq!(err.to_string(), format!("{prefix}{problem}"), "{metadata}");
    }
    // The resource may be written with or without the trailing slash.
    assert!(discover_server(&server_metadata(ISSUER)).is_ok());
    let slash = discover(
        json_response(200, &resource_metadata("https://pds.example.com/", ISSUER)),
        Some(json_response(200, &server_metadata(ISSUER))),
    );
    assert!(slash.is_ok());
}

#[test]
#[expect(clippy::too_many_lines, reason = "a table with one row per rule")]
fn every_server_metadata_rule_is_enforced() {
    let prefix =
        "the authorization server metadata of https://entryway.example.com is not acceptable: ";
    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "issuer",
            json!("https://entryway.example.com/"),
            "its issuer https://entryway.example.com/ does not match https://entryway.example.com",
        ),
        (
            "issuer",
            json!("https://evil.example.com"),
            "its issuer https://evil.example.com does not match https://entryway.example.com",
        ),
        (
            "response_types_supported",
            json!(["token"]),
            "its response_types_supported does not include code",
        ),
        (
            "grant_types_supported",
            json!(["authorization_code"]),
            "its grant_types_supported does not include refresh_token",
        ),
        (
            "grant_types_supported",
            json!(["refresh_token"]),
            "its grant_types_supported does not include authorization_code",
        ),
        (
            "code_challenge_methods_supported",
            json!(["plain"]),
            "its code_challenge_methods_supported does not include S256",
        ),
        (
            "token_endpoint_auth_methods_supported",
            json!(["private_key_jwt"]),
            "its token_endpoint_auth_methods_supported does not include none",
        ),
        (
            "token_endpoint_auth_methods_supported",
            json!(["none"]),
            "its token_endpoint_auth_methods_supported does not include private_key_jwt",
        ),
        (
            "token_endpoint_auth_signing_alg_values_supported",
            json!(["RS256"]),
            "its token_endpoint_auth_signing_alg_values_supported does not include ES256",
        ),
        (
            "token_endpoint_auth_signing_alg_values_supported",
            json!(["ES256", "none"]),
            "its token_endpoint_auth_signing_alg_values_supported includes none",
        ),
        (
            "scopes_supported",
            json!(["openid"]),
            "its scopes_supported does not include atproto",
        ),
        (
            "authorization_response_iss_parameter_supported",
            json!(false),
            "it does not set authorization_response_iss_parameter_supported to true",
        ),
        (
            "require_pushed_authorization_requests",
            json!(false),
            "it does not set require_pushed_authorization_requests to true",
        ),
        (
            "dpop_signing_alg_values_supported",
            json!(["RS256"]),
            "its dpop_signing_alg_values_supported does not include ES256",
        ),
        (
            "client_id_metadata_document_supported",
            json!("true"),
            "it does not set client_id_metadata_document_supported to true",
        ),
        (
            "require_request_uri_registration",
            json!(false),
            "it sets require_request_uri_registration to false",
        ),
        (
            "pushed_authorization_request_endpoint",
            json!("http://entryway.example.com/oauth/par"),
            "its pushed_authorization_request_endpoint is unusable: plain http is allowed in development only",
        ),
        (
            "token_endpoint",
            json!("https://entryway.example.com/oauth/token#x"),
            "its token_endpoint is unusable: a fragment is not allowed",
        ),
        (
            "token_endpoint",
            json!("https://entryway.example.com:8443/oauth/token"),
            "its token_endpoint is unusable: a port other than the default is allowed in development only",
        ),
        (
            "token_endpoint",
            json!("https://user@entryway.example.com/oauth/token"),
            "its token_endpoint is unusable: user info is not allowed",
        ),
        (
            "authorization_endpoint",
            json!("/oauth/authorize"),
            "its authorization_endpoint is unusable: not a URL",
        ),
        (
            "revocation_endpoint",
            json!(7),
            "its revocation_endpoint is unusable: not a string",
        ),
        (
            "scopes_supported",
            json!("atproto"),
            "it is not well-formed (a supported-values member is not an array)",
        ),
        (
            "scopes_supported",
            json!(["atproto", 1]),
            "it is not well-formed (a supported-values list holds a non-string)",
        ),
    ];
    for (field, value, problem) in cases {
        let mut metadata = server_metadata(ISSUER);
        metadata[field] = value;
        let err = discover_server(&metadata).expect_err(field);
        assert_eq!(err.to_string(), format!("{prefix}{problem}"), "{field}");
    }
}

#[test]
fn required_server_metadata_members_must_be_present() {
    for field in [
        "issuer",
        "response_types_supported",
        "require_pushed_authorization_requests",
        "pushed_authorization_request_endpoint",
        "token_endpoint",
        "authorization_endpoint",
        "client_id_metadata_document_supported",
        "dpop_signing_alg_values_supported",
        "authorization_response_iss_parameter_supported",
    ] {
        let mut metadata = server_metadata(ISSUER);
        metadata.as_object_mut().expect("object").remove(field);
        assert!(
            discover_server(&metadata).is_err(),
            "missing {field} must fail"
        );
    }
    // Optional members may be absent.
    let mut metadata = server_metadata(ISSUER);
    for field in ["revocation_endpoint", "require_request_uri_registration"] {
        metadata.as_object_mut().expect("object").remove(field);
    }
    assert_eq!(
        discover_server(&metadata)
            .expect("discovers")
            .metadata
            .revocation_endpoint,
        None
    );
}

#[test]
fn server_metadata_answers_are_checked_too() {
    let resource = json_response(200, &resource_metadata(PDS, ISSUER));
    let err = discover(resource, Some(json_response(404, &json!({})))).expect_err("fails");
    assert_eq!(
        err.to_string(),
        "https://entryway.example.com/.well-known/oauth-authorization-server answered HTTP 404"
    );
    let resource = json_response(200, &resource_metadata(PDS, ISSUER));
    let big = Err(TransportError::BodyTooLarge(MAX_METADATA_LEN));
    let err = discover(resource, Some(big)).expect_err("fails");
    assert_eq!(
        err.to_string(),
        "could not fetch https://entryway.example.com/.well-known/oauth-authorization-server: the response was larger than 65536 bytes"
    );
    let resource = json_response(200, &resource_metadata(PDS, ISSUER));
    let mut dup =
        http::Response::new(br#"{"issuer":"https://entryway.example.com","issuer":"x"}"#.to_vec());
    dup.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    let err = discover(resource, Some(Ok(dup))).expect_err("fails");
    assert!(
        err.to_string()
            .ends_with("it is not well-formed (not a JSON object)"),
        "{err}"
    );
}

#[test]
fn a_typed_entryway_url_falls_back_to_its_own_metadata() {
    let mut machine = AuthServerDiscovery::from_service_url(
        &url("https://entryway.example.com/some/path?q"),
        Mode::Production,
    )
    .expect("valid url");
    let (id, fetched) = next_fetch(&mut machine);
    assert_eq!(
        fetched,
        "https://entryway.example.com/.well-known/oauth-protected-resource"
    );
    machine.handle_response(id, json_response(404, &json!({"error": "NotFound"})));
    let (id, fetched) = next_fetch(&mut machine);
    assert_eq!(
        fetched,
        "https://entryway.example.com/.well-known/oauth-authorization-server"
    );
    machine.handle_response(id, json_response(200, &server_metadata(ISSUER)));
    let found = result(&mut machine).expect("discovers");
    assert_eq!(found.resource, None);
    assert_eq!(found.metadata.issuer, ISSUER);
}

#[test]
fn a_typed_pds_url_is_discovered_like_a_resolved_one() {
    let mut machine =
        AuthServerDiscovery::from_service_url(&url("https://pds.example.com/"), Mode::Production)
            .expect("valid url");
    let (id, _) = next_fetch(&mut machine);
    machine.handle_response(id, json_response(200, &resource_metadata(PDS, ISSUER)));
    let (id, fetched) = next_fetch(&mut machine);
    assert_eq!(
        fetched,
        "https://entryway.example.com/.well-known/oauth-authorization-server"
    );
    machine.handle_response(id, json_response(200, &server_metadata(ISSUER)));
    assert_eq!(
        result(&mut machine).expect("discovers").resource,
        Some(url(PDS))
    );

    // Only a 404 means "this is the authorization server itself".
    let mut machine =
        AuthServerDiscovery::from_service_url(&url(PDS), Mode::Production).expect("valid url");
    let (id, _) = next_fetch(&mut machine);
    machine.handle_response(id, json_response(500, &json!({})));
    assert!(matches!(
        result(&mut machine),
        Err(DiscoveryError::Status { status: 500, .. })
    ));
}

#[test]
fn typed_urls_follow_the_mode() {
    for typed in [
        "http://pds.example.com",
        "https://pds.example.com:8443",
        "ftp://pds.example.com",
    ] {
        assert!(
            AuthServerDiscovery::from_service_url(&url(typed), Mode::Production).is_err(),
            "{typed}"
        );
    }
    assert!(
        AuthServerDiscovery::from_service_url(&url("http://localhost:2583"), Mode::Development)
            .is_ok()
    );
}

#[test]
fn the_local_development_world() {
    // The shape of the real PDS on loopback (shared/notes/real-pds.md).
    let pds = "http://localhost:2583";
    let mut machine = AuthServerDiscovery::from_pds(&url(pds), Mode::Development).expect("valid");
    let (id, fetched) = next_fetch(&mut machine);
    assert_eq!(
        fetched,
        "http://localhost:2583/.well-known/oauth-protected-resource"
    );
    machine.handle_response(id, json_response(200, &resource_metadata(pds, pds)));
    let (id, fetched) = next_fetch(&mut machine);
    assert_eq!(
        fetched,
        "http://localhost:2583/.well-known/oauth-authorization-server"
    );
    machine.handle_response(id, json_response(200, &server_metadata(pds)));
    assert_eq!(
        result(&mut machine).expect("discovers").metadata.issuer,
        pds
    );

    // In production, such a PDS is refused before anything is fetched, and a PDS
    // that names such an issuer is refused when it does.
    let err = AuthServerDiscovery::from_pds(&url(pds), Mode::Production).expect_err("http");
    assert_eq!(
        err.to_string(),
        "cannot discover an authorization server from http://localhost:2583/: plain http is allowed in development only"
    );
    let mut machine = AuthServerDiscovery::from_pds(&url(PDS), Mode::Production).expect("valid");
    let (id, _) = next_fetch(&mut machine);
    machine.handle_response(id, json_response(200, &resource_metadata(PDS, pds)));
    assert!(matches!(
        result(&mut machine),
        Err(DiscoveryError::ProtectedResource { .. })
    ));
}

#[test]
fn unknown_and_late_answers_are_ignored() {
    let mut machine = AuthServerDiscovery::from_pds(&url(PDS), Mode::Production).expect("valid");
    let (id, _) = next_fetch(&mut machine);
    machine.handle_response(
        RequestId(99),
        json_response(200, &resource_metadata(PDS, "https://evil.example.com")),
    );
    machine.handle_txt(id, TxtAnswer::NoRecords);
    assert!(drain(&mut machine).is_empty());
    machine.handle_response(id, json_response(200, &resource_metadata(PDS, ISSUER)));
    let (server, _) = next_fetch(&mut machine);
    machine.handle_response(id, json_response(200, &resource_metadata(PDS, ISSUER)));
    assert!(drain(&mut machine).is_empty());
    machine.handle_response(server, json_response(200, &server_metadata(ISSUER)));
    assert!(result(&mut machine).is_ok());
    machine.handle_response(server, json_response(200, &server_metadata(ISSUER)));
    assert!(machine.poll().is_none());
}

#[test]
fn parsers_refuse_oversized_documents() {
    let big = vec![b' '; MAX_METADATA_LEN + 1];
    assert_eq!(
        parse_protected_resource(&big, &url(PDS), Mode::Production),
        Err(ResourceMetadataError::Malformed("larger than 64 KiB"))
    );
    assert_eq!(
        AuthServerMetadata::parse(&big, ISSUER, Mode::Production),
        Err(ServerMetadataError::Malformed("larger than 64 KiB"))
    );
}
