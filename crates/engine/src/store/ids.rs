//! Container ids and names: random ids, Docker's name rule, generated
//! `adjective_surname` names, and the order in which a user's reference resolves.

use std::fs::File;
use std::io::Read;

use super::{Result, StoreError};

/// Length of a full id in hex digits.
pub const ID_LEN: usize = 64;
/// Length of the short id (`ps`, the container's hostname).
pub const SHORT_ID_LEN: usize = 12;

/// `n` random bytes from the kernel.
pub fn random_bytes(n: usize) -> Result<Vec<u8>> {
    let mut buf = vec![0u8; n];
    File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .map_err(|source| StoreError::Random { source })?;
    Ok(buf)
}

/// A new random 64-hex id. Like Docker, an id that is all digits is drawn
/// again, so a short id is never mistaken for a number.
pub fn new_id() -> Result<String> {
    loop {
        let id = hex(&random_bytes(ID_LEN / 2)?);
        if !id[..SHORT_ID_LEN].bytes().all(|b| b.is_ascii_digit()) {
            return Ok(id);
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 0xf)] as char);
    }
    s
}

/// Whether `id` is a full id: 64 lowercase hex digits.
pub fn is_full_id(id: &str) -> bool {
    id.len() == ID_LEN && is_hex(id)
}

/// Whether `s` is non-empty lowercase hex (a possible id prefix).
pub fn is_hex(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// The first 12 digits of an id (the whole string if shorter).
pub fn short_id(id: &str) -> &str {
    id.get(..SHORT_ID_LEN).unwrap_or(id)
}

/// A name as the user wrote it, without Docker's optional leading `/`.
pub fn normalize_name(name: &str) -> &str {
    name.strip_prefix('/').unwrap_or(name)
}

/// Docker's rule for names: `[a-zA-Z0-9][a-zA-Z0-9_.-]+` (so at least two
/// characters).
pub fn is_valid_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    bytes.len() >= 2
        && bytes[0].is_ascii_alphanumeric()
        && bytes[1..]
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// Checks a container name (after [`normalize_name`]).
pub fn check_name(name: &str) -> Result<&str> {
    let name = normalize_name(name);
    if is_valid_name(name) {
        Ok(name)
    } else {
        Err(StoreError::InvalidName {
            name: name.to_string(),
        })
    }
}

const ADJECTIVES: &[&str] = &[
    "agile", "amber", "ardent", "atomic", "blithe", "bold", "brave", "breezy", "bright", "brisk",
    "calm", "candid", "cheery", "clever", "cosmic", "crisp", "daring", "dapper", "deft", "eager",
    "earnest", "elated", "epic", "fearless", "fervent", "festive", "fond", "frosty", "gallant",
    "gentle", "gleeful", "golden", "graceful", "hardy", "hearty", "humble", "jolly", "jovial",
    "keen", "kind", "lively", "lucid", "lucky", "mellow", "merry", "mighty", "modest", "nimble",
    "noble", "patient", "placid", "plucky", "polite", "proud", "quiet", "quirky", "radiant",
    "rapid", "rustic", "serene", "sharp", "shiny", "silent", "sleepy", "snappy", "spry", "stoic",
    "sturdy", "sunny", "swift", "tender", "tidy", "upbeat", "vivid", "wary", "witty", "zealous",
    "zesty",
];

/// Surnames of people who shaped computing, mathematics and science.
const SURNAMES: &[&str] = &[
    "agnesi",
    "babbage",
    "backus",
    "bell",
    "bernoulli",
    "boole",
    "cantor",
    "cerf",
    "chandrasekhar",
    "clarke",
    "conway",
    "curie",
    "dijkstra",
    "easley",
    "einstein",
    "engelbart",
    "euclid",
    "euler",
    "faraday",
    "fermat",
    "feynman",
    "franklin",
    "galois",
    "gauss",
    "germain",
    "goldberg",
    "goodall",
    "hamilton",
    "hawking",
    "hilbert",
    "hopper",
    "hypatia",
    "johnson",
    "kepler",
    "kilby",
    "knuth",
    "kowalevski",
    "lamarr",
    "lamport",
    "leavitt",
    "liskov",
    "lovelace",
    "maxwell",
    "mccarthy",
    "meitner",
    "mirzakhani",
    "moore",
    "napier",
    "neumann",
    "newton",
    "noether",
    "pascal",
    "perlman",
    "planck",
    "poincare",
    "ramanujan",
    "riemann",
    "ritchie",
    "shannon",
    "somerville",
    "stallman",
    "thompson",
    "torvalds",
    "turing",
    "volta",
    "wilkes",
    "wing",
    "wozniak",
    "yalow",
];

/// A random `adjective_surname` name. `retry` > 0 appends a random digit, as
/// Docker does once the plain names it drew were taken.
pub fn generate_name(retry: u32) -> Result<String> {
    let r = random_bytes(6)?;
    let pick = |hi: u8, lo: u8, len: usize| (usize::from(hi) << 8 | usize::from(lo)) % len;
    let adjective = ADJECTIVES[pick(r[0], r[1], ADJECTIVES.len())];
    let surname = SURNAMES[pick(r[2], r[3], SURNAMES.len())];
    let mut name = format!("{adjective}_{surname}");
    if retry > 0 {
        name.push(char::from(b'0' + r[4] % 10));
    }
    Ok(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_64_lowercase_hex_and_distinct() {
        let a = new_id().unwrap();
        let b = new_id().unwrap();
        assert!(is_full_id(&a), "{a}");
        assert_ne!(a, b);
        assert_eq!(short_id(&a).len(), 12);
        assert_eq!(short_id("abc"), "abc");
    }

    #[test]
    fn docker_name_rule() {
        for ok in ["web", "a1", "My_app.v2-x", "0day", "ab"] {
            assert!(is_valid_name(ok), "{ok}");
        }
        for bad in [
            "", "a", "_web", "-web", ".web", "web/1", "we b", "wéb", "web!",
        ] {
            assert!(!is_valid_name(bad), "{bad}");
        }
        assert_eq!(check_name("/web").unwrap(), "web");
        let err = check_name("-x").unwrap_err();
        assert_eq!(
            err.to_string(),
            "Invalid container name (-x), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
        );
    }

    #[test]
    fn generated_names_are_valid() {
        for retry in 0..50 {
            let name = generate_name(retry % 2).unwrap();
            assert!(is_valid_name(&name), "{name}");
            assert!(name.contains('_'));
            assert_eq!(name.ends_with(|c: char| c.is_ascii_digit()), retry % 2 == 1);
        }
    }

    #[test]
    fn word_lists_are_clean() {
        for w in ADJECTIVES.iter().chain(SURNAMES) {
            assert!(w.bytes().all(|b| b.is_ascii_lowercase()), "{w}");
        }
    }

    #[test]
    fn hex_rules() {
        assert!(is_hex("0af9"));
        assert!(!is_hex(""));
        assert!(!is_hex("ABC"));
        assert!(!is_hex("x1"));
        assert_eq!(hex(&[0x0f, 0xa0]), "0fa0");
    }
}
