//! The nft script of Coracle's table, built from a [`FirewallState`]. Pure: nothing
//! here reads the host. The chains and what each rule is for are described in the
//! [module docs](super).

use std::collections::HashSet;
use std::fmt::Write as _;
use std::net::IpAddr;

use super::{
    foreign_rule_comment, FirewallError, FirewallState, Network, PublishedPort, Sysctl,
    FORWARD_MARK, FORWARD_PRIORITY,
};
use crate::ports::check_conflicts;

/// What Coracle found in iptables' `ip filter FORWARD` chain before applying.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ForeignForward {
    /// The chain exists and its policy is drop: Coracle must add its accepts.
    pub policy_drop: bool,
    /// Handles of the rules carrying this table's comment (added by an earlier apply).
    pub our_handles: Vec<u64>,
}

/// Checks a table name: letters, digits and `_`, starting with a letter, at most 64.
pub fn validate_table_name(table: &str) -> Result<(), FirewallError> {
    let bad = |reason: &str| FirewallError::InvalidName {
        what: "table",
        name: table.to_string(),
        reason: reason.to_string(),
    };
    if table.is_empty() || table.len() > 64 {
        return Err(bad("must be 1 to 64 characters"));
    }
    if !table.starts_with(|c: char| c.is_ascii_alphabetic())
        || !table.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    {
        return Err(bad(
            "only letters, digits and '_' are allowed, starting with a letter",
        ));
    }
    Ok(())
}

fn validate_bridge(bridge: &str) -> Result<(), FirewallError> {
    let bad = |reason: &str| FirewallError::InvalidName {
        what: "bridge",
        name: bridge.to_string(),
        reason: reason.to_string(),
    };
    if bridge.is_empty() || bridge.len() > 15 {
        return Err(bad("an interface name has 1 to 15 characters"));
    }
    if !bridge
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
    {
        return Err(bad("only letters, digits, '_', '-' and '.' are allowed"));
    }
    Ok(())
}

fn validate_network_name(name: &str) -> Result<(), FirewallError> {
    if name.is_empty()
        || name.len() > 64
        || !name.starts_with(|c: char| c.is_ascii_alphanumeric())
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
    {
        return Err(FirewallError::InvalidName {
            what: "network",
            name: name.to_string(),
            reason: "1 to 64 letters, digits, '_', '-' or '.', starting with a letter or digit"
                .to_string(),
        });
    }
    Ok(())
}

/// Checks everything before anything is applied: names, duplicates, each published
/// port (known network that is not internal, container address in its subnet, host
/// port chosen, IPv4 host address) and conflicts between published ports.
pub fn validate(table: &str, state: &FirewallState) -> Result<(), FirewallError> {
    validate_table_name(table)?;
    let mut names = HashSet::new();
    let mut bridges = HashSet::new();
    for n in &state.networks {
        validate_network_name(&n.name)?;
        validate_bridge(&n.bridge)?;
        if !names.insert(n.name.as_str()) {
            return Err(FirewallError::DuplicateNetwork {
                network: n.name.clone(),
                reason: "the network is listed twice".to_string(),
            });
        }
        if !bridges.insert(n.bridge.as_str()) {
            return Err(FirewallError::DuplicateNetwork {
                network: n.name.clone(),
                reason: format!("bridge {} belongs to another network too", n.bridge),
            });
        }
    }
    for p in &state.ports {
        let bad = |reason: String| FirewallError::InvalidPort {
            mapping: p.mapping,
            container_ip: p.container_ip,
            network: p.network.clone(),
            reason,
        };
        let net = network_of(state, p).ok_or_else(|| bad("no such network".to_string()))?;
        if net.internal {
            return Err(bad(
                "the network is internal: its containers cannot publish ports".to_string(),
            ));
        }
        if !net.subnet.contains(&p.container_ip) {
            return Err(bad(format!(
                "the container address is outside the subnet {}",
                net.subnet
            )));
        }
        if !p.mapping.host_port_chosen() {
            return Err(bad(
                "no host port was chosen (the engine must pick one first)".to_string(),
            ));
        }
        if let Some(IpAddr::V6(ip)) = p.mapping.host_ip {
            return Err(bad(format!(
                "host address {ip} is IPv6 but the network is IPv4 only"
            )));
        }
    }
    let mappings: Vec<_> = state.ports.iter().map(|p| p.mapping).collect();
    check_conflicts(&mappings)?;
    Ok(())
}

