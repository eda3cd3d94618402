//! Flow tests: the resolver against scripted answers, asserting the exact requests.

use serde_json::json;

use super::*;
use crate::transport::{Action, TransportError, TxtAnswer};

const ALICE_DID: &str = "did:plc:ewvi7nxzyoun6zhxrhs64oiz";
const OTHER_DID: &str = "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa";
const PDS: &str = "https://pds.example.com";

type Out = Result<ResolvedIdentity, IdentityError>;

fn did(text: &str) -> Did {
    Did::parse(text, Mode::Development).expect("valid DID")
}

fn handle(text: &str) -> Handle {
    Handle::parse(text, Mode::Development).expect("valid handle")
}

fn resolver(input: &str, config: IdentityConfig) -> IdentityResolver {
    let mode = config.mode;
    IdentityResolver::new(
        AtIdentifier::parse(input, mode).expect("valid identifier"),
        config,
    )
}

/// Everything the machine wants right now.
fn drain(machine: &mut IdentityResolver) -> Vec<Action<Out>> {
    std::iter::from_fn(|| machine.poll()).collect()
}

/// One GET it wants: (id, url, accept, limits).
fn expect_fetch(action: &Action<Out>) -> (RequestId, String, String, FetchLimits) {
    let Action::Fetch(fetch) = action else {
        panic!("expected a fetch, got {action:?}")
    };
    assert_eq!(fetch.request.method(), http::Method::GET);
    assert!(fetch.request.body().is_empty());
    let accept = fetch.request.headers()[http::header::ACCEPT]
        .to_str()
        .expect("ascii")
        .to_owned();
    (
        fetch.id,
        fetch.request.uri().to_string(),
        accept,
        fetch.limits,
    )
}

fn expect_txt(action: &Action<Out>) -> (RequestId, String) {
    let Action::LookupTxt(lookup) = action else {
        panic!("expected a TXT lookup, got {action:?}")
    };
    (lookup.id, lookup.name.clone())
}

fn expect_done(actions: Vec<Action<Out>>) -> Out {
    match <[Action<Out>; 1]>::try_from(actions) {
        Ok([Action::Done(out)]) => out,
        Ok([other]) => panic!("expected the result, got {other:?}"),
        Err(actions) => panic!("expected one result, got {actions:?}"),
    }
}

#[expect(
    clippy::unnecessary_wraps,
    reason = "answers are fed to the machine as results"
)]
fn response(status: u16, body: impl Into<Vec<u8>>) -> Result<Response, TransportError> {
    let mut response = http::Response::new(body.into());
    *response.status_mut() = http::StatusCode::from_u16(status).expect("status");
    Ok(response)
}

fn document(id: &str, aka: &[&str], pds: &str) -> Result<Response, TransportError> {
    let doc = json!({
        "id": id,
        "alsoKnownAs": aka,
        "service": [{"id": "#atproto_pds", "type": "AtprotoPersonalDataServer", "serviceEndpoint": pds}],
    });
    response(200, serde_json::to_vec(&doc).expect("json"))
}

fn records(values: &[&str]) -> TxtAnswer {
    TxtAnswer::Records(values.iter().map(|v| (*v).to_owned()).collect())
}

/// Starts a handle resolution and checks the two requests it makes at once.
fn start_handle(input: &str) -> (IdentityResolver, RequestId, RequestId) {
    let mut machine = resolver(input, IdentityConfig::default());
    let actions = drain(&mut machine);
    assert_eq!(actions.len(), 2, "{actions:?}");
    let (dns, name) = expect_txt(&actions[0]);
    assert_eq!(name, "_atproto.alice.example.com");
    let (https, url, accept, limits) = expect_fetch(&actions[1]);
    assert_eq!(url, "https://alice.example.com/.well-known/atproto-did");
    assert_eq!(accept, "text/plain");
    assert_eq!(
        limits,
        FetchLimits {
            max_body_len: 4096,
            max_redirects: 3
        }
    );
    (machine, dns, https)
}

/// Checks the machine asks for the PLC document of `did` and answers it.
fn answer_plc(machine: &mut IdentityResolver, did: &str, answer: Result<Response, TransportError>) {
    let actions = drain(machine);
    assert_eq!(actions.len(), 1, "{actions:?}");
    let (id, url, accept, limits) = expect_fetch(&actions[0]);
    assert_eq!(url, format!("https://plc.directory/{did}"));
    assert_eq!(accept, "application/did+ld+json, application/json");
    assert_eq!(
        limits,
        FetchLimits {
            max_body_len: 64 * 1024,
            max_redirects: 0
        }
    );
    machine.handle_response(id, answer);
}

