//! The DNS wire format (RFC 1035), just what a container resolver needs: parse a
//! query's header and first question, build answers with A, AAAA and PTR records,
//! and rewrite a forwarded reply's id. Pure functions over byte slices; malformed
//! input is an error, never a panic.

use std::net::IpAddr;

pub const TYPE_A: u16 = 1;
pub const TYPE_PTR: u16 = 12;
pub const TYPE_AAAA: u16 = 28;
pub const CLASS_IN: u16 = 1;

pub const RCODE_NOERROR: u8 = 0;
pub const RCODE_FORMERR: u8 = 1;
pub const RCODE_SERVFAIL: u8 = 2;
pub const RCODE_NXDOMAIN: u8 = 3;
pub const RCODE_REFUSED: u8 = 5;

const HEADER_LEN: usize = 12;
/// Seconds a client may cache our answers: containers come and go.
const TTL: u32 = 60;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("message shorter than a DNS header ({0} bytes)")]
    Short(usize),
    #[error("not a query (QR bit set or opcode {0})")]
    NotQuery(u8),
    #[error("no question in the query")]
    NoQuestion,
    #[error("malformed name at offset {0}")]
    BadName(usize),
    #[error("truncated question")]
    Truncated,
}

/// A parsed query: what we need to answer it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    pub id: u16,
    /// Recursion desired, echoed in the reply.
    pub rd: bool,
    /// Lower-case, without the trailing dot.
    pub name: String,
    pub qtype: u16,
    pub qclass: u16,
    /// Byte range of the first question (name, type, class) in the query.
    question: std::ops::Range<usize>,
}

pub fn parse_query(msg: &[u8]) -> Result<Query, WireError> {
    if msg.len() < HEADER_LEN {
        return Err(WireError::Short(msg.len()));
    }
    let id = u16::from_be_bytes([msg[0], msg[1]]);
    let flags = msg[2];
    let opcode = (flags >> 3) & 0x0f;
    if flags & 0x80 != 0 || opcode != 0 {
        return Err(WireError::NotQuery(opcode));
    }
    let qdcount = u16::from_be_bytes([msg[4], msg[5]]);
    if qdcount == 0 {
        return Err(WireError::NoQuestion);
    }
    let (name, end) = read_name(msg, HEADER_LEN)?;
    let fixed = msg.get(end..end + 4).ok_or(WireError::Truncated)?;
    Ok(Query {
        id,
        rd: flags & 0x01 != 0,
        name,
        qtype: u16::from_be_bytes([fixed[0], fixed[1]]),
        qclass: u16::from_be_bytes([fixed[2], fixed[3]]),
        question: HEADER_LEN..end + 4,
    })
}

/// Read a (possibly compressed) name starting at `start`; returns it and the offset
/// just past it in the original position.
fn read_name(msg: &[u8], start: usize) -> Result<(String, usize), WireError> {
    let mut labels: Vec<String> = Vec::new();
    let mut pos = start;
    let mut end = None;
    // Each pointer must go backwards, so a loop of pointers cannot recur forever;
    // the hop limit is a second guard.
    for _ in 0..128 {
        let len = *msg.get(pos).ok_or(WireError::BadName(pos))? as usize;
        match len {
            0 => {
                let after = end.unwrap_or(pos + 1);
                let name = labels.join(".").to_ascii_lowercase();
                if name.len() > 253 {
                    return Err(WireError::BadName(start));
                }
                return Ok((name, after));
            }
            l if l & 0xc0 == 0xc0 => {
                let lo = *msg.get(pos + 1).ok_or(WireError::BadName(pos))? as usize;
                let target = ((l & 0x3f) << 8) | lo;
                if target >= pos {
                    return Err(WireError::BadName(pos));
                }
                end.get_or_insert(pos + 2);
                pos = target;
            }
            l if l <= 63 => {
                let bytes = msg
                    .get(pos + 1..pos + 1 + l)
                    .ok_or(WireError::BadName(pos))?;
                labels.push(String::from_utf8_lossy(bytes).into_owned());
                pos += 1 + l;
            }
            _ => return Err(WireError::BadName(pos)),
        }
    }
    Err(WireError::BadName(start))
}