fn network_of<'a>(state: &'a FirewallState, p: &PublishedPort) -> Option<&'a Network> {
    state.networks.iter().find(|n| n.name == p.network)
}

/// True when the port is reachable on 127.0.0.1 (published on every address or on a
/// loopback one), which needs route_localnet on the container's bridge.
fn reachable_on_loopback(p: &PublishedPort) -> bool {
    match p.mapping.host_ip {
        None => true,
        Some(ip) => ip.is_unspecified() || ip.is_loopback(),
    }
}

/// The sysctls the rules of `state` need (after the bridges exist):
/// `net.ipv4.ip_forward=1` when anything is forwarded, and
/// `net.ipv4.conf.<bridge>.route_localnet=1` for each bridge with a port published
/// on 127.0.0.1 (explicitly, or as one of every address): a DNATed connection from
/// 127.0.0.1 leaves through that bridge with a loopback source until it is
/// masqueraded, and the kernel drops it as martian without route_localnet.
pub fn required_sysctls(state: &FirewallState) -> Vec<Sysctl> {
    let mut out = Vec::new();
    if state.networks.iter().any(|n| !n.internal) || !state.ports.is_empty() {
        out.push(Sysctl {
            key: "net.ipv4.ip_forward".to_string(),
            value: "1".to_string(),
        });
    }
    for n in &state.networks {
        if state
            .ports
            .iter()
            .any(|p| p.network == n.name && reachable_on_loopback(p))
        {
            out.push(Sysctl {
                key: format!("net.ipv4.conf.{}.route_localnet", n.bridge),
                value: "1".to_string(),
            });
        }
    }
    out
}

fn quoted_set<'a>(names: impl IntoIterator<Item = &'a str>) -> String {
    let items: Vec<String> = names.into_iter().map(|n| format!("\"{n}\"")).collect();
    format!("{{ {} }}", items.join(", "))
}

