//! `coracle` image commands driven as a user drives them: the binary, its output and exit
//! codes, over images built by scripts/mkimage.sh (umoci) and converted by skopeo.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

use serde_json::Value;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// An OCI layout with two tags built once per test binary: `base` (busybox, Cmd httpd) and
/// `big` (busybox + 2 filler layers of 1 MiB).
fn layout() -> &'static Path {
    static LAYOUT: OnceLock<PathBuf> = OnceLock::new();
    LAYOUT.get_or_init(|| {
        // Under cargo's per-target scratch directory: a build artifact, rebuilt each run.
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("cli-images-layout");
        let _ = fs::remove_dir_all(&dir);
        let mk = repo_root().join("scripts/mkimage.sh");
        for args in [
            vec![
                "base",
                "--env",
                "GREETING=hi",
                "--workdir",
                "/srv",
                "--expose",
                "80/tcp",
                "--",
                "httpd",
                "-f",
            ],
            vec!["big", "--layers", "2", "--layer-mb", "1"],
        ] {
            let out = Command::new(&mk).arg(&dir).args(&args).output().unwrap();
            assert!(
                out.status.success(),
                "mkimage.sh: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        dir
    })
}

/// A throwaway `--root` for one test.
struct Engine {
    dir: tempfile::TempDir,
}

impl Engine {
    fn new() -> Engine {
        Engine {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    fn cmd(&self) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_coracle"));
        c.arg("--root")
            .arg(self.root())
            .arg("--run-root")
            .arg(self.dir.path().join("run"))
            .env("DOCKER_CONFIG", self.dir.path().join("docker-config"))
            .stdin(Stdio::null());
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        self.cmd().args(args).output().unwrap()
    }

    /// Runs and insists on success; returns stdout.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "coracle {args:?} failed ({:?}): {}{}",
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Runs and insists on failure with `code`; returns stderr.
    fn fails(&self, args: &[&str], code: i32) -> String {
        let out = self.run(args);
        assert_eq!(
            out.status.code(),
            Some(code),
            "coracle {args:?}: stdout {} stderr {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stderr).unwrap()
    }

    fn load_layout_tag(&self, tag: &str, name: &str) {
        // A docker-archive made by skopeo, carrying the name.
        let file = self
            .dir
            .path()
            .join(format!("{tag}-{}.tar", name.replace([':', '/'], "_")));
        let _ = fs::remove_file(&file);
        skopeo(&[
            "copy",
            &format!("oci:{}:{tag}", layout().display()),
            &format!("docker-archive:{}:{name}", file.display()),
        ]);
        let out = self.ok(&["load", "-i", file.to_str().unwrap()]);
        assert_eq!(out, format!("Loaded image: {name}\n"));
    }

    fn images_json(&self) -> Vec<Value> {
        self.ok(&["images", "--format", "json"])
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

fn skopeo(args: &[&str]) {
    let out = Command::new("skopeo")
        .args(args)
        .output()
        .expect("skopeo is installed (scripts/test.sh installs it)");
    assert!(
        out.status.success(),
        "skopeo {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn load_lists_inspects_and_applies_nothing_twice() {
    let e = Engine::new();
    e.load_layout_tag("base", "busybox:latest");

    let table = e.ok(&["images"]);
    let mut lines = table.lines();
    let header = lines.next().unwrap();
    assert!(
        header.starts_with("REPOSITORY   TAG       IMAGE ID       CREATED"),
        "{table}"
    );
    let row: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(&row[..2], &["busybox", "latest"], "{table}");
    assert_eq!(row[2].len(), 12);

    let inspect: Value = serde_json::from_str(&e.ok(&["image", "inspect", "busybox"])).unwrap();
    let img = &inspect[0];
    assert_eq!(img["RepoTags"], serde_json::json!(["busybox:latest"]));
    assert_eq!(img["Config"]["Cmd"], serde_json::json!(["httpd", "-f"]));
    assert_eq!(img["Config"]["WorkingDir"], "/srv");
    assert!(img["Config"]["ExposedPorts"]["80/tcp"].is_object());
    assert!(img["Config"]["Env"]
        .as_array()
        .unwrap()
        .contains(&Value::from("GREETING=hi")));
    assert_eq!(img["Os"], "linux");
    assert_eq!(img["RootFS"]["Layers"].as_array().unwrap().len(), 1);
    assert!(img["Id"]
        .as_str()
        .unwrap()
        .starts_with(&format!("sha256:{}", row[2])));
    // The unpacked layer holds busybox.
    let lower = img["GraphDriver"]["Data"]["LowerDir"].as_str().unwrap();
    assert!(Path::new(lower).join("bin/busybox").is_file(), "{lower}");

    assert_eq!(
        e.ok(&["inspect", "-f", "{{.Id}}", "busybox"]).trim(),
        img["Id"].as_str().unwrap()
    );
    assert_eq!(e.ok(&["images", "-q"]).trim(), row[2]);

    // Loading again changes nothing.
    e.load_layout_tag("base", "busybox:latest");
    assert_eq!(e.images_json().len(), 1);
}

#[test]
fn an_oci_layout_directory_loads_with_its_tags() {
    let e = Engine::new();
    let out = e.ok(&["load", "-i", layout().to_str().unwrap()]);
    // umoci names images by tag only (org.opencontainers.image.ref.name).
    assert!(
        out.contains("Loaded image: base:latest") || out.contains("Loaded image"),
        "{out}"
    );
    assert_eq!(e.images_json().len(), 2, "{}", e.ok(&["images"]));
}

#[test]
fn tag_rmi_and_prune_behave_like_docker() {
    let e = Engine::new();
    e.load_layout_tag("base", "busybox:latest");
    e.ok(&["tag", "busybox", "localhost:5000/team/web:v1"]);
    let repos: Vec<String> = e
        .images_json()
        .iter()
        .map(|j| {
            format!(
                "{}:{}",
                j["Repository"].as_str().unwrap(),
                j["Tag"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(repos.len(), 2);
    assert!(
        repos.contains(&"localhost:5000/team/web:v1".to_string()),
        "{repos:?}"
    );

    let id = e.ok(&["images", "-q"]).trim().to_string();
    let err = e.fails(&["rmi", &id], 1);
    assert!(
        err.contains("must be forced") && err.contains("multiple repositories"),
        "{err}"
    );

    assert_eq!(
        e.ok(&["rmi", "localhost:5000/team/web:v1"]),
        "Untagged: localhost:5000/team/web:v1\n"
    );
    let out = e.ok(&["rmi", "busybox"]);
    assert!(
        out.starts_with("Untagged: busybox:latest\nDeleted: sha256:"),
        "{out}"
    );
    assert!(e.images_json().is_empty());
    let blobs = e.root().join("image/content/blobs/sha256");
    assert_eq!(
        fs::read_dir(&blobs).unwrap().count(),
        0,
        "blobs left after rmi"
    );
    let layers = e.root().join("image/layers");
    assert_eq!(
        fs::read_dir(&layers).unwrap().count(),
        0,
        "layers left after rmi"
    );

    let err = e.fails(&["rmi", "busybox"], 1);
    assert!(err.contains("No such image: busybox"), "{err}");

    // A retag leaves the old image dangling; prune removes it.
    e.load_layout_tag("base", "app:latest");
    e.load_layout_tag("big", "app:latest");
    let dangling = e.ok(&[
        "images",
        "--filter",
        "dangling=true",
        "--format",
        "{{.Repository}}:{{.Tag}}",
    ]);
    assert_eq!(dangling, "<none>:<none>\n");
    let out = e.ok(&["image", "prune", "-f"]);
    assert!(
        out.starts_with("Deleted Images:\ndeleted: sha256:"),
        "{out}"
    );
    assert!(out.contains("Total reclaimed space: "), "{out}");
    assert_eq!(e.images_json().len(), 1);
}

#[test]
fn save_then_load_round_trips_and_skopeo_reads_the_archive() {
    let e = Engine::new();
    e.load_layout_tag("big", "bigimg:1");
    let id = e.ok(&["inspect", "-f", "{{.Id}}", "bigimg:1"]);
    let file = e.dir.path().join("saved.tar");
    e.ok(&["save", "-o", file.to_str().unwrap(), "bigimg:1"]);
    skopeo(&["inspect", &format!("docker-archive:{}", file.display())]);
    let oci = e.dir.path().join("from-saved");
    skopeo(&[
        "copy",
        &format!("oci-archive:{}", file.display()),
        &format!("oci:{}:x", oci.display()),
    ]);

    let other = Engine::new();
    let out = other.ok(&["load", "-i", file.to_str().unwrap()]);
    assert_eq!(out, "Loaded image: bigimg:1\n");
    assert_eq!(other.ok(&["inspect", "-f", "{{.Id}}", "bigimg:1"]), id);

    // save to stdout works too when it is not a terminal.
    let out = e.cmd().args(["save", "bigimg:1"]).output().unwrap();
    assert!(out.status.success());
    assert!(out.stdout.len() > 2 * 1024 * 1024);
}

#[test]
fn import_makes_a_one_layer_image_with_changes() {
    let e = Engine::new();
    let bundle = e.dir.path().join("bundle");
    let out = Command::new(repo_root().join("scripts/mkbundle.sh"))
        .arg(&bundle)
        .output()
        .unwrap();
    assert!(out.status.success());
    let tarball = e.dir.path().join("rootfs.tar");
    let status = Command::new("tar")
        .arg("-C")
        .arg(bundle.join("rootfs"))
        .arg("-cf")
        .arg(&tarball)
        .arg(".")
        .status()
        .unwrap();
    assert!(status.success());
    let id = e.ok(&[
        "import",
        "-c",
        "CMD [\"sh\"]",
        "-c",
        "ENV A=b",
        "-m",
        "from a tarball",
        tarball.to_str().unwrap(),
        "imported:v1",
    ]);
    assert!(id.starts_with("sha256:") && id.trim().len() == 71, "{id}");
    let img: Value = serde_json::from_str(&e.ok(&["image", "inspect", "imported:v1"])).unwrap();
    assert_eq!(img[0]["Id"], id.trim());
    assert_eq!(img[0]["Config"]["Cmd"], serde_json::json!(["sh"]));
    assert_eq!(img[0]["Comment"], "from a tarball");
    assert_eq!(img[0]["RootFS"]["Layers"].as_array().unwrap().len(), 1);
}

#[test]
fn bad_input_gets_a_clear_error_the_right_code_and_leaves_nothing() {
    let e = Engine::new();
    // Flags Coracle does not know: 125, like docker.
    let err = e.fails(&["images", "--bogus"], 125);
    assert!(err.contains("--bogus"), "{err}");
    let err = e.fails(&["tag", "nothing", "x:1"], 1);
    assert!(err.contains("No such image: nothing"), "{err}");
    let err = e.fails(&["pull", "UPPER/case"], 1);
    assert!(err.contains("invalid reference"), "{err}");
    let err = e.fails(&["images", "--filter", "colour=blue"], 1);
    assert!(err.contains("invalid filter 'colour'"), "{err}");

    // A file that is not an archive.
    let junk = e.dir.path().join("junk.tar");
    fs::write(&junk, vec![0x42u8; 10_000]).unwrap();
    let err = e.fails(&["load", "-i", junk.to_str().unwrap()], 1);
    assert!(!err.is_empty());
    let err = e.fails(&["load", "-i", "/nonexistent/file.tar"], 1);
    assert!(err.contains("/nonexistent/file.tar"), "{err}");
    assert!(e.images_json().is_empty());
    let ingest = e.root().join("image/content/ingest");
    let left = fs::read_dir(&ingest).map(|d| d.count()).unwrap_or(0);
    assert_eq!(left, 0, "ingest left behind");

    // A failed save leaves no file behind.
    let out_file = e.dir.path().join("never.tar");
    e.fails(&["save", "-o", out_file.to_str().unwrap(), "nothing"], 1);
    assert!(!out_file.exists());
}