fn alice(handle_verified: bool) -> ResolvedIdentity {
    ResolvedIdentity {
        did: did(ALICE_DID),
        handle: handle_verified.then(|| handle("alice.example.com")),
        pds: Url::parse(PDS).expect("url"),
    }
}

#[test]
fn handle_through_dns() {
    let (mut machine, dns, https) = start_handle("@Alice.Example.com");
    machine.handle_txt(dns, records(&["v=spf1 -all", &format!("did={ALICE_DID}")]));
    answer_plc(
        &mut machine,
        ALICE_DID,
        document(ALICE_DID, &["at://alice.example.com"], PDS),
    );
    assert_eq!(expect_done(drain(&mut machine)), Ok(alice(true)));
    // The well-known answer that comes late changes nothing.
    machine.handle_response(https, response(200, OTHER_DID));
    assert!(machine.poll().is_none());
}

#[test]
fn handle_through_well_known_when_dns_has_nothing() {
    let (mut machine, dns, https) = start_handle("alice.example.com");
    machine.handle_response(https, response(200, format!("  {ALICE_DID}\n")));
    assert!(
        drain(&mut machine).is_empty(),
        "waits for DNS, which wins a disagreement"
    );
    machine.handle_txt(dns, TxtAnswer::NoRecords);
    answer_plc(
        &mut machine,
        ALICE_DID,
        document(ALICE_DID, &["at://alice.example.com"], PDS),
    );
    assert_eq!(expect_done(drain(&mut machine)), Ok(alice(true)));
}

#[test]
fn dns_wins_a_disagreement() {
    let (mut machine, dns, https) = start_handle("alice.example.com");
    machine.handle_response(https, response(200, OTHER_DID));
    machine.handle_txt(dns, records(&[&format!("did={ALICE_DID}")]));
    answer_plc(
        &mut machine,
        ALICE_DID,
        document(ALICE_DID, &["at://alice.example.com"], PDS),
    );
    assert_eq!(expect_done(drain(&mut machine)), Ok(alice(true)));
}

#[test]
fn dns_failure_falls_back_to_well_known() {
    let (mut machine, dns, https) = start_handle("alice.example.com");
    machine.handle_txt(dns, TxtAnswer::Failed("SERVFAIL".into()));
    machine.handle_response(https, response(200, ALICE_DID));
    answer_plc(
        &mut machine,
        ALICE_DID,
        document(ALICE_DID, &["at://alice.example.com"], PDS),
    );
    assert_eq!(expect_done(drain(&mut machine)), Ok(alice(true)));
}

#[test]
fn same_did_twice_in_dns_is_fine_and_different_dids_conflict() {
    let (mut machine, dns, _) = start_handle("alice.example.com");
    machine.handle_txt(
        dns,
        records(&[&format!("did={ALICE_DID}"), &format!("did={ALICE_DID}")]),
    );
    answer_plc(
        &mut machine,
        ALICE_DID,
        document(ALICE_DID, &["at://alice.example.com"], PDS),
    );
    assert_eq!(expect_done(drain(&mut machine)), Ok(alice(true)));

    let (mut machine, dns, _) = start_handle("alice.example.com");
    machine.handle_txt(
        dns,
        records(&[&format!("did={ALICE_DID}"), &format!("did={OTHER_DID}")]),
    );
    let err = expect_done(drain(&mut machine)).expect_err("conflict");
    assert_eq!(
        err,
        IdentityError::ConflictingDnsRecords(handle("alice.example.com"))
    );
    assert_eq!(
        err.to_string(),
        "the DNS TXT records of _atproto.alice.example.com name several different DIDs"
    );
}

#[test]
fn no_record_anywhere() {
    let (mut machine, dns, https) = start_handle("alice.example.com");
    machine.handle_txt(dns, TxtAnswer::NoRecords);
    machine.handle_response(https, response(404, "not found"));
    let err = expect_done(drain(&mut machine)).expect_err("not found");
    assert_eq!(
        err.to_string(),
        "no DNS TXT record and no well-known file for alice.example.com (DNS: no TXT record; HTTPS: HTTP 404)"
    );
}