/// The `table inet <table> { … }` block for `state` (validated first).
pub fn table_script(table: &str, state: &FirewallState) -> Result<String, FirewallError> {
    validate(table, state)?;
    let mut s = String::new();
    let w = &mut s;
    let all_bridges: Vec<&str> = state.networks.iter().map(|n| n.bridge.as_str()).collect();

    let _ = writeln!(w, "table inet {table} {{");
    if !all_bridges.is_empty() {
        let _ = writeln!(
            w,
            "\tset bridges {{ type ifname; elements = {}; }}",
            quoted_set(all_bridges.iter().copied())
        );
    }

    // guard: route_localnet must not let containers talk to the host's 127.0.0.0/8.
    let _ = writeln!(
        w,
        "\tchain guard {{\n\t\ttype filter hook prerouting priority raw; policy accept;"
    );
    if !all_bridges.is_empty() {
        let _ = writeln!(w, "\t\tiifname @bridges ip daddr 127.0.0.0/8 drop");
        let _ = writeln!(w, "\t\tiifname @bridges ip saddr 127.0.0.0/8 drop");
    }
    let _ = writeln!(w, "\t}}");

    // DNAT: from other hosts and containers (prerouting), from the host (output).
    // (nft 1.0.6 accepts the name `dstnat` only on prerouting: -100 is the same.)
    for (chain, priority) in [("prerouting", "dstnat"), ("output", "-100")] {
        let _ = writeln!(
            w,
            "\tchain {chain} {{\n\t\ttype nat hook {chain} priority {priority}; policy accept;\n\
             \t\tmeta nfproto ipv4 fib daddr type local jump published\n\t}}"
        );
    }
    let _ = writeln!(w, "\tchain published {{");
    for p in &state.ports {
        published_rules(w, p);
    }
    let _ = writeln!(w, "\t}}");

    let _ = writeln!(
        w,
        "\tchain postrouting {{\n\t\ttype nat hook postrouting priority srcnat; policy accept;"
    );
    for n in state.networks.iter().filter(|n| !n.internal) {
        let (b, sub, name) = (&n.bridge, n.subnet, &n.name);
        if state
            .ports
            .iter()
            .any(|p| p.network == n.name && reachable_on_loopback(p))
        {
            let _ = writeln!(
                w,
                "\t\toifname \"{b}\" ip saddr 127.0.0.0/8 masquerade comment \"{name}: from 127.0.0.1 to a published port\""
            );
        }
        let _ = writeln!(
            w,
            "\t\toifname \"{b}\" ip saddr {sub} ct status dnat masquerade comment \"{name}: hairpin\""
        );
        let _ = writeln!(
            w,
            "\t\tip saddr {sub} oifname != \"{b}\" masquerade comment \"{name}: leaving the subnet\""
        );
    }
    let _ = writeln!(w, "\t}}");

    // input: an internal network reaches nothing of the host but its DNS responder.
    // Both families: IPv6 link-local addresses of the host are a way out too.
    let _ = writeln!(
        w,
        "\tchain input {{\n\t\ttype filter hook input priority {FORWARD_PRIORITY}; policy accept;"
    );
    for n in state.networks.iter().filter(|n| n.internal) {
        let (b, name) = (&n.bridge, &n.name);
        let _ = writeln!(
            w,
            "\t\tiifname \"{b}\" ct state established,related accept comment \"{name}: replies to the host\""
        );
        if let Some(dns) = n.dns {
            for proto in ["udp", "tcp"] {
                let _ = writeln!(
                    w,
                    "\t\tiifname \"{b}\" ip daddr {} {proto} dport {} accept comment \"{name}: DNS\"",
                    dns.ip(),
                    dns.port()
                );
            }
        }
        let _ = writeln!(
            w,
            "\t\tiifname \"{b}\" drop comment \"{name}: internal, not even the host\""
        );
    }
    let _ = writeln!(w, "\t}}");

    let _ = writeln!(
        w,
        "\tchain forward {{\n\t\ttype filter hook forward priority {FORWARD_PRIORITY}; policy accept;"
    );
    if !all_bridges.is_empty() {
        let _ = writeln!(
            w,
            "\t\tiifname @bridges meta mark set meta mark | {FORWARD_MARK:#x}"
        );
        let _ = writeln!(
            w,
            "\t\toifname @bridges meta mark set meta mark | {FORWARD_MARK:#x}"
        );
    }
    for n in &state.networks {
        let (b, name) = (&n.bridge, &n.name);
        if n.internal {
            let _ = writeln!(
                w,
                "\t\tiifname \"{b}\" oifname != \"{b}\" drop comment \"{name}: internal\""
            );
            let _ = writeln!(
                w,
                "\t\toifname \"{b}\" iifname != \"{b}\" drop comment \"{name}: internal\""
            );
            continue;
        }
        let others: Vec<&str> = all_bridges.iter().copied().filter(|o| o != b).collect();
        if !others.is_empty() {
            let _ = writeln!(
                w,
                "\t\tiifname \"{b}\" oifname {} ct status & dnat == 0 drop comment \"{name}: isolation\"",
                quoted_set(others)
            );
        }
        let _ = writeln!(
            w,
            "\t\toifname \"{b}\" iifname != \"{b}\" ct state new ct status & dnat == 0 drop comment \"{name}: only published ports from outside\""
        );
    }
    let _ = writeln!(w, "\t}}");
    let _ = writeln!(w, "}}");
    Ok(s)
}

/// DNAT rules of one published port (range). The host ports map one-to-one onto the
/// container ports: one rule when the numbers are the same, else one per port.
fn published_rules(w: &mut String, p: &PublishedPort) {
    let m = &p.mapping;
    let proto = m.protocol.as_str();
    let daddr = match m.host_ip {
        Some(ip) if !ip.is_unspecified() => format!("ip daddr {ip} "),
        _ => String::new(),
    };
    let comment = format!("{}: {} -> {}", p.network, m, p.container_ip);
    if m.host_port_start == m.container_port_start {
        let ports = if m.host_port_start == m.host_port_end {
            m.host_port_start.to_string()
        } else {
            format!("{}-{}", m.host_port_start, m.host_port_end)
        };
        let _ = writeln!(
            w,
            "\t\t{daddr}{proto} dport {ports} dnat ip to {} comment \"{comment}\"",
            p.container_ip
        );
    } else {
        for host in m.host_port_start..=m.host_port_end {
            let container = m.container_port_for(host).unwrap_or(host);
            let _ = writeln!(
                w,
                "\t\t{daddr}{proto} dport {host} dnat ip to {}:{container} comment \"{comment}\"",
                p.container_ip
            );
        }
    }
}