/// An answer record's data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rdata {
    Ip(IpAddr),
    /// A PTR target name (without trailing dot).
    Ptr(String),
}

/// Build a reply to `q` (parsed from `query`) with `rcode` and `answers`, each
/// owned by the question's name.
pub fn build_reply(query: &[u8], q: &Query, rcode: u8, answers: &[Rdata]) -> Vec<u8> {
    let mut out = Vec::with_capacity(512);
    out.extend_from_slice(&q.id.to_be_bytes());
    // QR=1, opcode 0, AA=1 (we are the authority for container names), RD echoed,
    // RA=1 (we forward what is not ours).
    out.push(0x84 | u8::from(q.rd));
    out.push(0x80 | (rcode & 0x0f));
    out.extend_from_slice(&1u16.to_be_bytes());
    out.extend_from_slice(&(answers.len() as u16).to_be_bytes());
    out.extend_from_slice(&0u16.to_be_bytes());
    out.extend_from_slice(&0u16.to_be_bytes());
    out.extend_from_slice(&query[q.question.clone()]);
    for a in answers {
        // A pointer to the question's name at offset 12.
        out.extend_from_slice(&[0xc0, 0x0c]);
        let (rtype, rdata) = match a {
            Rdata::Ip(IpAddr::V4(ip)) => (TYPE_A, ip.octets().to_vec()),
            Rdata::Ip(IpAddr::V6(ip)) => (TYPE_AAAA, ip.octets().to_vec()),
            Rdata::Ptr(name) => (TYPE_PTR, encode_name(name)),
        };
        out.extend_from_slice(&rtype.to_be_bytes());
        out.extend_from_slice(&CLASS_IN.to_be_bytes());
        out.extend_from_slice(&TTL.to_be_bytes());
        out.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
        out.extend_from_slice(&rdata);
    }
    out
}

/// A reply with only a header (for queries we cannot even parse a question from).
pub fn build_error(query: &[u8], rcode: u8) -> Option<Vec<u8>> {
    let id = query.get(0..2)?;
    let mut out = id.to_vec();
    out.push(0x80);
    out.push(0x80 | (rcode & 0x0f));
    out.extend_from_slice(&[0; 8]);
    Some(out)
}

fn encode_name(name: &str) -> Vec<u8> {
    let mut out = Vec::new();
    for label in name
        .trim_end_matches('.')
        .split('.')
        .filter(|l| !l.is_empty())
    {
        let bytes = &label.as_bytes()[..label.len().min(63)];
        out.push(bytes.len() as u8);
        out.extend_from_slice(bytes);
    }
    out.push(0);
    out
}

/// Set the id of a DNS message (for relaying a forwarded reply).
pub fn set_id(msg: &mut [u8], id: u16) {
    if msg.len() >= 2 {
        msg[..2].copy_from_slice(&id.to_be_bytes());
    }
}

/// The address a reverse name (`4.3.2.1.in-addr.arpa`) stands for.
pub fn reverse_name_to_ip(name: &str) -> Option<IpAddr> {
    let rest = name.strip_suffix(".in-addr.arpa")?;
    let mut octets: Vec<u8> = rest
        .split('.')
        .map(|o| o.parse().ok())
        .collect::<Option<_>>()?;
    if octets.len() != 4 {
        return None;
    }
    octets.reverse();
    Some(IpAddr::from([octets[0], octets[1], octets[2], octets[3]]))
}

/// Build a query (used by tests and the health check).
pub fn build_query(id: u16, name: &str, qtype: u16) -> Vec<u8> {
    let mut out = id.to_be_bytes().to_vec();
    out.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    out.extend_from_slice(&encode_name(name));
    out.extend_from_slice(&qtype.to_be_bytes());
    out.extend_from_slice(&CLASS_IN.to_be_bytes());
    out
}

