//! TLSA lookups for DANE (RFC 7672 §2.2), through the DNSSEC-validating resolver the
//! operator names (`--dane-resolver`, e.g. a local unbound): the query asks for the AD bit
//! (RFC 6840 §5.7), and the resolver's AD answers for whether the records are authentic —
//! so the path to it must be trusted (loopback, or a private network), as for Postfix and
//! Exim. UDP first, TCP when the answer is truncated; a timeout or SERVFAIL is a failure,
//! which `policy::dane` never reads as "no DANE".
use super::policy::dane::{classify, Answer, Dane, Tlsa};
use hickory_resolver::proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_resolver::proto::rr::{Name, RData, RecordType};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

/// How long one try waits for the resolver (two tries over UDP, then TCP if truncated).
const TRY: Duration = Duration::from_secs(5);

#[derive(Debug, Clone)]
pub struct DaneResolver {
    server: SocketAddr,
    timeout: Duration,
}

impl DaneResolver {
    pub fn new(server: SocketAddr) -> DaneResolver {
        DaneResolver {
            server,
            timeout: TRY,
        }
    }

    /// What the TLSA records of `host`'s SMTP service (`_25._tcp.<host>`) mean.
    pub async fn lookup(&self, host: &str) -> Dane {
        let name = format!("_25._tcp.{}.", host.trim_end_matches('.'));
        let dane = classify(self.answer(&name).await);
        if let Dane::Unusable(why) = &dane {
            tracing::warn!(host, reason = %why, "TLSA lookup failed; the host is not used now");
        }
        dane
    }

    async fn answer(&self, name: &str) -> Answer {
        let query = match query(name) {
            Ok(q) => q,
            Err(e) => return Answer::Failed(format!("TLSA query for {name}: {e}")),
        };
        let mut last = String::new();
        for _ in 0..2 {
            match tokio::time::timeout(self.timeout, self.udp(&query)).await {
                Ok(Ok(reply)) if reply.truncated() => return self.over_tcp(name, &query).await,
                Ok(Ok(reply)) => return answer(name, &reply),
                Ok(Err(e)) => last = e.to_string(),
                Err(_) => last = "timed out".into(),
            }
        }
        Answer::Failed(format!("TLSA lookup of {name} at {}: {last}", self.server))
    }

    async fn over_tcp(&self, name: &str, query: &[u8]) -> Answer {
        match tokio::time::timeout(self.timeout, self.tcp(query)).await {
            Ok(Ok(reply)) => answer(name, &reply),
            Ok(Err(e)) => Answer::Failed(format!("TLSA lookup of {name} over TCP: {e}")),
            Err(_) => Answer::Failed(format!("TLSA lookup of {name} over TCP timed out")),
        }
    }

    async fn udp(&self, query: &[u8]) -> std::io::Result<Message> {
        let bind: SocketAddr = if self.server.is_ipv4() {
            ([0, 0, 0, 0], 0).into()
        } else {
            (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
        };
        let socket = UdpSocket::bind(bind).await?;
        socket.connect(self.server).await?;
        socket.send(query).await?;
        // Room for the EDNS size asked for and more; anything longer comes truncated (TCP).
        let mut buf = vec![0u8; 4096];
        loop {
            let n = socket.recv(&mut buf).await?;
            // Only the reply to this query (its id); anything else is ignored.
            if n >= 2 && buf[..2] == query[..2] {
                return Message::from_vec(&buf[..n]).map_err(invalid);
            }
        }
    }

    async fn tcp(&self, query: &[u8]) -> std::io::Result<Message> {
        let mut tcp = TcpStream::connect(self.server).await?;
        let length = u16::try_from(query.len()).map_err(invalid)?;
        tcp.write_all(&length.to_be_bytes()).await?;
        tcp.write_all(query).await?;
        let n = tcp.read_u16().await?;
        let mut buf = vec![0u8; usize::from(n)];
        tcp.read_exact(&mut buf).await?;
        Message::from_vec(&buf).map_err(invalid)
    }
}

fn invalid(e: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string())
}

/// A recursive TLSA query asking for the AD bit, with EDNS for answers up to 1232 octets.
fn query(name: &str) -> Result<Vec<u8>, String> {
    let name = Name::from_ascii(name).map_err(|e| e.to_string())?;
    let mut m = Message::new();
    m.set_id(rand::random())
        .set_message_type(MessageType::Query)
        .set_op_code(OpCode::Query)
        .set_recursion_desired(true)
        .set_authentic_data(true)
        .add_query(Query::query(name, RecordType::TLSA));
    let mut edns = Edns::new();
    edns.set_max_payload(1232);
    m.set_edns(edns);
    m.to_vec().map_err(|e| e.to_string())
}

/// The resolver's reply as `policy::dane` reads it.
fn answer(name: &str, reply: &Message) -> Answer {
    match reply.response_code() {
        ResponseCode::NoError => Answer::Records {
            authentic: reply.authentic_data(),
            records: reply
                .answers()
                .iter()
                .filter_map(|r| match r.data() {
                    RData::TLSA(t) => Some(Tlsa {
                        usage: t.cert_usage().into(),
                        selector: t.selector().into(),
                        matching: t.matching().into(),
                        data: t.cert_data().to_vec(),
                    }),
                    _ => None,
                })
                .collect(),
        },
        ResponseCode::NXDomain => Answer::NxDomain,
        ResponseCode::ServFail => Answer::Failed(format!(
            "TLSA lookup of {name}: SERVFAIL from the validating resolver (DNSSEC validation failed, or the zone's servers did not answer)"
        )),
        code => Answer::Failed(format!("TLSA lookup of {name}: {code}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_resolver_that_never_answers_makes_the_host_unusable_in_bounded_time() {
        let silent = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let resolver = DaneResolver {
            server: silent.local_addr().unwrap(),
            timeout: Duration::from_millis(100),
        };
        let began = std::time::Instant::now();
        let dane = resolver.lookup("mx.example.org").await;
        assert!(
            matches!(&dane, Dane::Unusable(why) if why.contains("timed out")),
            "{dane:?}"
        );
        assert!(began.elapsed() < Duration::from_secs(2));
    }

    #[tokio::test]
    async fn garbage_from_the_resolver_is_a_failure_not_no_dane() {
        let server = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = server.local_addr().unwrap();
        tokio::spawn(async move {
            let mut buf = [0u8; 512];
            while let Ok((_, from)) = server.recv_from(&mut buf).await {
                // The query's id, then nonsense.
                let reply = [buf[0], buf[1], 0xff, 0xff, 0xff];
                let _ = server.send_to(&reply, from).await;
            }
        });
        let resolver = DaneResolver {
            server: addr,
            timeout: Duration::from_millis(300),
        };
        let dane = resolver.lookup("mx.example.org").await;
        assert!(matches!(dane, Dane::Unusable(_)), "{dane:?}");
    }
}
