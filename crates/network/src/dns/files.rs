//! The container's `/etc/resolv.conf`, `/etc/hosts` and `/etc/hostname`, written
//! the way Docker writes them.

use std::net::IpAddr;

/// `/etc/hostname`: the hostname and a newline.
pub fn hostname_file(hostname: &str) -> String {
    format!("{hostname}\n")
}

/// `/etc/hosts`: Docker's fixed localhost and IPv6 lines, then the container's own
/// addresses with its hostname (and aliases), then `--add-host` entries.
pub fn hosts_file(own: &[(IpAddr, Vec<String>)], extra: &[(String, IpAddr)]) -> String {
    let mut s = String::from(
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n\
         fe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\n\
         ff02::2\tip6-allrouters\n",
    );
    for (name, ip) in extra {
        s.push_str(&format!("{ip}\t{name}\n"));
    }
    for (ip, names) in own {
        if !names.is_empty() {
            s.push_str(&format!("{ip}\t{}\n", names.join(" ")));
        }
    }
    s
}

/// `/etc/resolv.conf` for a container.
///
/// On a network with Coracle's DNS responder, the only nameserver is the
/// responder (the network's gateway): it answers container names and forwards the
/// rest. Otherwise (the default bridge, like Docker's), the host's nameservers are
/// copied, except loopback ones, which mean nothing inside the container's network
/// namespace. `dns` (from `--dns`) replaces the nameservers in both cases.
pub fn resolv_conf(host_resolv_conf: &str, responder: Option<IpAddr>, dns: &[IpAddr]) -> String {
    resolv_conf_with(host_resolv_conf, responder, dns, &[], &[])
}

/// [`resolv_conf`] with `--dns-search` and `--dns-option`: when given, they replace the
/// host's search domains and options, as with Docker.
pub fn resolv_conf_with(
    host_resolv_conf: &str,
    responder: Option<IpAddr>,
    dns: &[IpAddr],
    dns_search: &[String],
    dns_options: &[String],
) -> String {
    let mut search = Vec::new();
    let mut options = Vec::new();
    let mut host_ns = Vec::new();
    for line in host_resolv_conf.lines() {
        let mut words = line.split_whitespace();
        match words.next() {
            Some("search") | Some("domain") => search.extend(words.map(str::to_string)),
            Some("options") => options.extend(words.map(str::to_string)),
            Some("nameserver") => {
                if let Some(ip) = words.next().and_then(|w| w.parse::<IpAddr>().ok()) {
                    if !ip.is_loopback() {
                        host_ns.push(ip);
                    }
                }
            }
            _ => {}
        }
    }
    if !dns_search.is_empty() {
        search = dns_search.to_vec();
    }
    if !dns_options.is_empty() {
        options = dns_options.to_vec();
    }
    let nameservers: Vec<IpAddr> = if !dns.is_empty() {
        dns.to_vec()
    } else if let Some(r) = responder {
        vec![r]
    } else {
        host_ns
    };
    let mut s = String::new();
    if responder.is_some() && dns.is_empty() {
        s.push_str("# Coracle's DNS responder: container names, then the host's resolvers.\n");
    }
    for ns in &nameservers {
        s.push_str(&format!("nameserver {ns}\n"));
    }
    if !search.is_empty() {
        s.push_str(&format!("search {}\n", search.join(" ")));
    }
    if !options.is_empty() {
        s.push_str(&format!("options {}\n", options.join(" ")));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOST: &str =
        "nameserver 127.0.0.53\nnameserver 192.0.2.1\nsearch corp.example\noptions edns0\n";

    #[test]
    fn dns_search_and_options_replace_the_hosts() {
        let s = resolv_conf_with(HOST, None, &[], &["a.test".into()], &["ndots:2".into()]);
        assert!(
            s.contains("search a.test\n") && !s.contains("corp.example"),
            "{s}"
        );
        assert!(
            s.contains("options ndots:2\n") && !s.contains("edns0"),
            "{s}"
        );
    }

    #[test]
    fn default_bridge_copies_host_resolvers_without_loopback() {
        let s = resolv_conf(HOST, None, &[]);
        assert_eq!(
            s,
            "nameserver 192.0.2.1\nsearch corp.example\noptions edns0\n"
        );
    }

    #[test]
    fn user_network_points_at_the_responder() {
        let s = resolv_conf(HOST, Some("10.89.0.1".parse().unwrap()), &[]);
        assert!(
            s.contains("nameserver 10.89.0.1\n") && !s.contains("192.0.2.1"),
            "{s}"
        );
        let s = resolv_conf(
            HOST,
            Some("10.89.0.1".parse().unwrap()),
            &["192.0.2.9".parse().unwrap()],
        );
        assert!(s.starts_with("nameserver 192.0.2.9\n"), "{s}");
    }

    #[test]
    fn hosts_file_has_docker_lines_and_own_name() {
        let own = vec![(
            "172.17.0.2".parse().unwrap(),
            vec!["3f2a9c1d7e4b".to_string()],
        )];
        let extra = vec![("db.local".to_string(), "192.0.2.5".parse().unwrap())];
        let s = hosts_file(&own, &extra);
        assert!(s.starts_with("127.0.0.1\tlocalhost\n"), "{s}");
        assert!(s.contains("192.0.2.5\tdb.local\n"), "{s}");
        assert!(s.ends_with("172.17.0.2\t3f2a9c1d7e4b\n"), "{s}");
        assert_eq!(hostname_file("web"), "web\n");
    }
}
