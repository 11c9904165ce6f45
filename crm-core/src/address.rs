//! Where the server may send requests on a tenant's behalf (webhooks): only to public internet
//! addresses, so that a webhook cannot reach the server's own machine, its private network or a cloud
//! metadata service (server-side request forgery). The rule is checked twice with the same classifier:
//! on the URL's host when a webhook is registered ([`check_host`]), and on every address the host
//! name resolves to when an event is delivered ([`check_ip`]; the frontend then connects to that
//! checked address, so DNS cannot swap it in between).
//!
//! An operator may allow every address ([`AddressPolicy::Any`]) to test against local receivers.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Which addresses webhooks may target (an operator setting, not a tenant's).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AddressPolicy {
    /// Only public internet addresses (the default).
    #[default]
    Public,
    /// Any address, loopback and private networks included (local testing).
    Any,
}

/// Why an address is not a public internet address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Restricted {
    Unspecified,
    Loopback,
    /// RFC 1918 networks and IPv6 site-local.
    Private,
    /// Carrier-grade NAT (100.64.0.0/10).
    SharedCgnat,
    LinkLocal,
    /// IPv6 unique local addresses (fc00::/7).
    UniqueLocal,
    Multicast,
    Broadcast,
    Documentation,
    /// Instance metadata services (169.254.169.254, fd00:ec2::254, Azure's 168.63.129.16).
    CloudMetadata,
    /// Reserved, benchmarking, protocol-assignment and tunnelling ranges.
    Reserved,
}

impl Restricted {
    pub fn describe(self) -> &'static str {
        match self {
            Restricted::Unspecified => "an unspecified address",
            Restricted::Loopback => "a loopback address",
            Restricted::Private => "a private network address",
            Restricted::SharedCgnat => "a carrier-grade NAT address",
            Restricted::LinkLocal => "a link-local address",
            Restricted::UniqueLocal => "a unique local address",
            Restricted::Multicast => "a multicast address",
            Restricted::Broadcast => "the broadcast address",
            Restricted::Documentation => "a documentation address",
            Restricted::CloudMetadata => "a cloud metadata address",
            Restricted::Reserved => "a reserved address",
        }
    }
}

impl std::fmt::Display for Restricted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.describe())
    }
}