#[test]
fn unusable_answers_count_as_not_found() {
    let cases = [
        (
            records(&["did=not-a-did"]),
            response(200, "hello"),
            "the did= record is unusable: not a valid DID: does not start with did:",
            "the file holds no usable DID: not a valid DID: does not start with did:",
        ),
        (
            records(&["something=else"]),
            Err(TransportError::Timeout),
            "no did= TXT record",
            "timed out",
        ),
        (
            records(&[]),
            Err(TransportError::BodyTooLarge(4096)),
            "no did= TXT record",
            "the response was larger than 4096 bytes",
        ),
        (
            records(&["did=did:key:zabc"]),
            response(200, "did:key:zabc"),
            "the did= record is unusable: DID method `key` is not supported; atproto uses did:plc and did:web",
            "the file holds no usable DID: DID method `key` is not supported; atproto uses did:plc and did:web",
        ),
        (
            TxtAnswer::NoRecords,
            response(200, vec![0xff, 0xfe]),
            "no TXT record",
            "the file is not text",
        ),
        (
            TxtAnswer::Failed("SERVFAIL".into()),
            response(500, ""),
            "lookup failed: SERVFAIL",
            "HTTP 500",
        ),
    ];
    for (txt, https, dns_why, https_why) in cases {
        let (mut machine, dns, id) = start_handle("alice.example.com");
        machine.handle_txt(dns, txt);
        machine.handle_response(id, https);
        let Err(IdentityError::HandleNotFound(not_found)) = expect_done(drain(&mut machine)) else {
            panic!("expected not found");
        };
        assert_eq!(
            not_found.attempts,
            vec![
                (HandleMethod::Dns, dns_why.to_owned()),
                (HandleMethod::WellKnown, https_why.to_owned())
            ]
        );
        assert!(!not_found.absent);
        assert!(
            not_found
                .to_string()
                .starts_with("could not resolve the handle alice.example.com (")
        );
    }
}

#[test]
fn a_request_not_yet_taken_is_dropped_once_dns_decides() {
    let mut machine = resolver("alice.example.com", IdentityConfig::default());
    let first = machine.poll().expect("an action");
    let (dns, _) = expect_txt(&first);
    machine.handle_txt(dns, records(&[&format!("did={ALICE_DID}")]));
    // The well-known fetch was never taken, so it is not handed out any more.
    answer_plc(
        &mut machine,
        ALICE_DID,
        document(ALICE_DID, &["at://alice.example.com"], PDS),
    );
    assert_eq!(expect_done(drain(&mut machine)), Ok(alice(true)));
}

#[test]
fn a_handle_whose_did_does_not_claim_it_fails() {
    let (mut machine, dns, _) = start_handle("alice.example.com");
    machine.handle_txt(dns, records(&[&format!("did={ALICE_DID}")]));
    answer_plc(
        &mut machine,
        ALICE_DID,
        document(ALICE_DID, &["at://mallory.example.com"], PDS),
    );
    let err = expect_done(drain(&mut machine)).expect_err("mismatch");
    assert_eq!(
        err.to_string(),
        format!(
            "alice.example.com points to {ALICE_DID}, but the DID document of {ALICE_DID} does not claim alice.example.com"
        )
    );
    // The handle is the first valid at:// entry, not any entry.
    let (mut machine, dns, _) = start_handle("alice.example.com");
    machine.handle_txt(dns, records(&[&format!("did={ALICE_DID}")]));
    answer_plc(
        &mut machine,
        ALICE_DID,
        document(
            ALICE_DID,
            &["at://other.example.com", "at://alice.example.com"],
            PDS,
        ),
    );
    assert!(matches!(
        expect_done(drain(&mut machine)),
        Err(IdentityError::HandleMismatch { .. })
    ));
}

