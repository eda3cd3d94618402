//! DID documents as atproto reads them ([atproto DID spec], "DID Documents").
//!
//! Of a document, atproto needs three things: that its `id` is the DID that was
//! resolved, the handle it claims (the first valid `at://` entry of
//! `alsoKnownAs`), and the PDS (the `#atproto_pds` service of type
//! `AtprotoPersonalDataServer`, whose endpoint is a bare origin). Everything else
//! is ignored. The claimed handle is only a claim: it counts once it resolves back
//! to the same DID.
//!
//! [atproto DID spec]: https://atproto.com/specs/did

use serde_json::{Map, Value};
use url::Url;

use super::syntax::{Did, Handle, Mode};
use crate::json;
use crate::origin::parse_origin;

/// The largest DID document accepted, in bytes.
pub const MAX_DID_DOCUMENT_LEN: usize = 64 * 1024;

/// The service type of an atproto PDS.
const PDS_SERVICE_TYPE: &str = "AtprotoPersonalDataServer";

/// Why a DID document was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DidDocumentError {
    /// The document's `id` is not the DID that was resolved.
    #[error("its id is {found}, not {expected}")]
    IdMismatch {
        /// The DID that was resolved.
        expected: String,
        /// The `id` the document carries (cut to 200 characters, control characters escaped).
        found: String,
    },
    /// The document is not a JSON object, has duplicate keys or a member of the
    /// wrong type.
    #[error("it is not a well-formed DID document ({0})")]
    Malformed(&'static str),
    /// The PDS service endpoint is not a bare https origin.
    #[error("its PDS endpoint is unusable: {0}")]
    PdsEndpoint(&'static str),
    /// The document is larger than [`MAX_DID_DOCUMENT_LEN`].
    #[error("it is larger than 64 KiB")]
    TooLarge,
}

/// What atproto reads from a DID document.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct DidDocument {
    /// The DID, equal to the one resolved.
    pub id: Did,
    /// The handle the document claims, not yet verified.
    pub handle: Option<Handle>,
    /// The PDS origin, if the document names one.
    pub pds: Option<Url>,
}

impl DidDocument {
    /// Parses the document fetched for `did`.
    pub fn parse(bytes: &[u8], did: &Did, mode: Mode) -> Result<Self, DidDocumentError> {
        if bytes.len() > MAX_DID_DOCUMENT_LEN {
            return Err(DidDocumentError::TooLarge);
        }
        let map = json::parse_object(bytes)
            .map_err(|_| DidDocumentError::Malformed("not a JSON object"))?;
        let id = map
            .get("id")
            .and_then(Value::as_str)
            .ok_or(DidDocumentError::Malformed("no id"))?;
        if id != did.as_str() {
            return Err(DidDocumentError::IdMismatch {
                expected: did.as_str().to_owned(),
                found: crate::transport::excerpt(id),
            });
        }
        Ok(Self {
            id: did.clone(),
            handle: claimed_handle(&map)?,
            pds: pds_endpoint(&map, did, mode)?,
        })
    }
}

/// The first `at://` entry of `alsoKnownAs` that is a syntactically valid handle.
fn claimed_handle(map: &Map<String, Value>) -> Result<Option<Handle>, DidDocumentError> {
    let Some(aka) = map.get("alsoKnownAs") else {
        return Ok(None);
    };
    let entries = aka
        .as_array()
        .ok_or(DidDocumentError::Malformed("alsoKnownAs is not an array"))?;
    Ok(entries
        .iter()
        .filter_map(Value::as_str)
        .filter_map(|entry| entry.strip_prefix("at://"))
        .find_map(|name| Handle::parse_syntax(name).ok()))
}