/// The rules added to iptables' `ip filter FORWARD` when its policy is drop.
pub fn foreign_forward_rules(table: &str, state: &FirewallState) -> Vec<String> {
    if state.networks.is_empty() {
        return Vec::new();
    }
    let bridges = quoted_set(state.networks.iter().map(|n| n.bridge.as_str()));
    let comment = foreign_rule_comment(table);
    vec![
        format!("insert rule ip filter FORWARD oifname {bridges} accept comment \"{comment}\""),
        format!("insert rule ip filter FORWARD iifname {bridges} accept comment \"{comment}\""),
    ]
}

fn delete_foreign(handles: &[u64]) -> Vec<String> {
    handles
        .iter()
        .map(|h| format!("delete rule ip filter FORWARD handle {h}"))
        .collect()
}

/// The whole apply batch: replace the table (the `add` makes the `delete` succeed
/// when the table is missing) and replace Coracle's accepts in iptables' FORWARD.
pub fn apply_batch(
    table: &str,
    state: &FirewallState,
    foreign: &ForeignForward,
) -> Result<String, FirewallError> {
    let body = table_script(table, state)?;
    let mut s = format!("add table inet {table}\ndelete table inet {table}\n{body}");
    for line in delete_foreign(&foreign.our_handles) {
        s.push_str(&line);
        s.push('\n');
    }
    if foreign.policy_drop {
        for line in foreign_forward_rules(table, state) {
            s.push_str(&line);
            s.push('\n');
        }
    }
    Ok(s)
}

/// Deletes the table, whether or not it exists.
pub fn delete_table_batch(table: &str) -> Result<String, FirewallError> {
    validate_table_name(table)?;
    Ok(format!(
        "add table inet {table}\ndelete table inet {table}\n"
    ))
}