#[test]
fn document_failures() {
    let cases: Vec<(Result<Response, TransportError>, &str)> = vec![
        (
            response(404, "DID not registered"),
            "could not fetch the DID document of did:plc:ewvi7nxzyoun6zhxrhs64oiz: no such DID (HTTP 404)",
        ),
        (
            response(410, "tombstoned"),
            "could not fetch the DID document of did:plc:ewvi7nxzyoun6zhxrhs64oiz: no such DID (HTTP 410)",
        ),
        (
            response(500, ""),
            "could not fetch the DID document of did:plc:ewvi7nxzyoun6zhxrhs64oiz: the server answered HTTP 500",
        ),
        (
            response(301, ""),
            "could not fetch the DID document of did:plc:ewvi7nxzyoun6zhxrhs64oiz: the server answered HTTP 301",
        ),
        (
            Err(TransportError::BodyTooLarge(65536)),
            "could not fetch the DID document of did:plc:ewvi7nxzyoun6zhxrhs64oiz: the response was larger than 65536 bytes",
        ),
        (
            document(OTHER_DID, &["at://alice.example.com"], PDS),
            "the DID document of did:plc:ewvi7nxzyoun6zhxrhs64oiz is invalid: its id is did:plc:aaaaaaaaaaaaaaaaaaaaaaaa, not did:plc:ewvi7nxzyoun6zhxrhs64oiz",
        ),
        (
            response(200, "{not json"),
            "the DID document of did:plc:ewvi7nxzyoun6zhxrhs64oiz is invalid: it is not a well-formed DID document (not a JSON object)",
        ),
        (
            document(
                ALICE_DID,
                &["at://alice.example.com"],
                "https://pds.example.com/path",
            ),
            "the DID document of did:plc:ewvi7nxzyoun6zhxrhs64oiz is invalid: its PDS endpoint is unusable: a path is not allowed",
        ),
        (
            response(
                200,
                serde_json::to_vec(
                    &json!({"id": ALICE_DID, "alsoKnownAs": ["at://alice.example.com"]}),
                )
                .expect("json"),
            ),
            "the DID document of did:plc:ewvi7nxzyoun6zhxrhs64oiz names no atproto PDS",
        ),
    ];
    for (answer, message) in cases {
        let (mut machine, dns, _) = start_handle("alice.example.com");
        machine.handle_txt(dns, records(&[&format!("did={ALICE_DID}")]));
        answer_plc(&mut machine, ALICE_DID, answer);
        let err = expect_done(drain(&mut machine)).expect_err("fails");
        assert_eq!(err.to_string(), message);
    }
}

#[test]
fn did_input_verifies_the_claimed_handle() {
    let mut machine = resolver(ALICE_DID, IdentityConfig::default());
    answer_plc(
        &mut machine,
        ALICE_DID,
        document(ALICE_DID, &["at://alice.example.com"], PDS),
    );
    let actions = drain(&mut machine);
    assert_eq!(actions.len(), 2, "{actions:?}");
    let (dns, name) = expect_txt(&actions[0]);
    assert_eq!(name, "_atproto.alice.example.com");
    let (https, url, _, _) = expect_fetch(&actions[1]);
    assert_eq!(url, "https://alice.example.com/.well-known/atproto-did");
    machine.handle_response(https, response(404, ""));
    machine.handle_txt(dns, records(&[&format!("did={ALICE_DID}")]));
    assert_eq!(expect_done(drain(&mut machine)), Ok(alice(true)));
}

#[test]
fn did_input_with_a_handle_that_points_elsewhere_has_no_handle() {
    for (txt, https) in [
        (
            records(&[&format!("did={OTHER_DID}")]),
            response(200, ALICE_DID),
        ),
        (TxtAnswer::NoRecords, response(404, "")),
        (
            records(&[&format!("did={ALICE_DID}"), &format!("did={OTHER_DID}")]),
            response(200, ALICE_DID),
        ),
    ] {
        let mut machine = resolver(ALICE_DID, IdentityConfig::default());
        answer_plc(
            &mut machine,
            ALICE_DID,
            document(ALICE_DID, &["at://alice.example.com"], PDS),
        );
        let actions = drain(&mut machine);
        let (dns, _) = expect_txt(&actions[0]);
        let (id, _, _, _) = expect_fetch(&actions[1]);
        machine.handle_txt(dns, txt);
        machine.handle_response(id, https);
        assert_eq!(expect_done(drain(&mut machine)), Ok(alice(false)));
    }
}

#[test]
fn did_input_without_a_usable_handle_looks_nothing_up() {
    for aka in [
        &[][..],
        &["at://alice.test"][..],
        &["at://alice.local"][..],
        &["https://alice.example.com"][..],
    ] {
        let mut machine = resolver(ALICE_DID, IdentityConfig::default());
        answer_plc(&mut machine, ALICE_DID, document(ALICE_DID, aka, PDS));
        assert_eq!(
            expect_done(drain(&mut machine)),
            Ok(alice(false)),
            "{aka:?}"
        );
    }
}

#[test]
fn did_web_documents() {
    let mut machine = resolver("did:web:alice.example.com", IdentityConfig::default());
    let actions = drain(&mut machine);
    let (id, url, _, limits) = expect_fetch(&actions[0]);
    assert_eq!(url, "https://alice.example.com/.well-known/did.json");
    assert_eq!(limits.max_redirects, 0);
    machine.handle_response(id, document("did:web:alice.example.com", &[], PDS));
    let identity = expect_done(drain(&mut machine)).expect("resolves");
    assert_eq!(identity.did, did("did:web:alice.example.com"));

    let dev = IdentityConfig::default().with_mode(Mode::Development);
    let mut machine = resolver("did:web:localhost%3A8080", dev);
    let (_, url, _, _) = expect_fetch(&drain(&mut machine)[0]);
    assert_eq!(url, "http://localhost:8080/.well-known/did.json");
}

