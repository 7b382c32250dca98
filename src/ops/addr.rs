//! The client's address: the TCP peer, unless the peer is a trusted proxy
//! (`auth.trusted_proxies`), in which case `X-Forwarded-For` is read from the right,
//! skipping trusted hops; the first untrusted address is the client. Entries a client
//! could have forged (left of the first untrusted hop) are never believed.

use std::net::{IpAddr, SocketAddr};

use axum::http::HeaderMap;
use ipnet::IpNet;

/// The resolved client address, in each request's extensions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientAddr(pub IpAddr);

fn trusted(ip: IpAddr, proxies: &[IpNet]) -> bool {
    let ip = canonical(ip);
    proxies.iter().any(|n| n.contains(&ip))
}

/// An IPv4 peer on a dual-stack socket arrives as `::ffff:a.b.c.d`.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// One `X-Forwarded-For` entry: an address, perhaps with a port or in brackets.
fn parse_hop(s: &str) -> Option<IpAddr> {
    let s = s.trim();
    s.parse::<IpAddr>()
        .ok()
        .or_else(|| s.parse::<SocketAddr>().ok().map(|a| a.ip()))
        .or_else(|| s.strip_prefix('[')?.strip_suffix(']')?.parse().ok())
}

/// The client of a request that came from `peer` with `headers`.
pub fn resolve(peer: IpAddr, headers: &HeaderMap, proxies: &[IpNet]) -> IpAddr {
    let peer = canonical(peer);
    if !trusted(peer, proxies) {
        return peer;
    }
    let hops: Vec<&str> =
        headers.get_all("x-forwarded-for").iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(',')).collect();
    let mut client = peer;
    for hop in hops.iter().rev() {
        let Some(ip) = parse_hop(hop).map(canonical) else {
            // Garbage from here on to the left: the last hop we could read is the client.
            break;
        };
        client = ip;
        if !trusted(ip, proxies) {
            break;
        }
    }
    client
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(xff: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in xff {
            h.append("x-forwarded-for", v.parse().unwrap());
        }
        h
    }

    fn nets(s: &[&str]) -> Vec<IpNet> {
        s.iter().map(|n| n.parse().unwrap()).collect()
    }

    #[test]
    fn resolves_through_trusted_proxies_only() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let proxies = nets(&["10.0.0.0/8", "::1/128", "127.0.0.1/32"]);
        let cases: &[(&str, &[&str], &str)] = &[
            // Untrusted peer: its header is ignored.
            ("203.0.113.9", &["1.2.3.4"], "203.0.113.9"),
            // Trusted peer, one hop.
            ("10.0.0.2", &["198.51.100.7"], "198.51.100.7"),
            // A client-supplied entry left of the real client is not believed.
            ("10.0.0.2", &["6.6.6.6, 198.51.100.7"], "198.51.100.7"),
            // Chained trusted proxies are skipped; several headers are one list.
            ("10.0.0.2", &["198.51.100.7, 10.1.1.1", "10.2.2.2"], "198.51.100.7"),
            // Ports and brackets.
            ("127.0.0.1", &["198.51.100.7:4711"], "198.51.100.7"),
            ("::1", &["[2001:db8::1]:443"], "2001:db8::1"),
            ("::1", &["[2001:db8::2]"], "2001:db8::2"),
            // No header, or garbage: the nearest address we can read.
            ("10.0.0.2", &[], "10.0.0.2"),
            ("10.0.0.2", &["garbage"], "10.0.0.2"),
            ("10.0.0.2", &["198.51.100.7, garbage, 10.3.3.3"], "10.3.3.3"),
            // All trusted: the leftmost.
            ("10.0.0.2", &["10.9.9.9, 10.8.8.8"], "10.9.9.9"),
            // IPv4-mapped IPv6 peer matches an IPv4 network.
            ("::ffff:10.0.0.2", &["198.51.100.7"], "198.51.100.7"),
        ];
        for (peer, xff, want) in cases {
            assert_eq!(resolve(ip(peer), &headers(xff), &proxies), ip(want), "{peer} {xff:?}");
        }
        // No trusted proxies: always the peer.
        assert_eq!(resolve(ip("10.0.0.2"), &headers(&["1.2.3.4"]), &[]), ip("10.0.0.2"));
    }
}
