//! The platform a pull selects from an index or manifest list.

use std::fmt;

use oci_spec::image::Descriptor;

/// `os/architecture[/variant]`, as in `docker pull --platform`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
}

impl Default for Platform {
    /// The host's platform (Go's names: `amd64`, `arm64`, ...).
    fn default() -> Self {
        let architecture = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            "x86" => "386",
            "powerpc64" => "ppc64le",
            "loongarch64" => "loong64",
            other => other,
        };
        Platform {
            os: std::env::consts::OS.to_owned(),
            architecture: architecture.to_owned(),
            variant: (architecture == "arm").then(|| "v7".to_owned()),
        }
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

impl std::str::FromStr for Platform {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let parts: Vec<&str> = s.split('/').collect();
        match parts.as_slice() {
            [os, arch] | [os, arch, _] if !os.is_empty() && !arch.is_empty() => Ok(Platform {
                os: os.to_string(),
                architecture: arch.to_string(),
                variant: parts
                    .get(2)
                    .filter(|v| !v.is_empty())
                    .map(|v| v.to_string()),
            }),
            _ => Err(format!(
                "invalid platform {s:?}: expected os/arch[/variant]"
            )),
        }
    }
}

/// arm64's variant defaults to v8, as in containerd's platform normalisation.
fn normalized_variant(arch: &str, variant: Option<&str>) -> Option<String> {
    match (arch, variant) {
        ("arm64", None) => Some("v8".to_owned()),
        (_, v) => v.map(str::to_owned),
    }
}

impl Platform {
    /// Whether a descriptor's platform satisfies this one. A requested variant must match
    /// exactly (after normalising arm64); with no variant requested any variant is fine.
    fn matches(&self, p: &oci_spec::image::Platform) -> bool {
        if p.os().to_string() != self.os || p.architecture().to_string() != self.architecture {
            return false;
        }
        match &self.variant {
            None => true,
            Some(_) => {
                normalized_variant(&self.architecture, self.variant.as_deref())
                    == normalized_variant(&self.architecture, p.variant().as_deref())
            }
        }
    }

    /// Picks the index entry for this platform: an exact variant match first, then the
    /// first entry that matches. Entries without a platform (attestations) never match.
    pub(crate) fn select<'a>(&self, manifests: &'a [Descriptor]) -> Option<&'a Descriptor> {
        let candidates: Vec<&Descriptor> = manifests
            .iter()
            .filter(|d| d.platform().as_ref().is_some_and(|p| self.matches(p)))
            .collect();
        candidates
            .iter()
            .find(|d| d.platform().as_ref().and_then(|p| p.variant().clone()) == self.variant)
            .or(candidates.first())
            .copied()
    }

    /// `os/arch[/variant]` of every platform an index offers, for error messages.
    pub(crate) fn describe_all(manifests: &[Descriptor]) -> Vec<String> {
        manifests
            .iter()
            .filter_map(|d| d.platform().as_ref())
            .map(|p| {
                let mut s = format!("{}/{}", p.os(), p.architecture());
                if let Some(v) = p.variant() {
                    s.push('/');
                    s.push_str(v);
                }
                s
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::image::ImageIndex;

    fn index(platforms: &[(&str, &str, Option<&str>)]) -> ImageIndex {
        let manifests: Vec<serde_json::Value> = platforms
            .iter()
            .enumerate()
            .map(|(i, (os, arch, variant))| {
                let mut p = serde_json::json!({"os": os, "architecture": arch});
                if let Some(v) = variant {
                    p["variant"] = serde_json::json!(v);
                }
                serde_json::json!({
                    "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "size": 10,
                    "digest": format!("sha256:{}", format!("{i:x}").repeat(64).get(..64).unwrap()),
                    "platform": p,
                })
            })
            .collect();
        serde_json::from_value(serde_json::json!({"schemaVersion": 2, "manifests": manifests}))
            .unwrap()
    }

    fn pick(idx: &ImageIndex, want: &str) -> Option<usize> {
        let want: Platform = want.parse().unwrap();
        let m = idx.manifests();
        want.select(m)
            .map(|d| m.iter().position(|x| x == d).unwrap())
    }

    #[test]
    fn selects_os_arch_and_variant() {
        let idx = index(&[
            ("linux", "arm", Some("v6")),
            ("linux", "arm", Some("v7")),
            ("linux", "arm64", Some("v8")),
            ("linux", "amd64", None),
            ("windows", "amd64", None),
        ]);
        assert_eq!(pick(&idx, "linux/amd64"), Some(3));
        assert_eq!(pick(&idx, "windows/amd64"), Some(4));
        assert_eq!(pick(&idx, "linux/arm/v7"), Some(1));
        assert_eq!(pick(&idx, "linux/arm64"), Some(2));
        assert_eq!(pick(&idx, "linux/arm64/v8"), Some(2));
        assert_eq!(pick(&idx, "linux/arm/v5"), None);
        assert_eq!(pick(&idx, "linux/s390x"), None);
        assert_eq!(
            Platform::describe_all(idx.manifests())[0],
            "linux/arm/v6".to_owned()
        );
    }

    #[test]
    fn default_is_the_host_and_parses_back() {
        let p = Platform::default();
        assert_eq!(p.os, "linux");
        assert_eq!(p.to_string().parse::<Platform>().unwrap(), p);
        assert!("linux".parse::<Platform>().is_err());
    }
}