#[test]
fn plc_directory_is_configurable() {
    let plc = Url::parse("http://localhost:2582").expect("url");
    let config = IdentityConfig::new(plc).with_mode(Mode::Development);
    let mut machine = resolver(ALICE_DID, config);
    let (id, url, _, _) = expect_fetch(&drain(&mut machine)[0]);
    assert_eq!(url, format!("http://localhost:2582/{ALICE_DID}"));
    machine.handle_response(
        id,
        document(ALICE_DID, &["at://alice.test"], "http://localhost:2583"),
    );
    // In development, .test handles are looked up too.
    let actions = drain(&mut machine);
    assert_eq!(expect_txt(&actions[0]).1, "_atproto.alice.test");

    let with_path =
        IdentityConfig::new(Url::parse("https://plc.example.com/directory/").expect("url"));
    let mut machine = resolver(ALICE_DID, with_path);
    let (_, url, _, _) = expect_fetch(&drain(&mut machine)[0]);
    assert_eq!(
        url,
        format!("https://plc.example.com/directory/{ALICE_DID}")
    );
}

#[test]
fn resolver_service_replaces_dns_and_well_known() {
    let service = Url::parse("https://resolver.example.com").expect("url");
    let config = IdentityConfig::default().with_handle_resolver(service);
    let mut machine = resolver("alice.example.com", config.clone());
    let actions = drain(&mut machine);
    assert_eq!(actions.len(), 1, "{actions:?}");
    let (id, url, accept, limits) = expect_fetch(&actions[0]);
    assert_eq!(
        url,
        "https://resolver.example.com/xrpc/com.atproto.identity.resolveHandle?handle=alice.example.com"
    );
    assert_eq!(accept, "application/json");
    assert_eq!(limits.max_redirects, 0);
    machine.handle_response(id, response(200, format!(r#"{{"did":"{ALICE_DID}"}}"#)));
    answer_plc(
        &mut machine,
        ALICE_DID,
        document(ALICE_DID, &["at://alice.example.com"], PDS),
    );
    assert_eq!(expect_done(drain(&mut machine)), Ok(alice(true)));

    // Its answer is checked against the document like any other.
    let mut machine = resolver("alice.example.com", config.clone());
    let (id, _, _, _) = expect_fetch(&drain(&mut machine)[0]);
    machine.handle_response(id, response(200, format!(r#"{{"did":"{ALICE_DID}"}}"#)));
    answer_plc(
        &mut machine,
        ALICE_DID,
        document(ALICE_DID, &["at://bob.example.com"], PDS),
    );
    assert!(matches!(
        expect_done(drain(&mut machine)),
        Err(IdentityError::HandleMismatch { .. })
    ));

    let mut machine = resolver("alice.example.com", config);
    let (id, _, _, _) = expect_fetch(&drain(&mut machine)[0]);
    machine.handle_response(
        id,
        response(
            400,
            r#"{"error":"InvalidRequest","message":"Unable to resolve handle"}"#,
        ),
    );
    let err = expect_done(drain(&mut machine)).expect_err("not found");
    assert_eq!(
        err.to_string(),
        "the handle resolver service found no DID for alice.example.com (resolver service: HTTP 400)"
    );
}

#[test]
fn unknown_and_repeated_answers_are_ignored() {
    let (mut machine, dns, https) = start_handle("alice.example.com");
    machine.handle_txt(RequestId(999), records(&[&format!("did={OTHER_DID}")]));
    machine.handle_response(RequestId(999), response(200, OTHER_DID));
    // A DNS id answered as HTTP and an HTTP id answered as DNS do not count.
    machine.handle_response(dns, response(200, OTHER_DID));
    machine.handle_txt(https, records(&[&format!("did={OTHER_DID}")]));
    assert!(drain(&mut machine).is_empty());
    // A second answer to the same request does not count either.
    machine.handle_txt(dns, TxtAnswer::NoRecords);
    machine.handle_txt(dns, records(&[&format!("did={OTHER_DID}")]));
    assert!(drain(&mut machine).is_empty());
    machine.handle_response(https, response(200, ALICE_DID));
    answer_plc(
        &mut machine,
        ALICE_DID,
        document(ALICE_DID, &["at://alice.example.com"], PDS),
    );
    assert_eq!(expect_done(drain(&mut machine)), Ok(alice(true)));
    assert!(machine.poll().is_none());
    machine.handle_response(https, response(200, ALICE_DID));
    assert!(machine.poll().is_none());
}
