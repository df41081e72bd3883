//! The PROXY protocol (HAProxy's, versions 1 and 2), pure: the client address a load
//! balancer puts in front of a connection. Accepted only from trusted networks, so that the
//! address used in logs, limits and Received headers cannot be forged.
//!
//! `parse` returns `Ok(None)` while the header is incomplete (a normal result).
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

const V2_SIGNATURE: &[u8; 12] = b"\r\n\r\n\0\r\nQUIT\n";
const V1_MAX: usize = 107;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// The real client, or `None` (LOCAL/UNKNOWN: the balancer's own health check).
    pub source: Option<SocketAddr>,
    /// Octets the header took.
    pub len: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProxyError {
    #[error("not a PROXY protocol header")]
    Missing,
    #[error("malformed PROXY protocol header: {0}")]
    Malformed(&'static str),
}

pub fn parse(buf: &[u8]) -> Result<Option<Header>, ProxyError> {
    let seen = |sig: &[u8]| sig.starts_with(&buf[..buf.len().min(sig.len())]);
    match buf.first() {
        None => Ok(None),
        Some(b'\r') if !seen(V2_SIGNATURE) => Err(ProxyError::Missing),
        Some(b'\r') if buf.len() < V2_SIGNATURE.len() => Ok(None),
        Some(b'\r') => parse_v2(buf),
        Some(_) if seen(b"PROXY ") => parse_v1(buf),
        Some(_) => Err(ProxyError::Missing),
    }
}

fn parse_v1(buf: &[u8]) -> Result<Option<Header>, ProxyError> {
    let Some(end) = buf.iter().position(|&b| b == b'\n') else {
        return if buf.len() > V1_MAX {
            Err(ProxyError::Malformed("line too long"))
        } else {
            Ok(None)
        };
    };
    if end == 0 || buf[end - 1] != b'\r' || end + 1 > V1_MAX {
        return Err(ProxyError::Malformed("bad line ending"));
    }
    let line =
        std::str::from_utf8(&buf[..end - 1]).map_err(|_| ProxyError::Malformed("not text"))?;
    let parts: Vec<&str> = line.split(' ').collect();
    let source = match parts.as_slice() {
        ["PROXY", "UNKNOWN", ..] => None,
        ["PROXY", fam @ ("TCP4" | "TCP6"), src, _dst, sport, _dport] => {
            let ip: IpAddr = src
                .parse()
                .map_err(|_| ProxyError::Malformed("bad source address"))?;
            if (*fam == "TCP4") != ip.is_ipv4() {
                return Err(ProxyError::Malformed("address family mismatch"));
            }
            let port: u16 = sport
                .parse()
                .map_err(|_| ProxyError::Malformed("bad source port"))?;
            Some(SocketAddr::new(ip, port))
        }
        _ => return Err(ProxyError::Malformed("unknown v1 form")),
    };
    Ok(Some(Header {
        source,
        len: end + 1,
    }))
}

fn parse_v2(buf: &[u8]) -> Result<Option<Header>, ProxyError> {
    if buf.len() < 16 {
        return Ok(None);
    }
    let (ver_cmd, family) = (buf[12], buf[13]);
    if ver_cmd >> 4 != 2 {
        return Err(ProxyError::Malformed("unsupported version"));
    }
    let len = 16 + usize::from(u16::from_be_bytes([buf[14], buf[15]]));
    if buf.len() < len {
        return Ok(None);
    }
    let body = &buf[16..len];
    let source = match (ver_cmd & 0x0f, family >> 4) {
        (0, _) => None, // LOCAL
        (1, 1) if body.len() >= 12 => {
            let ip = Ipv4Addr::new(body[0], body[1], body[2], body[3]);
            Some(SocketAddr::new(
                ip.into(),
                u16::from_be_bytes([body[8], body[9]]),
            ))
        }
        (1, 2) if body.len() >= 36 => {
            let mut octets = [0u8; 16];
            octets.copy_from_slice(&body[..16]);
            Some(SocketAddr::new(
                Ipv6Addr::from(octets).into(),
                u16::from_be_bytes([body[32], body[33]]),
            ))
        }
        (1, 0) => None, // UNSPEC
        (1, _) => return Err(ProxyError::Malformed("unsupported address family")),
        _ => return Err(ProxyError::Malformed("unsupported command")),
    };
    Ok(Some(Header { source, len }))
}

/// A set of trusted networks ("10.0.0.0/8", "127.0.0.1", "::1/128").
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Networks(Vec<(IpAddr, u8)>);

impl Networks {
    pub fn parse(list: &[String]) -> Result<Networks, String> {
        let mut nets = Vec::new();
        for item in list.iter().map(|s| s.trim()).filter(|s| !s.is_empty()) {
            let (ip, bits) = match item.split_once('/') {
                Some((ip, bits)) => (ip, Some(bits)),
                None => (item, None),
            };
            let ip: IpAddr = ip.parse().map_err(|_| format!("bad network {item:?}"))?;
            let max = if ip.is_ipv4() { 32 } else { 128 };
            let bits = match bits {
                Some(b) => b
                    .parse::<u8>()
                    .ok()
                    .filter(|b| *b <= max)
                    .ok_or(format!("bad prefix in {item:?}"))?,
                None => max,
            };
            nets.push((ip, bits));
        }
        Ok(Networks(nets))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        self.0.iter().any(|(net, bits)| match (net, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => prefix_eq(&n.octets(), &a.octets(), *bits),
            (IpAddr::V6(n), IpAddr::V6(a)) => prefix_eq(&n.octets(), &a.octets(), *bits),
            _ => false,
        })
    }
}

fn prefix_eq(a: &[u8], b: &[u8], bits: u8) -> bool {
    let (full, rest) = (usize::from(bits / 8), bits % 8);
    a[..full] == b[..full] && (rest == 0 || (a[full] ^ b[full]) >> (8 - rest) == 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_1() {
        let h = b"PROXY TCP4 192.0.2.9 198.51.100.1 40000 25\r\nEHLO x\r\n";
        for cut in 0..44 {
            assert_eq!(parse(&h[..cut]), Ok(None), "incomplete at {cut}");
        }
        assert_eq!(
            parse(h),
            Ok(Some(Header {
                source: Some("192.0.2.9:40000".parse().unwrap()),
                len: 44
            }))
        );
        assert_eq!(
            parse(b"PROXY UNKNOWN\r\n"),
            Ok(Some(Header {
                source: None,
                len: 15
            }))
        );
        assert!(parse(b"PROXY TCP4 2001:db8::1 ::1 1 2\r\n").is_err());
        assert!(parse(b"EHLO x\r\n").is_err());
        assert!(parse(&[b'P'; 200]).is_err());
    }

    #[test]
    fn version_2() {
        let mut h = V2_SIGNATURE.to_vec();
        h.extend([
            0x21, 0x11, 0, 12, 192, 0, 2, 9, 198, 51, 100, 1, 0x9c, 0x40, 0, 25,
        ]);
        for cut in 0..h.len() {
            assert_eq!(parse(&h[..cut]), Ok(None), "incomplete at {cut}");
        }
        h.extend(b"EHLO");
        assert_eq!(
            parse(&h),
            Ok(Some(Header {
                source: Some("192.0.2.9:40000".parse().unwrap()),
                len: 28
            }))
        );
        let mut local = V2_SIGNATURE.to_vec();
        local.extend([0x20, 0x00, 0, 0]);
        assert_eq!(
            parse(&local),
            Ok(Some(Header {
                source: None,
                len: 16
            }))
        );
    }

    #[test]
    fn networks() {
        let n = Networks::parse(&[
            "10.0.0.0/8".into(),
            "127.0.0.1".into(),
            "2001:db8::/32".into(),
        ])
        .unwrap();
        assert!(n.contains("10.1.2.3".parse().unwrap()));
        assert!(n.contains("::ffff:127.0.0.1".parse().unwrap()));
        assert!(!n.contains("127.0.0.2".parse().unwrap()));
        assert!(n.contains("2001:db8:1::1".parse().unwrap()));
        assert!(!n.contains("11.0.0.1".parse().unwrap()));
        assert!(Networks::parse(&["10.0.0.0/33".into()]).is_err());
    }
}