/// `None` for a public internet address; else what kind of non-public address `ip` is. IPv6 forms
/// that carry an IPv4 address (mapped, NAT64, 6to4) are judged by that IPv4 address.
pub fn classify(ip: IpAddr) -> Option<Restricted> {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

fn classify_v4(ip: Ipv4Addr) -> Option<Restricted> {
    let [a, b, c, d] = ip.octets();
    Some(match (a, b, c) {
        _ if ip == Ipv4Addr::new(169, 254, 169, 254) || ip == Ipv4Addr::new(168, 63, 129, 16) => {
            Restricted::CloudMetadata
        }
        (0, _, _) => Restricted::Unspecified,
        (10, _, _) | (172, 16..=31, _) | (192, 168, _) => Restricted::Private,
        (100, 64..=127, _) => Restricted::SharedCgnat,
        (127, _, _) => Restricted::Loopback,
        (169, 254, _) => Restricted::LinkLocal,
        (192, 0, 2) | (198, 51, 100) | (203, 0, 113) => Restricted::Documentation,
        (192, 0, 0) | (198, 18..=19, _) => Restricted::Reserved,
        (224..=239, _, _) => Restricted::Multicast,
        (255, 255, 255) if d == 255 => Restricted::Broadcast,
        (240..=255, _, _) => Restricted::Reserved,
        _ => return None,
    })
}

fn classify_v6(ip: Ipv6Addr) -> Option<Restricted> {
    if ip == Ipv6Addr::UNSPECIFIED {
        return Some(Restricted::Unspecified);
    }
    if ip == Ipv6Addr::LOCALHOST {
        return Some(Restricted::Loopback);
    }
    if ip == Ipv6Addr::new(0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x254) {
        return Some(Restricted::CloudMetadata);
    }
    if let Some(v4) = ip.to_ipv4_mapped() {
        return classify_v4(v4);
    }
    let s = ip.segments();
    let embedded = |hi: u16, lo: u16| Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
    Some(match s {
        // IPv4-compatible (deprecated, ::a.b.c.d) and the discard-only prefix.
        [0, 0, 0, 0, 0, 0, _, _] | [0x100, 0, 0, 0, ..] => Restricted::Reserved,
        // NAT64 (well-known prefix): whatever IPv4 address it translates to.
        [0x64, 0xff9b, 0, 0, 0, 0, hi, lo] => return classify_v4(embedded(hi, lo)),
        [0x64, 0xff9b, 1, ..] => Restricted::Private,
        // 6to4: the IPv4 address of the relay's other end.
        [0x2002, hi, lo, ..] => return classify_v4(embedded(hi, lo)),
        // Teredo and benchmarking.
        [0x2001, 0, ..] | [0x2001, 2, 0, ..] => Restricted::Reserved,
        [0x2001, 0xdb8, ..] => Restricted::Documentation,
        [0x3fff, x, ..] if x < 0x1000 => Restricted::Documentation,
        [x, ..] if x & 0xfe00 == 0xfc00 => Restricted::UniqueLocal,
        [x, ..] if x & 0xffc0 == 0xfe80 => Restricted::LinkLocal,
        [x, ..] if x & 0xffc0 == 0xfec0 => Restricted::Private,
        [x, ..] if x & 0xff00 == 0xff00 => Restricted::Multicast,
        _ => return None,
    })
}

/// Checks an address a webhook's host resolved to.
pub fn check_ip(ip: IpAddr, policy: AddressPolicy) -> Result<(), Restricted> {
    match (policy, classify(ip)) {
        (AddressPolicy::Public, Some(r)) => Err(r),
        _ => Ok(()),
    }
}

/// Why a URL host may not receive webhooks, judged before resolution: an IP literal (`10.0.0.1`,
/// `[::1]`) by [`classify`], `localhost` and its subdomains as loopback (RFC 6761), and a numeric
/// host that is not a plain dotted quad (`127.1`, `0x7f.0.0.1`, which resolvers read as IPv4 in
/// ways that differ) as ambiguous. Host names are checked again at delivery.
pub fn check_host(host: &str, policy: AddressPolicy) -> Result<(), HostRefusal> {
    if policy == AddressPolicy::Any {
        return Ok(());
    }
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    if host == "localhost" || host.ends_with(".localhost") {
        return Err(HostRefusal::Restricted(Restricted::Loopback));
    }
    if let Some(ip) = ip_literal(&host) {
        return check_ip(ip, policy).map_err(HostRefusal::Restricted);
    }
    let last = host.rsplit('.').next().unwrap_or_default();
    let numeric = !last.is_empty()
        && (last.bytes().all(|b| b.is_ascii_digit())
            || last
                .strip_prefix("0x")
                .is_some_and(|h| h.bytes().all(|b| b.is_ascii_hexdigit())));
    if numeric {
        return Err(HostRefusal::AmbiguousNumeric);
    }
    Ok(())
}

/// Why [`check_host`] refused a host.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HostRefusal {
    Restricted(Restricted),
    /// A numeric host that is not a plain dotted-quad IPv4 address.
    AmbiguousNumeric,
}

impl std::fmt::Display for HostRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HostRefusal::Restricted(r) => write!(f, "webhooks may only target public addresses, not {r}"),
            HostRefusal::AmbiguousNumeric => f.write_str("a numeric host must be a dotted-quad IPv4 address"),
        }
    }
}

/// The address a URL host names literally: `a.b.c.d` or `[v6]` (brackets optional).
pub fn ip_literal(host: &str) -> Option<IpAddr> {
    let bare = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
    bare.parse().ok()
}

