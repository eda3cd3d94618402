use super::*;

// Valid and invalid examples from the atproto handle specification
// (specs/handle: "Handle Syntax", example lists), plus edge cases of the same rules.
#[test]
fn handle_syntax_valid_examples() {
    for valid in [
        "jay.bsky.social",
        "8.cn",
        "name.t--t",
        "XX.LCS.MIT.EDU",
        "a.co",
        "xn--notarealidn.com",
        "xn--fiqa61au8b7zsevnm8ak20mc4a87e.xn--fiqs8s",
        "xn--ls8h.test",
        "example.t",
        "john.test",
        "jan.test",
        "john2.test",
        "john-john.test",
    ] {
        assert!(
            Handle::parse_syntax(valid).is_ok(),
            "{valid} should be valid"
        );
    }
}

#[test]
fn handle_syntax_invalid_examples() {
    let long_label = format!("{}.test", "a".repeat(64));
    let long_total = format!(
        "{}.com",
        [
            "a".repeat(63),
            "b".repeat(63),
            "c".repeat(63),
            "d".repeat(60)
        ]
        .join(".")
    );
    assert!(long_total.len() > MAX_HANDLE_LEN);
    for invalid in [
        "jo@hn.test",
        "💩.test",
        "john..test",
        "xn--bcher-.tld",
        "john.0",
        "cn.8",
        "www.masełkowski.pl.com",
        "org",
        "name.org.",
        ".name.org",
        "-john.test",
        "john-.test",
        "john.test-",
        "jo_hn.test",
        "jo hn.test",
        "",
        "john.1test",
        long_label.as_str(),
        long_total.as_str(),
    ] {
        assert!(
            matches!(Handle::parse_syntax(invalid), Err(HandleError::Syntax(_))),
            "{invalid:?} should be invalid"
        );
    }
}

#[test]
fn handles_are_lower_cased() {
    let handle = Handle::parse("Alice.Example.COM", Mode::Production).expect("valid");
    assert_eq!(handle.as_str(), "alice.example.com");
    assert_eq!(handle.to_string(), "alice.example.com");
}

#[test]
fn reserved_tlds_are_refused_in_every_mode() {
    for tld in [
        "alt",
        "arpa",
        "example",
        "internal",
        "invalid",
        "local",
        "localhost",
        "onion",
    ] {
        let name = format!("alice.{tld}");
        for mode in [Mode::Production, Mode::Development] {
            assert_eq!(
                Handle::parse(&name, mode),
                Err(HandleError::ReservedTld(name.clone())),
                "{name}"
            );
        }
        // The syntax alone is fine: the refusal is a distinct error.
        assert!(Handle::parse_syntax(&name).is_ok());
    }
    assert_eq!(
        Handle::parse("Alice.LOCAL", Mode::Production),
        Err(HandleError::ReservedTld("alice.local".into()))
    );
}

#[test]
fn test_tld_only_in_development() {
    assert_eq!(
        Handle::parse("alice.test", Mode::Production),
        Err(HandleError::DevelopmentOnly("alice.test".into()))
    );
    assert!(Handle::parse("alice.test", Mode::Development).is_ok());
    // A label named "test" elsewhere is no problem.
    assert!(Handle::parse("test.example.com", Mode::Production).is_ok());
}

// Valid and invalid examples from the atproto DID specification (specs/did:
// "DID Syntax"), checked against the generic syntax.
#[test]
fn did_generic_syntax_examples() {
    for valid in [
        "did:plc:z72i7hdynmk6r22z27h6tvur",
        "did:web:blueskyweb.xyz",
        "did:method:val:two",
        "did:m:v",
        "did:method::::val",
        "did:method:-:_:.",
        "did:key:zQ3shZc2QzApp2oymGvQbzP8eKheVshBHbU4ZYjeXqwSKEn6N",
        "did:method:val%20two",
    ] {
        assert_eq!(check_did_syntax(valid), Ok(()), "{valid} should be valid");
    }
    for invalid in [
        "did:METHOD:val",
        "did:m123:val",
        "DID:method:val",
        "did:method:",
        "did:method:val/two",
        "did:method:val?two",
        "did:method:val#two",
        "did:method:val%",
        "did:method:val%2",
        "did:method:val%zz",
        "did:method:val:",
        "did::val",
        "did:method",
        "did:",
        "did:plc:abc def",
        "did:plc:ø",
    ] {
        assert!(
            matches!(check_did_syntax(invalid), Err(DidError::Syntax(_))),
            "{invalid:?} should be invalid"
        );
    }
    let longest = format!("did:method:{}", "a".repeat(MAX_DID_LEN - 11));
    assert_eq!(longest.len(), MAX_DID_LEN);
    assert_eq!(check_did_syntax(&longest), Ok(()));
    let too_long = format!("{longest}a");
    assert!(matches!(
        check_did_syntax(&too_long),
        Err(DidError::Syntax(_))
    ));
}

#[test]
fn only_plc_and_web_are_supported() {
    assert_eq!(
        Did::parse(
            "did:key:zQ3shZc2QzApp2oymGvQbzP8eKheVshBHbU4ZYjeXqwSKEn6N",
            Mode::Production
        ),
        Err(DidError::UnsupportedMethod("key".into()))
    );
    assert_eq!(
        Did::parse("did:method:val", Mode::Production),
        Err(DidError::UnsupportedMethod("method".into()))
    );
    let plc = Did::parse("did:plc:z72i7hdynmk6r22z27h6tvur", Mode::Production).expect("valid");
    assert_eq!(plc.method(), DidMethod::Plc);
    assert_eq!(plc.web_host(), None);
    let web = Did::parse("did:web:blueskyweb.xyz", Mode::Production).expect("valid");
    assert_eq!(web.method(), DidMethod::Web);
    assert_eq!(web.web_host().as_deref(), Some("blueskyweb.xyz"));
}