/// The rcode and the addresses / PTR names of a reply (used by tests and clients).
pub fn parse_reply(msg: &[u8]) -> Result<(u8, Vec<Rdata>), WireError> {
    if msg.len() < HEADER_LEN {
        return Err(WireError::Short(msg.len()));
    }
    let rcode = msg[3] & 0x0f;
    let qd = u16::from_be_bytes([msg[4], msg[5]]);
    let an = u16::from_be_bytes([msg[6], msg[7]]);
    let mut pos = HEADER_LEN;
    for _ in 0..qd {
        pos = read_name(msg, pos)?.1 + 4;
    }
    let mut out = Vec::new();
    for _ in 0..an {
        pos = read_name(msg, pos)?.1;
        let fixed = msg.get(pos..pos + 10).ok_or(WireError::Truncated)?;
        let rtype = u16::from_be_bytes([fixed[0], fixed[1]]);
        let len = u16::from_be_bytes([fixed[8], fixed[9]]) as usize;
        let data = msg
            .get(pos + 10..pos + 10 + len)
            .ok_or(WireError::Truncated)?;
        match rtype {
            TYPE_A if len == 4 => out.push(Rdata::Ip(IpAddr::from([
                data[0], data[1], data[2], data[3],
            ]))),
            TYPE_AAAA if len == 16 => {
                let b: [u8; 16] = data.try_into().expect("16 bytes");
                out.push(Rdata::Ip(IpAddr::from(b)));
            }
            TYPE_PTR => out.push(Rdata::Ptr(read_name(msg, pos + 10)?.0)),
            _ => {}
        }
        pos += 10 + len;
    }
    Ok((rcode, out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_round_trips_through_a_reply() {
        let query = build_query(0x1234, "Web.", TYPE_A);
        let q = parse_query(&query).unwrap();
        assert_eq!(
            (q.id, q.name.as_str(), q.qtype, q.rd),
            (0x1234, "web", TYPE_A, true)
        );
        let ip: IpAddr = "10.89.0.2".parse().unwrap();
        let reply = build_reply(&query, &q, RCODE_NOERROR, &[Rdata::Ip(ip)]);
        assert_eq!(
            parse_reply(&reply).unwrap(),
            (RCODE_NOERROR, vec![Rdata::Ip(ip)])
        );
        assert_eq!(&reply[..2], &[0x12, 0x34]);
    }

    #[test]
    fn ptr_and_nxdomain_replies() {
        let query = build_query(7, "2.0.89.10.in-addr.arpa", TYPE_PTR);
        let q = parse_query(&query).unwrap();
        assert_eq!(
            reverse_name_to_ip(&q.name),
            Some("10.89.0.2".parse().unwrap())
        );
        let reply = build_reply(&query, &q, RCODE_NOERROR, &[Rdata::Ptr("web".into())]);
        assert_eq!(
            parse_reply(&reply).unwrap().1,
            vec![Rdata::Ptr("web".into())]
        );
        let nx = build_reply(&query, &q, RCODE_NXDOMAIN, &[]);
        assert_eq!(parse_reply(&nx).unwrap(), (RCODE_NXDOMAIN, vec![]));
    }

    #[test]
    fn malformed_input_is_an_error_not_a_panic() {
        assert!(matches!(parse_query(&[0; 5]), Err(WireError::Short(5))));
        // A compression pointer that points at itself.
        let mut looped = build_query(1, "a", TYPE_A);
        looped[12] = 0xc0;
        looped[13] = 12;
        assert!(parse_query(&looped).is_err());
        // A label running past the end.
        let mut long = build_query(1, "abc", TYPE_A);
        long[12] = 60;
        assert!(parse_query(&long).is_err());
        // Every truncation of a valid query fails cleanly.
        let q = build_query(9, "web.example", TYPE_A);
        for n in 0..q.len() {
            let _ = parse_query(&q[..n]);
        }
        // Pseudo-random bytes (bounded, deterministic).
        let mut x: u32 = 12345;
        for _ in 0..2000 {
            let buf: Vec<u8> = (0..40)
                .map(|_| {
                    x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                    (x >> 16) as u8
                })
                .collect();
            let _ = parse_query(&buf);
            let _ = parse_reply(&buf);
        }
    }

    #[test]
    fn responses_are_not_taken_for_queries() {
        let mut r = build_query(1, "a", TYPE_A);
        r[2] |= 0x80;
        assert!(matches!(parse_query(&r), Err(WireError::NotQuery(_))));
    }
}
