//! Origins of servers named by documents: a PDS endpoint, an authorization server.

use url::Url;

use crate::identity::Mode;

/// Parses a server URL (an endpoint, or an origin before its path is checked).
///
/// Production allows `https` on the default port only; development also allows
/// `http` and any port. User info and a fragment are refused. The atproto specs
/// allow a PDS on another port; atlogin refuses that outside development so that
/// production traffic only ever goes to port 443.
pub(crate) fn parse_server_url(text: &str, mode: Mode) -> Result<Url, &'static str> {
    let url = Url::parse(text).map_err(|_| "not a URL")?;
    match (url.scheme(), mode) {
        ("https", _) | ("http", Mode::Development) => {}
        ("http", Mode::Production) => return Err("plain http is allowed in development only"),
        _ => return Err("not an https URL"),
    }
    if url.host().is_none() {
        return Err("no host");
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("user info is not allowed");
    }
    if url.fragment().is_some() {
        return Err("a fragment is not allowed");
    }
    if url.port().is_some() && mode == Mode::Production {
        return Err("a port other than the default is allowed in development only");
    }
    Ok(url)
}

/// Parses a server origin written as `scheme://host[:port]` (a lone trailing `/`
/// is tolerated when `strict` is false), with the rules of [`parse_server_url`]
/// and no path or query.
pub(crate) fn parse_origin(text: &str, mode: Mode, strict: bool) -> Result<Url, &'static str> {
    let url = parse_server_url(text, mode)?;
    if url.query().is_some() {
        return Err("a query is not allowed");
    }
    if url.path() != "/" {
        return Err("a path is not allowed");
    }
    if strict && text != url.origin().ascii_serialization() {
        return Err("not written as a bare origin (no trailing slash, default port, lower case)");
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_bare_origins() {
        for (text, mode) in [
            ("https://bsky.social", Mode::Production),
            ("https://morel.us-east.host.bsky.network", Mode::Production),
            ("http://localhost:2583", Mode::Development),
            ("https://pds.test:8443", Mode::Development),
        ] {
            let url = parse_origin(text, mode, true).expect(text);
            assert_eq!(url.origin().ascii_serialization(), text);
        }
        assert!(parse_origin("https://bsky.social/", Mode::Production, false).is_ok());
    }

    #[test]
    fn refuses_everything_else() {
        for (text, mode, strict) in [
            ("bsky.social", Mode::Production, false),
            ("ftp://bsky.social", Mode::Development, false),
            ("http://bsky.social", Mode::Production, false),
            ("https://bsky.social:8443", Mode::Production, false),
            ("https://user@bsky.social", Mode::Production, false),
            ("https://bsky.social/xrpc", Mode::Production, false),
            ("https://bsky.social?x=1", Mode::Production, false),
            ("https://bsky.social#x", Mode::Production, false),
            ("https://bsky.social/", Mode::Production, true),
            ("https://bsky.social:443", Mode::Production, true),
            ("https://BSKY.social", Mode::Production, true),
            ("data:text/plain,x", Mode::Development, false),
        ] {
            assert!(
                parse_origin(text, mode, strict).is_err(),
                "{text} {mode:?} strict={strict}"
            );
        }
    }
}