#[test]
fn did_plc_identifiers_are_24_base32_characters() {
    for invalid in [
        "did:plc:z72i7hdynmk6r22z27h6tvu",
        "did:plc:z72i7hdynmk6r22z27h6tvurr",
        "did:plc:Z72i7hdynmk6r22z27h6tvur",
        "did:plc:z72i7hdynmk6r22z27h6tvu1",
        "did:plc:z72i7hdynmk6r22z27h6tv:r",
    ] {
        assert!(
            matches!(
                Did::parse(invalid, Mode::Production),
                Err(DidError::Syntax(_))
            ),
            "{invalid}"
        );
    }
}

#[test]
fn did_web_is_host_only() {
    assert!(matches!(
        Did::parse("did:web:example.com:user:alice", Mode::Production),
        Err(DidError::UnsupportedWeb(_))
    ));
    assert!(matches!(
        Did::parse("did:web:example.com%3A8443", Mode::Production),
        Err(DidError::UnsupportedWeb(_))
    ));
    assert!(matches!(
        Did::parse("did:web:example.com%3A8443", Mode::Development),
        Err(DidError::UnsupportedWeb(_))
    ));
    assert!(matches!(
        Did::parse("did:web:localhost%3A8443", Mode::Production),
        Err(DidError::UnsupportedWeb(_))
    ));
    assert!(matches!(
        Did::parse("did:web:localhost", Mode::Production),
        Err(DidError::UnsupportedWeb(_))
    ));
    assert!(matches!(
        Did::parse("did:web:localhost%3Axyz", Mode::Development),
        Err(DidError::UnsupportedWeb(_))
    ));
    assert!(matches!(
        Did::parse("did:web:exa%41mple.com", Mode::Production),
        Err(DidError::UnsupportedWeb(_))
    ));
    assert!(matches!(
        Did::parse("did:web:nodot", Mode::Production),
        Err(DidError::UnsupportedWeb(_))
    ));
    let dev =
        Did::parse("did:web:localhost%3A8443", Mode::Development).expect("valid in development");
    assert_eq!(dev.web_host().as_deref(), Some("localhost:8443"));
    let bare = Did::parse("did:web:localhost", Mode::Development).expect("valid in development");
    assert_eq!(bare.web_host().as_deref(), Some("localhost"));
    let upper = Did::parse("did:web:Example.COM", Mode::Production).expect("valid");
    assert_eq!(upper.web_host().as_deref(), Some("example.com"));
}

#[test]
fn at_identifier_tolerates_at_sign_and_white_space() {
    assert_eq!(
        AtIdentifier::parse("  @Alice.Bsky.Social \n", Mode::Production),
        Ok(AtIdentifier::Handle(
            Handle::parse("alice.bsky.social", Mode::Production).expect("valid")
        ))
    );
    assert_eq!(
        AtIdentifier::parse(" did:plc:z72i7hdynmk6r22z27h6tvur ", Mode::Production),
        Ok(AtIdentifier::Did(
            Did::parse("did:plc:z72i7hdynmk6r22z27h6tvur", Mode::Production).expect("valid")
        ))
    );
    assert_eq!(
        AtIdentifier::parse("@did:plc:z72i7hdynmk6r22z27h6tvur", Mode::Production)
            .map(|i| i.to_string()),
        Ok("did:plc:z72i7hdynmk6r22z27h6tvur".to_owned())
    );
}

#[test]
fn at_identifier_keeps_errors_apart() {
    assert_eq!(
        AtIdentifier::parse("DID:plc:z72i7hdynmk6r22z27h6tvur", Mode::Production),
        Err(AtIdentifierError::Did(DidError::Syntax(
            "does not start with did:"
        )))
    );
    assert!(matches!(
        AtIdentifier::parse("@@alice.com", Mode::Production),
        Err(AtIdentifierError::Handle(HandleError::Syntax(_)))
    ));
    assert!(matches!(
        AtIdentifier::parse("alice", Mode::Production),
        Err(AtIdentifierError::Handle(HandleError::Syntax(_)))
    ));
    assert!(matches!(
        AtIdentifier::parse("alice.local", Mode::Production),
        Err(AtIdentifierError::Handle(HandleError::ReservedTld(_)))
    ));
    assert!(matches!(
        AtIdentifier::parse("did:key:zabc", Mode::Production),
        Err(AtIdentifierError::Did(DidError::UnsupportedMethod(_)))
    ));
    assert!(matches!(
        AtIdentifier::parse("did:plc:", Mode::Production),
        Err(AtIdentifierError::Did(DidError::Syntax(_)))
    ));
    // An error message names the handle so a person can see what was read.
    let err = AtIdentifier::parse("bob.test", Mode::Production).expect_err("dev only");
    assert_eq!(
        err.to_string(),
        "the handle bob.test is under .test, which is for development only"
    );
}

#[test]
fn serde_round_trips() {
    let did = Did::parse("did:plc:z72i7hdynmk6r22z27h6tvur", Mode::Production).expect("valid");
    let json = serde_json::to_string(&did).expect("serializes");
    assert_eq!(json, "\"did:plc:z72i7hdynmk6r22z27h6tvur\"");
    assert_eq!(
        serde_json::from_str::<Did>(&json).expect("deserializes"),
        did
    );
    assert!(serde_json::from_str::<Did>("\"did:key:x\"").is_err());
    let handle = Handle::parse("alice.test", Mode::Development).expect("valid");
    let json = serde_json::to_string(&handle).expect("serializes");
    assert_eq!(
        serde_json::from_str::<Handle>(&json).expect("deserializes"),
        handle
    );
    assert!(serde_json::from_str::<Handle>("\"no\"").is_err());
}