/// The endpoint of the first service that is the atproto PDS.
fn pds_endpoint(
    map: &Map<String, Value>,
    did: &Did,
    mode: Mode,
) -> Result<Option<Url>, DidDocumentError> {
    let Some(services) = map.get("service") else {
        return Ok(None);
    };
    let services = services
        .as_array()
        .ok_or(DidDocumentError::Malformed("service is not an array"))?;
    let absolute_id = format!("{did}#atproto_pds");
    let pds = services
        .iter()
        .filter_map(Value::as_object)
        .find(|service| {
            let id = service.get("id").and_then(Value::as_str);
            let kind = service.get("type").and_then(Value::as_str);
            matches!(id, Some(id) if id == "#atproto_pds" || id == absolute_id)
                && kind == Some(PDS_SERVICE_TYPE)
        });
    let Some(pds) = pds else { return Ok(None) };
    let endpoint =
        pds.get("serviceEndpoint")
            .and_then(Value::as_str)
            .ok_or(DidDocumentError::PdsEndpoint(
                "the endpoint is not a string",
            ))?;
    parse_origin(endpoint, mode, false)
        .map(Some)
        .map_err(DidDocumentError::PdsEndpoint)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn did() -> Did {
        Did::parse("did:plc:ewvi7nxzyoun6zhxrhs64oiz", Mode::Production).expect("valid")
    }

    fn parse(doc: &Value) -> Result<DidDocument, DidDocumentError> {
        DidDocument::parse(
            &serde_json::to_vec(doc).expect("serializes"),
            &did(),
            Mode::Production,
        )
    }

    /// Shaped like the documents plc.directory serves.
    fn plc_document() -> Value {
        json!({
            "@context": ["https://www.w3.org/ns/did/v1", "https://w3id.org/security/multikey/v1"],
            "id": "did:plc:ewvi7nxzyoun6zhxrhs64oiz",
            "alsoKnownAs": ["at://atproto.com"],
            "verificationMethod": [{
                "id": "did:plc:ewvi7nxzyoun6zhxrhs64oiz#atproto",
                "type": "Multikey",
                "controller": "did:plc:ewvi7nxzyoun6zhxrhs64oiz",
                "publicKeyMultibase": "zQ3shunBKsXixLxKtC5qeSG9E4J5RkGN57im31pcTzbNQnm5w"
            }],
            "service": [{
                "id": "#atproto_pds",
                "type": "AtprotoPersonalDataServer",
                "serviceEndpoint": "https://enoki.us-east.host.bsky.network"
            }]
        })
    }

    #[test]
    fn reads_handle_and_pds() {
        let doc = parse(&plc_document()).expect("valid");
        assert_eq!(
            doc.handle.map(|h| h.to_string()).as_deref(),
            Some("atproto.com")
        );
        assert_eq!(
            doc.pds.map(String::from).as_deref(),
            Some("https://enoki.us-east.host.bsky.network/")
        );
    }

    #[test]
    fn id_must_be_the_resolved_did() {
        let mut doc = plc_document();
        doc["id"] = json!("did:plc:aaaaaaaaaaaaaaaaaaaaaaaa");
        let err = parse(&doc).expect_err("wrong id");
        assert_eq!(
            err.to_string(),
            "its id is did:plc:aaaaaaaaaaaaaaaaaaaaaaaa, not did:plc:ewvi7nxzyoun6zhxrhs64oiz"
        );
        doc["id"] = json!("DID:PLC:EWVI7NXZYOUN6ZHXRHS64OIZ");
        assert!(matches!(
            parse(&doc),
            Err(DidDocumentError::IdMismatch { .. })
        ));
        doc.as_object_mut().expect("object").remove("id");
        assert_eq!(parse(&doc), Err(DidDocumentError::Malformed("no id")));
    }

    #[test]
    fn handle_is_the_first_valid_at_uri() {
        let mut doc = plc_document();
        doc["alsoKnownAs"] = json!([
            "https://example.com",
            "at://not valid",
            7,
            "at://Alice.Example.COM",
            "at://bob.com"
        ]);
        assert_eq!(
            parse(&doc)
                .expect("valid")
                .handle
                .map(|h| h.to_string())
                .as_deref(),
            Some("alice.example.com")
        );
        doc["alsoKnownAs"] = json!([]);
        assert_eq!(parse(&doc).expect("valid").handle, None);
        doc.as_object_mut().expect("object").remove("alsoKnownAs");
        assert_eq!(parse(&doc).expect("valid").handle, None);
        doc["alsoKnownAs"] = json!("at://alice.com");
        assert_eq!(
            parse(&doc),
            Err(DidDocumentError::Malformed("alsoKnownAs is not an array"))
        );
    }

    #[test]
    fn pds_service_id_may_be_relative_or_absolute() {
        let mut doc = plc_document();
        doc["service"][0]["id"] = json!("did:plc:ewvi7nxzyoun6zhxrhs64oiz#atproto_pds");
        assert!(parse(&doc).expect("valid").pds.is_some());
        // The absolute form of another DID does not count.
        doc["service"][0]["id"] = json!("did:plc:aaaaaaaaaaaaaaaaaaaaaaaa#atproto_pds");
        assert_eq!(parse(&doc).expect("valid").pds, None);
        doc["service"][0]["id"] = json!("#atproto_labeler");
        assert_eq!(parse(&doc).expect("valid").pds, None);
    }

    #[test]
    fn pds_service_must_have_the_pds_type() {
        let mut doc = plc_document();
        doc["service"] = json!([
            {"id": "#atproto_pds", "type": "SomethingElse", "serviceEndpoint": "https://wrong.example.com"},
            {"id": "#atproto_pds", "type": "AtprotoPersonalDataServer", "serviceEndpoint": "https://right.example.com"}
        ]);
        assert_eq!(
            parse(&doc).expect("valid").pds.map(String::from).as_deref(),
            Some("https://right.example.com/")
        );
        doc["service"] = json!([{"id": "#atproto_pds", "type": "SomethingElse", "serviceEndpoint": "https://x.com"}]);
        assert_eq!(parse(&doc).expect("valid").pds, None);
        doc.as_object_mut().expect("object").remove("service");
        assert_eq!(parse(&doc).expect("valid").pds, None);
    }

    #[test]
    fn pds_endpoint_must_be_a_bare_https_origin() {
        for (endpoint, problem) in [
            (
                json!("https://pds.example.com/xrpc"),
                "a path is not allowed",
            ),
            (
                json!("http://pds.example.com"),
                "plain http is allowed in development only",
            ),
            (
                json!("https://pds.example.com:8443"),
                "a port other than the default is allowed in development only",
            ),
            (json!("https://pds.example.com?x"), "a query is not allowed"),
            (
                json!({"uri": "https://pds.example.com"}),
                "the endpoint is not a string",
            ),
            (json!("pds.example.com"), "not a URL"),
        ] {
            let mut doc = plc_document();
            doc["service"][0]["serviceEndpoint"] = endpoint.clone();
            assert_eq!(
                parse(&doc),
                Err(DidDocumentError::PdsEndpoint(problem)),
                "{endpoint}"
            );
        }
        let mut doc = plc_document();
        doc["service"][0]["serviceEndpoint"] = json!("http://localhost:2583");
        let dev = DidDocument::parse(
            &serde_json::to_vec(&doc).expect("json"),
            &did(),
            Mode::Development,
        );
        assert_eq!(
            dev.expect("valid in development")
                .pds
                .map(String::from)
                .as_deref(),
            Some("http://localhost:2583/")
        );
    }

    #[test]
    fn malformed_and_oversized_documents() {
        let did = did();
        assert_eq!(
            DidDocument::parse(b"[]", &did, Mode::Production),
            Err(DidDocumentError::Malformed("not a JSON object"))
        );
        let dup =
            br#"{"id":"did:plc:ewvi7nxzyoun6zhxrhs64oiz","id":"did:plc:aaaaaaaaaaaaaaaaaaaaaaaa"}"#;
        assert_eq!(
            DidDocument::parse(dup, &did, Mode::Production),
            Err(DidDocumentError::Malformed("not a JSON object"))
        );
        let mut big = serde_json::to_vec(&plc_document()).expect("json");
        big.extend(std::iter::repeat_n(b' ', MAX_DID_DOCUMENT_LEN));
        assert_eq!(
            DidDocument::parse(&big, &did, Mode::Production),
            Err(DidDocumentError::TooLarge)
        );
        let mut doc = plc_document();
        doc["service"] = json!({"id": "#atproto_pds"});
        assert_eq!(
            parse(&doc),
            Err(DidDocumentError::Malformed("service is not an array"))
        );
    }
}
