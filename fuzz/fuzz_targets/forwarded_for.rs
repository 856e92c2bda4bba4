//! The client address behind proxies (`PeerIp::client_ip`), `Cidr` and `ConfigKey` parsing in
//! espresso-rate-limit, against an independent model of the documented rules.
//!
//! The input is text, one directive a line (other lines are ignored):
//! `peer <socket address>`, `trust <network>`, `mode forwarded` (read `Forwarded` instead of
//! `X-Forwarded-For`), `x-forwarded-for: <value>`, `forwarded: <value>` (raw bytes, in order),
//! `key <rate-limit key setting>`.
//!
//! Checked:
//! - no panic; `Cidr` parses exactly the documented `addr[/prefix]` forms, contains its own
//!   address, and matches addresses as a bitwise prefix model does (IPv4-mapped IPv6 as IPv4);
//! - `client_ip` is the peer when no proxy is trusted or the peer is not trusted; otherwise the
//!   model's walk: hops of the one configured header, right to left, trusted hops skipped, the
//!   first untrusted hop is the client, a malformed hop (or a value that is not visible ASCII)
//!   stops the walk at the last good hop; the answer is always the peer or a hop's address;
//! - `ConfigKey` accepts exactly `ip`, `global` and `header:<valid name>` (trimmed), and its `ip`
//!   key with the same trusted networks extracts the same address.
#![no_main]

use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use espresso_rate_limit::{
    Cidr, ConfigKey, ForwardedHeader, KeyExtractor, PeerIp, key::ConfigKeyValue,
};
use http::{HeaderValue, Request};
use libfuzzer_sys::fuzz_target;

/// A network as the model sees it: the address as 128 bits (IPv4 in the low 32) and the prefix.
#[derive(Clone, Copy, Debug)]
struct Net {
    v4: bool,
    bits: u128,
    prefix: u32,
}

fn bits(ip: IpAddr) -> (bool, u128) {
    match ip.to_canonical() {
        IpAddr::V4(v4) => (true, u128::from(u32::from(v4))),
        IpAddr::V6(v6) => (false, u128::from(v6)),
    }
}

impl Net {
    /// `addr/prefix` or a bare address (a /32 or /128), surrounding spaces ignored.
    fn parse(s: &str) -> Option<Net> {
        let s = s.trim();
        let (addr, prefix) = match s.find('/') {
            Some(slash) => (&s[..slash], Some(&s[slash + 1..])),
            None => (s, None),
        };
        let (v4, bits) = self::bits(addr.parse::<IpAddr>().ok()?);
        let width = if v4 { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => u32::from(p.parse::<u8>().ok()?),
            None => width,
        };
        (prefix <= width).then_some(Net { v4, bits, prefix })
    }

    fn contains(&self, ip: IpAddr) -> bool {
        let (v4, bits) = self::bits(ip);
        if v4 != self.v4 {
            return false;
        }
        let width = if v4 { 32 } else { 128 };
        // compare the top `prefix` bits of a `width`-bit number
        let drop = width - self.prefix;
        drop >= 128 || (bits >> drop) == (self.bits >> drop)
    }
}

/// `1.2.3.4`, `1.2.3.4:80`, `::1`, `[::1]:80`, `[::1]`.
fn node(s: &str) -> Option<IpAddr> {
    let ip = s
        .parse::<IpAddr>()
        .ok()
        .or_else(|| s.parse::<SocketAddr>().ok().map(|a| a.ip()))
        .or_else(|| {
            let inner = s.strip_prefix('[')?.strip_suffix(']')?;
            inner.parse::<Ipv6Addr>().ok().map(IpAddr::V6)
        })?;
    Some(ip.to_canonical())
}

/// RFC 7239 element: `;`-separated `name=value` pairs, exactly one `for`, value maybe quoted.
fn forwarded_element(element: &str) -> Option<IpAddr> {
    let mut found = None;
    for pair in element.split(';') {
        let (name, value) = pair.trim().split_once('=')?;
        if !name.trim().eq_ignore_ascii_case("for") {
            continue;
        }
        if found.is_some() {
            return None;
        }
        let value = value.trim();
        let value = if let Some(quoted) = value.strip_prefix('"') {
            quoted.strip_suffix('"')?
        } else {
            value
        };
        found = Some(node(value)?);
    }
    found
}

/// The hops of the header values, left to right; `None` for a malformed one.
fn hops(values: &[Vec<u8>], forwarded: bool) -> Vec<Option<IpAddr>> {
    let mut out = Vec::new();
    for value in values {
        let visible = value
            .iter()
            .all(|&b| b == b'\t' || (0x20..0x7f).contains(&b));
        if !visible {
            out.push(None);
            continue;
        }
        let text = std::str::from_utf8(value).expect("visible ASCII");
        for hop in text.split(',') {
            out.push(if forwarded {
                forwarded_element(hop)
            } else {
                node(hop.trim())
            });
        }
    }
    out
}