/// The host of an `http(s)://host[:port]/...` URL (IPv6 literals keep their brackets).
pub fn url_host(url: &str) -> Option<&str> {
    let rest = url.split_once("://")?.1;
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    let authority = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    if authority.starts_with('[') {
        return authority.find(']').map(|i| &authority[..=i]);
    }
    Some(authority.split(':').next().unwrap_or(authority))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_every_non_public_range() {
        use Restricted::*;
        let table: &[(&str, Option<Restricted>)] = &[
            ("0.0.0.0", Some(Unspecified)),
            ("0.1.2.3", Some(Unspecified)),
            ("127.0.0.1", Some(Loopback)),
            ("127.255.255.254", Some(Loopback)),
            ("10.0.0.1", Some(Private)),
            ("172.16.0.1", Some(Private)),
            ("172.31.255.255", Some(Private)),
            ("192.168.1.1", Some(Private)),
            ("100.64.0.1", Some(SharedCgnat)),
            ("100.127.255.255", Some(SharedCgnat)),
            ("169.254.0.1", Some(LinkLocal)),
            ("169.254.169.254", Some(CloudMetadata)),
            ("168.63.129.16", Some(CloudMetadata)),
            ("192.0.2.1", Some(Documentation)),
            ("198.51.100.7", Some(Documentation)),
            ("203.0.113.9", Some(Documentation)),
            ("192.0.0.8", Some(Reserved)),
            ("198.18.0.1", Some(Reserved)),
            ("224.0.0.1", Some(Multicast)),
            ("239.255.255.250", Some(Multicast)),
            ("255.255.255.255", Some(Broadcast)),
            ("240.0.0.1", Some(Reserved)),
            ("::", Some(Unspecified)),
            ("::1", Some(Loopback)),
            ("::ffff:127.0.0.1", Some(Loopback)),
            ("::ffff:10.1.2.3", Some(Private)),
            ("::ffff:169.254.169.254", Some(CloudMetadata)),
            ("::127.0.0.1", Some(Reserved)),
            ("64:ff9b::a00:1", Some(Private)),
            ("64:ff9b::7f00:1", Some(Loopback)),
            ("2002:7f00:1::", Some(Loopback)),
            ("2002:c0a8:101::1", Some(Private)),
            ("fc00::1", Some(UniqueLocal)),
            ("fd12:3456::1", Some(UniqueLocal)),
            ("fd00:ec2::254", Some(CloudMetadata)),
            ("fe80::1", Some(LinkLocal)),
            ("febf::1", Some(LinkLocal)),
            ("fec0::1", Some(Private)),
            ("ff02::1", Some(Multicast)),
            ("2001:db8::1", Some(Documentation)),
            ("3fff::1", Some(Documentation)),
            ("2001::1", Some(Reserved)),
            ("100::1", Some(Reserved)),
            // Public.
            ("1.1.1.1", None),
            ("8.8.8.8", None),
            ("100.63.255.255", None),
            ("100.128.0.1", None),
            ("172.15.255.255", None),
            ("172.32.0.1", None),
            ("169.253.0.1", None),
            ("192.0.3.1", None),
            ("223.255.255.255", None),
            ("::ffff:8.8.8.8", None),
            ("64:ff9b::808:808", None),
            ("2002:808:808::1", None),
            ("2606:4700:4700::1111", None),
            ("2a00:1450:4001::200e", None),
        ];
        for (text, want) in table {
            let ip: IpAddr = text.parse().unwrap_or_else(|_| panic!("{text}"));
            assert_eq!(classify(ip), *want, "{text}");
            assert_eq!(check_ip(ip, AddressPolicy::Public).err(), *want, "{text}");
            assert_eq!(check_ip(ip, AddressPolicy::Any), Ok(()), "{text}");
        }
    }

    #[test]
    fn hosts_are_judged_before_resolution() {
        let public = AddressPolicy::Public;
        let refused = |h: &str| check_host(h, public).err();
        assert_eq!(refused("hooks.example.com"), None);
        assert_eq!(refused("93.184.215.14"), None);
        assert_eq!(refused("[2606:4700::1]"), None);
        assert_eq!(
            refused("127.0.0.1"),
            Some(HostRefusal::Restricted(Restricted::Loopback))
        );
        assert_eq!(refused("[::1]"), Some(HostRefusal::Restricted(Restricted::Loopback)));
        assert_eq!(
            refused("[::ffff:a9fe:a9fe]"),
            Some(HostRefusal::Restricted(Restricted::CloudMetadata))
        );
        assert_eq!(
            refused("localhost"),
            Some(HostRefusal::Restricted(Restricted::Loopback))
        );
        assert_eq!(
            refused("api.LOCALHOST."),
            Some(HostRefusal::Restricted(Restricted::Loopback))
        );
        for odd in ["127.1", "0x7f.0.0.1", "0177.0.0.1", "10.0.0.0x1", "2130706433"] {
            assert_eq!(refused(odd), Some(HostRefusal::AmbiguousNumeric), "{odd}");
        }
        for h in ["127.0.0.1", "localhost", "[::1]", "127.1"] {
            assert_eq!(check_host(h, AddressPolicy::Any), Ok(()), "{h}");
        }
    }

    #[test]
    fn url_hosts() {
        assert_eq!(url_host("https://a.example/x?y#z"), Some("a.example"));
        assert_eq!(url_host("http://10.0.0.1:8080/hook"), Some("10.0.0.1"));
        assert_eq!(url_host("http://[::1]:8080/hook"), Some("[::1]"));
        assert_eq!(url_host("http://u:p@127.0.0.1/"), Some("127.0.0.1"));
        assert_eq!(url_host("no scheme"), None);
    }
}