/// Deletes Coracle's accepts from iptables' FORWARD (empty when there are none).
pub fn delete_foreign_batch(handles: &[u64]) -> String {
    delete_foreign(handles)
        .into_iter()
        .map(|l| l + "\n")
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::parse_port_spec;

    fn net(name: &str, bridge: &str, subnet: &str, internal: bool) -> Network {
        Network {
            name: name.to_string(),
            bridge: bridge.to_string(),
            subnet: subnet.parse().unwrap(),
            internal,
            dns: None,
        }
    }

    fn port(ip: &str, network: &str, spec: &str) -> PublishedPort {
        PublishedPort {
            container_ip: ip.parse().unwrap(),
            network: network.to_string(),
            mapping: parse_port_spec(spec).unwrap(),
        }
    }

    fn state() -> FirewallState {
        FirewallState {
            networks: vec![
                net("bridge", "coracle0", "172.17.0.0/16", false),
                net("back", "br-back", "10.90.0.0/24", true),
                net("front", "br-front", "10.91.0.0/24", false),
            ],
            ports: vec![
                port("172.17.0.2", "bridge", "8080:80"),
                port("10.91.0.5", "front", "127.0.0.1:8081:80"),
                port("10.91.0.5", "front", "10.0.0.1:5353:53/udp"),
                port("172.17.0.3", "bridge", "9000-9001:9000-9001"),
                port("172.17.0.3", "bridge", "7000-7001:80-81/udp"),
            ],
        }
    }

    fn lines(script: &str) -> Vec<&str> {
        script.lines().map(str::trim).collect()
    }

    #[test]
    fn published_ports_are_dnat_in_prerouting_and_output() {
        let s = table_script("coracle", &state()).unwrap();
        let l = lines(&s);
        assert_eq!(l[0], "table inet coracle {");
        for (chain, prio) in [("prerouting", "dstnat"), ("output", "-100")] {
            let i = l
                .iter()
                .position(|x| *x == format!("chain {chain} {{"))
                .unwrap();
            assert!(l[i + 1].starts_with(&format!("type nat hook {chain} priority {prio};")));
            assert_eq!(
                l[i + 2],
                "meta nfproto ipv4 fib daddr type local jump published"
            );
        }
        for rule in [
            "tcp dport 8080 dnat ip to 172.17.0.2:80 comment \"bridge: 8080:80/tcp -> 172.17.0.2\"",
            "ip daddr 127.0.0.1 tcp dport 8081 dnat ip to 10.91.0.5:80 comment \"front: 127.0.0.1:8081:80/tcp -> 10.91.0.5\"",
            "ip daddr 10.0.0.1 udp dport 5353 dnat ip to 10.91.0.5:53 comment \"front: 10.0.0.1:5353:53/udp -> 10.91.0.5\"",
            "tcp dport 9000-9001 dnat ip to 172.17.0.3 comment \"bridge: 9000-9001:9000-9001/tcp -> 172.17.0.3\"",
            "udp dport 7000 dnat ip to 172.17.0.3:80 comment \"bridge: 7000-7001:80-81/udp -> 172.17.0.3\"",
            "udp dport 7001 dnat ip to 172.17.0.3:81 comment \"bridge: 7000-7001:80-81/udp -> 172.17.0.3\"",
        ] {
            assert!(l.contains(&rule), "missing {rule}\n{s}");
        }
    }

    #[test]
    fn masquerade_hairpin_and_loopback() {
        let s = table_script("coracle", &state()).unwrap();
        let l = lines(&s);
        for rule in [
            "ip saddr 172.17.0.0/16 oifname != \"coracle0\" masquerade comment \"bridge: leaving the subnet\"",
            "oifname \"coracle0\" ip saddr 172.17.0.0/16 ct status dnat masquerade comment \"bridge: hairpin\"",
            "oifname \"coracle0\" ip saddr 127.0.0.0/8 masquerade comment \"bridge: from 127.0.0.1 to a published port\"",
            "oifname \"br-front\" ip saddr 127.0.0.0/8 masquerade comment \"front: from 127.0.0.1 to a published port\"",
            "ip saddr 10.91.0.0/24 oifname != \"br-front\" masquerade comment \"front: leaving the subnet\"",
        ] {
            assert!(l.contains(&rule), "missing {rule}\n{s}");
        }
        assert!(
            !s.contains("10.90.0.0/24"),
            "internal network masqueraded:\n{s}"
        );
    }

    #[test]
    fn internal_networks_reach_only_dns_on_the_host() {
        let mut st = state();
        st.networks[1].dns = Some("10.90.0.1:53".parse().unwrap());
        st.networks[2].dns = Some("10.91.0.1:53".parse().unwrap());
        let s = table_script("coracle", &st).unwrap();
        let input = &s[s.find("chain input").unwrap()..s.find("chain forward").unwrap()];
        let rules: Vec<&str> = input
            .lines()
            .skip(2)
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        assert_eq!(
            rules,
            [
                "iifname \"br-back\" ct state established,related accept comment \"back: replies to the host\"",
                "iifname \"br-back\" ip daddr 10.90.0.1 udp dport 53 accept comment \"back: DNS\"",
                "iifname \"br-back\" ip daddr 10.90.0.1 tcp dport 53 accept comment \"back: DNS\"",
                "iifname \"br-back\" drop comment \"back: internal, not even the host\"",
                "}",
            ],
            "{s}"
        );
        assert!(input.contains("type filter hook input priority -10; policy accept;"));
        // Without a responder, nothing of the host is open to it.
        st.networks[1].dns = None;
        let s = table_script("coracle", &st).unwrap();
        assert!(!s.contains("back: DNS"), "{s}");
        assert!(s.contains("iifname \"br-back\" drop comment"), "{s}");
    }

    #[test]
    fn forward_marks_isolates_and_closes_internal() {
        let s = table_script("t", &state()).unwrap();
        let l = lines(&s);
        for rule in [
            "type filter hook forward priority -10; policy accept;",
            "iifname @bridges meta mark set meta mark | 0x20000000",
            "oifname @bridges meta mark set meta mark | 0x20000000",
            "iifname \"br-back\" oifname != \"br-back\" drop comment \"back: internal\"",
            "oifname \"br-back\" iifname != \"br-back\" drop comment \"back: internal\"",
            "iifname \"coracle0\" oifname { \"br-back\", \"br-front\" } ct status & dnat == 0 drop comment \"bridge: isolation\"",
            "iifname \"br-front\" oifname { \"coracle0\", \"br-back\" } ct status & dnat == 0 drop comment \"front: isolation\"",
            "oifname \"coracle0\" iifname != \"coracle0\" ct state new ct status & dnat == 0 drop comment \"bridge: only published ports from outside\"",
            "iifname @bridges ip daddr 127.0.0.0/8 drop",
            "set bridges { type ifname; elements = { \"coracle0\", \"br-back\", \"br-front\" }; }",
        ] {
            assert!(l.contains(&rule), "missing {rule}\n{s}");
        }
    }

    #[test]
    fn sysctls() {
        let got: Vec<String> = required_sysctls(&state())
            .into_iter()
            .map(|s| format!("{}={}", s.key, s.value))
            .collect();
        assert_eq!(
            got,
            [
                "net.ipv4.ip_forward=1",
                "net.ipv4.conf.coracle0.route_localnet=1",
                "net.ipv4.conf.br-front.route_localnet=1"
            ]
        );
        let only_internal = FirewallState {
            networks: vec![net("back", "br-back", "10.90.0.0/24", true)],
            ports: vec![],
        };
        assert!(required_sysctls(&only_internal).is_empty());
        let remote_only = FirewallState {
            networks: vec![net("n", "b", "10.0.0.0/24", false)],
            ports: vec![port("10.0.0.2", "n", "192.0.2.1:80:80")],
        };
        assert_eq!(required_sysctls(&remote_only).len(), 1);
    }

    #[test]
    fn empty_state_is_a_valid_table() {
        let s = table_script("coracle", &FirewallState::default()).unwrap();
        assert!(!s.contains("@bridges"));
        assert!(s.contains("chain published {"));
    }

    #[test]
    fn batches() {
        let st = state();
        let b = apply_batch("coracle", &st, &ForeignForward::default()).unwrap();
        assert!(b.starts_with(
            "add table inet coracle\ndelete table inet coracle\ntable inet coracle {\n"
        ));
        assert!(!b.contains("ip filter FORWARD"));
        let foreign = ForeignForward {
            policy_drop: true,
            our_handles: vec![7, 9],
        };
        let b = apply_batch("coracle", &st, &foreign).unwrap();
        let l = lines(&b);
        let tail = &l[l.len() - 4..];
        assert_eq!(
            tail,
            [
                "delete rule ip filter FORWARD handle 7",
                "delete rule ip filter FORWARD handle 9",
                "insert rule ip filter FORWARD oifname { \"coracle0\", \"br-back\", \"br-front\" } accept comment \"coracle:coracle\"",
                "insert rule ip filter FORWARD iifname { \"coracle0\", \"br-back\", \"br-front\" } accept comment \"coracle:coracle\"",
            ]
        );
        assert_eq!(
            delete_table_batch("t1").unwrap(),
            "add table inet t1\ndelete table inet t1\n"
        );
        assert_eq!(delete_foreign_batch(&[]), "");
    }

    #[test]
    fn validation_errors() {
        let msg = |st: &FirewallState| validate("coracle", st).unwrap_err().to_string();
        assert!(validate("bad-name", &state()).is_err());
        assert!(validate("", &state()).is_err());

        let mut st = state();
        st.ports
            .push(port("172.17.0.9", "bridge", "0.0.0.0:8080:80"));
        assert!(msg(&st).contains("published twice"), "{}", msg(&st));

        let mut st = state();
        st.ports.push(port("10.90.0.2", "back", "6000:80"));
        assert!(msg(&st).contains("internal"), "{}", msg(&st));

        let mut st = state();
        st.ports.push(port("10.1.0.2", "bridge", "6000:80"));
        assert_eq!(
            msg(&st),
            "published port 6000:80/tcp of 10.1.0.2 on network bridge: the container address is \
             outside the subnet 172.17.0.0/16"
        );

        let mut st = state();
        st.ports.push(port("172.17.0.2", "nope", "6000:80"));
        assert!(msg(&st).contains("no such network"));

        let mut st = state();
        st.ports.push(port("172.17.0.2", "bridge", "80"));
        assert!(msg(&st).contains("no host port was chosen"));

        let mut st = state();
        st.ports.push(port("172.17.0.2", "bridge", "[::1]:6000:80"));
        assert!(msg(&st).contains("IPv6"));

        let mut st = state();
        st.networks
            .push(net("other", "coracle0", "10.99.0.0/24", false));
        assert!(msg(&st).contains("bridge coracle0 belongs to another network"));

        let mut st = state();
        st.networks
            .push(net("x", "br\"; drop", "10.99.0.0/24", false));
        assert!(msg(&st).contains("invalid bridge name"));

        let mut st = state();
        st.networks
            .push(net("bridge", "br2", "10.99.0.0/24", false));
        assert!(msg(&st).contains("listed twice"));
    }
}