fn model_client(peer: Option<IpAddr>, nets: &[Net], hops: &[Option<IpAddr>]) -> Option<IpAddr> {
    let peer = peer?.to_canonical();
    let trusted = |ip: IpAddr| nets.iter().any(|n| n.contains(ip));
    if !trusted(peer) {
        return Some(peer);
    }
    let mut client = peer;
    for hop in hops.iter().rev() {
        let Some(ip) = *hop else {
            return Some(client);
        };
        client = ip;
        if !trusted(ip) {
            break;
        }
    }
    Some(client)
}

fn model_config_key(s: &str) -> bool {
    match s.trim() {
        "ip" | "global" => true,
        other => other
            .strip_prefix("header:")
            .is_some_and(|name| http::HeaderName::try_from(name.trim()).is_ok()),
    }
}

fuzz_target!(|data: &[u8]| {
    let mut peer = None;
    let mut nets = Vec::new();
    let mut cidrs = Vec::new();
    let mut forwarded_mode = false;
    let mut request = Request::new(());
    let (mut xff, mut fwd) = (Vec::new(), Vec::new());
    for line in data.split(|&b| b == b'\n').take(64) {
        if let Some(value) = line.strip_prefix(b"x-forwarded-for:") {
            let value = value.strip_prefix(b" ").unwrap_or(value);
            if let Ok(v) = HeaderValue::from_bytes(value) {
                request.headers_mut().append("x-forwarded-for", v);
                xff.push(value.to_vec());
            }
            continue;
        }
        if let Some(value) = line.strip_prefix(b"forwarded:") {
            let value = value.strip_prefix(b" ").unwrap_or(value);
            if let Ok(v) = HeaderValue::from_bytes(value) {
                request.headers_mut().append("forwarded", v);
                fwd.push(value.to_vec());
            }
            continue;
        }
        let Ok(line) = std::str::from_utf8(line) else {
            continue;
        };
        if let Some(addr) = line.strip_prefix("peer ") {
            if let Ok(addr) = addr.parse::<SocketAddr>() {
                peer = Some(addr);
            }
        } else if let Some(net) = line.strip_prefix("trust ") {
            let parsed = net.parse::<Cidr>();
            let model = Net::parse(net);
            assert_eq!(
                parsed.is_ok(),
                model.is_some(),
                "Cidr::from_str({net:?}): {parsed:?}"
            );
            if let (Ok(cidr), Some(model)) = (parsed, model) {
                let addr = net.trim().split('/').next().unwrap_or("");
                let addr: IpAddr = addr.parse().expect("the model parsed it");
                assert!(
                    cidr.contains(addr),
                    "{cidr:?} does not contain its own address"
                );
                cidrs.push(cidr);
                nets.push(model);
            }
        } else if line == "mode forwarded" {
            forwarded_mode = true;
        } else if let Some(setting) = line.strip_prefix("key ") {
            let parsed = setting.parse::<ConfigKey>();
            assert_eq!(
                parsed.is_ok(),
                model_config_key(setting),
                "ConfigKey {setting:?}"
            );
        }
    }
    if let Some(addr) = peer {
        request.extensions_mut().insert(addr);
    }
    let (parts, ()) = request.into_parts();

    // Cidr matching against the model, on the peer and every hop's address.
    let hop_list = hops(if forwarded_mode { &fwd } else { &xff }, forwarded_mode);
    let probes: Vec<IpAddr> = peer
        .map(|p| p.ip())
        .into_iter()
        .chain(hop_list.iter().flatten().copied())
        .collect();
    for (cidr, net) in cidrs.iter().zip(&nets) {
        for &ip in &probes {
            assert_eq!(
                cidr.contains(ip),
                net.contains(ip),
                "{cidr:?} contains {ip}"
            );
        }
    }

    let mut key = PeerIp::new().trust_all(cidrs.iter().copied());
    if forwarded_mode {
        key = key.forwarded_header(ForwardedHeader::Forwarded);
    }
    let got = key.client_ip(&parts);
    let peer_ip = peer.map(|p| p.ip().to_canonical());
    assert_eq!(
        got,
        model_client(peer.map(|p| p.ip()), &nets, &hop_list),
        "client_ip"
    );
    if cidrs.is_empty() {
        assert_eq!(got, peer_ip, "no trusted proxy: the peer is the client");
    }
    if let Some(ip) = got {
        assert!(
            Some(ip) == peer_ip || hop_list.contains(&Some(ip)),
            "{ip} is neither the peer nor a hop"
        );
    }
    assert_eq!(PeerIp::new().client_ip(&parts), peer_ip);
    assert_eq!(key.extract(&parts), got);
    if !forwarded_mode {
        let config_key = "ip".parse::<ConfigKey>().unwrap().trust_proxies(cidrs);
        assert_eq!(config_key.extract(&parts), got.map(ConfigKeyValue::Ip));
    }
});
