//! Where the runtime adapters may send requests: the rules of the hardened client,
//! kept here so that every adapter applies the same ones.
//!
//! Requests driven by what people type (handles, DIDs, PDS and issuer URLs) must
//! not reach into the deployment's own network. An adapter checks the scheme
//! before it connects and every address a name resolves to before it connects to
//! that very address; [`NetPolicy`] says which pass.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use url::Url;

/// Why a destination was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Refused {
    /// The address is private, loopback, link-local or otherwise not public.
    #[error("{0} is not a public address")]
    Address(IpAddr),
    /// Plain http outside development, or another scheme altogether.
    #[error("only https is allowed")]
    Scheme,
}

/// The hardened client's destination rules.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct NetPolicy {
    /// Allow plain `http` (development only).
    pub allow_http: bool,
    /// Allow every private, loopback and link-local destination (development).
    pub allow_private: bool,
    /// Non-public addresses allowed one by one (a local PDS, a test server).
    pub allowed: Vec<IpAddr>,
}

impl NetPolicy {
    /// Production: https to public addresses only.
    #[must_use]
    pub fn strict() -> Self {
        Self {
            allow_http: false,
            allow_private: false,
            allowed: Vec::new(),
        }
    }

    /// Allows plain http.
    #[must_use]
    pub fn with_http(mut self) -> Self {
        self.allow_http = true;
        self
    }

    /// Allows one non-public address.
    #[must_use]
    pub fn with_allowed(mut self, ip: IpAddr) -> Self {
        self.allowed.push(ip);
        self
    }

    /// Development: http and local addresses allowed.
    #[must_use]
    pub fn development() -> Self {
        Self {
            allow_http: true,
            allow_private: true,
            allowed: Vec::new(),
        }
    }

    /// Checks a URL's scheme, and its host when that is an IP address.
    pub fn check_url(&self, url: &Url) -> Result<(), Refused> {
        match url.scheme() {
            "https" => {}
            "http" if self.allow_http => {}
            _ => return Err(Refused::Scheme),
        }
        match url.host() {
            Some(url::Host::Ipv4(ip)) => self.check_ip(IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => self.check_ip(IpAddr::V6(ip)),
            _ => Ok(()),
        }
    }

    /// Checks an address a name resolved to, before connecting to it.
    pub fn check_ip(&self, ip: IpAddr) -> Result<(), Refused> {
        if self.allow_private || is_public(ip) || self.allowed.contains(&ip) {
            Ok(())
        } else {
            Err(Refused::Address(ip))
        }
    }
}

/// Whether an address is globally reachable: not private, loopback, link-local,
/// unique-local, multicast, unspecified, broadcast, shared (CGNAT), documentation
/// or benchmarking space. IPv4 addresses embedded in IPv6 (mapped, NAT64) are
/// judged as IPv4.
#[must_use]
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(ip) => is_public_v4(ip),
        IpAddr::V6(ip) => is_public_v6(ip),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_private()
        || ip.is_loopback()
        || ip.is_link_local()
        || ip.is_multicast()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_documentation()
        || a == 0
        || (a == 100 && (64..128).contains(&b))
        || (a == 192 && b == 0 && c == 0)
        || (a == 198 && (18..20).contains(&b))
        || a >= 240)
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return is_public_v4(v4);
    }
    let segments = ip.segments();
    // NAT64 (64:ff9b::/96) carries an IPv4 address in its last 32 bits.
    if segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        let [.., hi, lo] = segments;
        let v4 = Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
        return is_public_v4(v4);
    }
    !(ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        || (segments[0] & 0xfe00) == 0xfc00
        || (segments[0] & 0xffc0) == 0xfe80
        || (segments[0] & 0xffc0) == 0xfec0
        || segments[0] == 0x2001 && segments[1] == 0x0db8
        || segments[..6] == [0, 0, 0, 0, 0, 0])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("address")
    }

    #[test]
    fn public_and_private_addresses() {
        for public in [
            "8.8.8.8",
            "1.1.1.1",
            "2606:4700:4700::1111",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
        ] {
            assert!(is_public(ip(public)), "{public}");
        }
        for private in [
            "127.0.0.1",
            "127.255.0.1",
            "10.0.0.1",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "0.1.2.3",
            "255.255.255.255",
            "224.0.0.1",
            "100.64.0.1",
            "192.0.0.8",
            "198.18.0.1",
            "192.0.2.1",
            "240.0.0.1",
            "::1",
            "::",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "fec0::1",
            "ff02::1",
            "2001:db8::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::7f00:1",
            "::127.0.0.1",
        ] {
            assert!(!is_public(ip(private)), "{private}");
        }
    }

    #[test]
    fn policies() {
        let strict = NetPolicy::strict();
        let url = |text: &str| Url::parse(text).expect("url");
        assert_eq!(strict.check_url(&url("https://example.com/x")), Ok(()));
        assert_eq!(
            strict.check_url(&url("http://example.com/x")),
            Err(Refused::Scheme)
        );
        assert_eq!(
            strict.check_url(&url("ftp://example.com/x")),
            Err(Refused::Scheme)
        );
        assert_eq!(
            strict.check_url(&url("https://127.0.0.1/x")),
            Err(Refused::Address(ip("127.0.0.1")))
        );
        assert_eq!(
            strict.check_url(&url("https://[::ffff:10.0.0.1]/x")),
            Err(Refused::Address(ip("::ffff:10.0.0.1")))
        );
        assert_eq!(
            strict.check_ip(ip("10.0.0.1")),
            Err(Refused::Address(ip("10.0.0.1")))
        );
        assert_eq!(strict.check_ip(ip("93.184.216.34")), Ok(()));
        let dev = NetPolicy::development();
        assert_eq!(dev.check_url(&url("http://127.0.0.1:2583/x")), Ok(()));
        assert_eq!(
            dev.check_url(&url("ftp://127.0.0.1/x")),
            Err(Refused::Scheme)
        );
        let private_https = NetPolicy {
            allow_http: false,
            allow_private: true,
            allowed: Vec::new(),
        };
        assert_eq!(
            private_https.check_url(&url("http://127.0.0.1/x")),
            Err(Refused::Scheme)
        );
        assert_eq!(private_https.check_url(&url("https://127.0.0.1/x")), Ok(()));
        let one = NetPolicy::strict()
            .with_http()
            .with_allowed(ip("127.0.0.1"));
        assert_eq!(one.check_ip(ip("127.0.0.1")), Ok(()));
        assert_eq!(
            one.check_ip(ip("127.0.0.2")),
            Err(Refused::Address(ip("127.0.0.2")))
        );
        assert_eq!(one.check_url(&url("http://127.0.0.1:8080/")), Ok(()));
    }
}
