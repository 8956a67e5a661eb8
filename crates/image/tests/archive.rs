//! Image archives against real tools: OCI layouts built by umoci (`scripts/mkimage.sh`),
//! docker archives written by skopeo, and our saved archives read back by skopeo. Hostile and
//! malformed archives must be refused with an error that names the culprit, leaving no ingest.

use std::fs;
use std::io::{Cursor, Read};
use std::path::{Path, PathBuf};
use std::process::Command;

use coracle_image::archive::{
    import, load, load_layout_dir, save, ArchiveError, ImportOptions, LoadedImage, SaveItem,
};
use coracle_image::content::{ContentStore, Digest};
use coracle_image::unpack::{unpack, UnpackOptions};
use tempfile::TempDir;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Whether the external tools are installed; tests that need them print why they skip.
fn tools() -> bool {
    for tool in ["skopeo", "umoci"] {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .is_ok_and(|o| o.status.success());
        if !found {
            eprintln!("skipping: {tool} is not installed");
            return false;
        }
    }
    true
}

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// An OCI layout at `dir/layout` with tag `t1`: busybox plus `layers` filler layers of 1 MiB.
fn make_layout(dir: &Path, layers: u32) -> PathBuf {
    make_layout_mb(dir, layers, 1)
}

/// The same with filler layers of `mb` MiB: above 4 MiB, entries of an archive are staged in
/// the store's ingest area rather than in memory.
fn make_layout_mb(dir: &Path, layers: u32, mb: u32) -> PathBuf {
    let layout = dir.join("layout");
    run(Command::new(repo_root().join("scripts/mkimage.sh"))
        .arg(&layout)
        .arg("t1")
        .args(["--layers", &layers.to_string()])
        .args(["--layer-mb", &mb.to_string()]));
    layout
}

fn store_in(dir: &Path, name: &str) -> ContentStore {
    ContentStore::open(dir.join(name)).unwrap()
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&fs::read(path).unwrap()).unwrap()
}

/// The manifest digest `index.json` of a layout names first.
fn index_manifest(layout: &Path) -> Digest {
    let index = json(&layout.join("index.json"));
    Digest::parse(index["manifests"][0]["digest"].as_str().unwrap()).unwrap()
}

fn read_blob(store: &ContentStore, d: &Digest) -> Vec<u8> {
    let mut v = Vec::new();
    store.open_blob(d).unwrap().read_to_end(&mut v).unwrap();
    v
}

fn config_diff_ids(store: &ContentStore, config: &Digest) -> Vec<String> {
    let c: serde_json::Value = serde_json::from_slice(&read_blob(store, config)).unwrap();
    c["rootfs"]["diff_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_str().unwrap().to_owned())
        .collect()
}

fn layer_digest(l: &coracle_image::archive::Descriptor) -> Digest {
    Digest::parse(l.digest().as_ref()).unwrap()
}

/// The sha256 of a stored layer's uncompressed content.
fn uncompressed_digest(store: &ContentStore, layer: &Digest) -> Digest {
    let blob = read_blob(store, layer);
    let mut plain = Vec::new();
    if blob.starts_with(&[0x1f, 0x8b]) {
        flate2::read::MultiGzDecoder::new(&blob[..])
            .read_to_end(&mut plain)
            .unwrap();
    } else {
        plain = blob;
    }
    Digest::of_bytes(&plain)
}

/// Every layer is in the store and hashes, uncompressed, to its diff_id.
fn assert_verified(store: &ContentStore, img: &LoadedImage) {
    let ids = config_diff_ids(store, &img.config_digest);
    assert_eq!(ids.len(), img.layers.len());
    for (l, id) in img.layers.iter().zip(&ids) {
        let d = layer_digest(l);
        assert!(store.exists(&d), "layer {d} not stored");
        assert_eq!(store.size(&d).unwrap(), l.size());
        assert_eq!(&uncompressed_digest(store, &d).to_string(), id);
    }
    assert!(store.exists(&img.manifest_digest));
    assert!(store.ingests().unwrap().is_empty(), "ingests left behind");
}

#[test]
fn loads_an_oci_layout_directory() {
    if !tools() {
        return;
    }
    let tmp = TempDir::new().unwrap();
    let layout = make_layout(tmp.path(), 1);
    let store = store_in(tmp.path(), "store");
    let images = load_layout_dir(&store, &layout).unwrap();
    assert_eq!(images.len(), 1);
    let img = &images[0];
    assert_eq!(img.names, ["t1"]);
    assert_eq!(img.manifest_digest, index_manifest(&layout));
    assert_eq!(img.layers.len(), 2);
    // The manifest is stored byte for byte.
    let blob = layout.join("blobs/sha256").join(img.manifest_digest.hex());
    assert_eq!(
        read_blob(&store, &img.manifest_digest),
        fs::read(blob).unwrap()
    );
    assert_verified(&store, img);
}

#[test]
fn loads_an_oci_layout_tar_plain_and_gzip() {
    if !tools() {
        return;
    }
    let tmp = TempDir::new().unwrap();
    let layout = make_layout_mb(tmp.path(), 1, 5);
    for (name, flag) in [("plain.tar", "-cf"), ("gz.tar.gz", "-czf")] {
        let file = tmp.path().join(name);
        run(Command::new("tar")
            .arg("-C")
            .arg(&layout)
            .arg(flag)
            .arg(&file)
            .arg("."));
        let store = store_in(tmp.path(), &format!("store-{name}"));
        let images = load(&store, fs::File::open(&file).unwrap()).unwrap();
        assert_eq!(images.len(), 1, "{name}");
        assert_eq!(images[0].names, ["t1"]);
        assert_eq!(images[0].manifest_digest, index_manifest(&layout));
        assert_verified(&store, &images[0]);
    }
}

#[test]
fn loads_a_docker_archive_written_by_skopeo() {
    if !tools() {
        return;
    }
    let tmp = TempDir::new().unwrap();
    let layout = make_layout_mb(tmp.path(), 2, 5);
    let file = tmp.path().join("docker.tar");
    run(Command::new("skopeo")
        .arg("copy")
        .arg("oci:".to_owned() + layout.to_str().unwrap() + ":t1")
        .arg(format!("docker-archive:{}:busybox:latest", file.display())));
    let store = store_in(tmp.path(), "store");
    let images = load(&store, fs::File::open(&file).unwrap()).unwrap();
    assert_eq!(images.len(), 1);
    let img = &images[0];
    assert!(
        img.names.iter().any(|n| n.ends_with("busybox:latest")),
        "{:?}",
        img.names
    );
    assert_eq!(img.layers.len(), 3);
    for l in &img.layers {
        assert_eq!(
            l.media_type().to_string(),
            "application/vnd.oci.image.layer.v1.tar"
        );
    }
    assert_verified(&store, img);
    // The config is the layout's, byte for byte.
    let manifest = json(
        &layout
            .join("blobs/sha256")
            .join(index_manifest(&layout).hex()),
    );
    assert_eq!(
        img.config_digest.to_string(),
        manifest["config"]["digest"].as_str().unwrap()
    );
    // The synthesised manifest is an OCI manifest naming the same config and layers.
    let ours: serde_json::Value =
        serde_json::from_slice(&read_blob(&store, &img.manifest_digest)).unwrap();
    assert_eq!(
        ours["mediaType"],
        "application/vnd.oci.image.manifest.v1+json"
    );
    assert_eq!(
        ours["config"]["mediaType"],
        "application/vnd.oci.image.config.v1+json"
    );
    assert_eq!(ours["config"]["digest"], manifest["config"]["digest"]);
    // And the base layer unpacks into a busybox tree.
    let root = tmp.path().join("rootfs");
    fs::create_dir(&root).unwrap();
    let base = store.open_blob(&layer_digest(&img.layers[0])).unwrap();
    unpack(base, &root, &UnpackOptions::default()).unwrap();
    assert!(root.join("bin/busybox").is_file());
}

#[test]
fn save_round_trips_and_skopeo_reads_it() {
    if !tools() {
        return;
    }
    let tmp = TempDir::new().unwrap();
    let layout = make_layout(tmp.path(), 1);
    let store = store_in(tmp.path(), "store");
    let img = load_layout_dir(&store, &layout).unwrap().remove(0);
    let items = [SaveItem {
        name: Some("docker.io/library/busybox:latest".into()),
        manifest_digest: img.manifest_digest.clone(),
    }];
    let file = tmp.path().join("saved.tar");
    save(&store, &items, fs::File::create(&file).unwrap()).unwrap();

    // Deterministic: the same images give the same bytes.
    let mut again = Vec::new();
    save(&store, &items, &mut again).unwrap();
    assert!(fs::read(&file).unwrap() == again, "two saves differ");

    // manifest.json wins over the layout beside it: a docker-format load.
    let store2 = store_in(tmp.path(), "store2");
    let back = load(&store2, fs::File::open(&file).unwrap()).unwrap();
    assert_eq!(back.len(), 1);
    assert_eq!(back[0].names, ["busybox:latest"]);
    assert_eq!(back[0].config_digest, img.config_digest);
    let digests = |i: &LoadedImage| i.layers.iter().map(layer_digest).collect::<Vec<_>>();
    assert_eq!(digests(&back[0]), digests(&img));
    assert_verified(&store2, &back[0]);

    run(Command::new("skopeo")
        .arg("inspect")
        .arg(format!("docker-archive:{}", file.display())));
    let oci1 = tmp.path().join("oci1");
    run(Command::new("skopeo")
        .arg("copy")
        .arg(format!("oci-archive:{}", file.display()))
        .arg(format!("oci:{}:x", oci1.display())));
    let oci2 = tmp.path().join("oci2");
    run(Command::new("skopeo")
        .arg("copy")
        .arg(format!("docker-archive:{}", file.display()))
        .arg(format!("oci:{}:y", oci2.display())));
    // The OCI copy carries the same config, byte for byte. Going through docker-archive,
    // skopeo converts the manifest to OCI and re-serialises the config on the way (its digest
    // changes), so there the layers' diff_ids are what must match.
    let config_of = |dir: &Path| {
        let m = json(&dir.join("blobs/sha256").join(index_manifest(dir).hex()));
        let d = Digest::parse(m["config"]["digest"].as_str().unwrap()).unwrap();
        (d.clone(), json(&dir.join("blobs/sha256").join(d.hex())))
    };
    assert_eq!(config_of(&oci1).0, img.config_digest);
    let ids = config_diff_ids(&store, &img.config_digest);
    assert_eq!(
        config_of(&oci2).1["rootfs"]["diff_ids"],
        serde_json::json!(ids)
    );
}

#[test]
fn imports_a_root_file_system() {
    if !tools() {
        return;
    }
    let tmp = TempDir::new().unwrap();
    let layout = make_layout(tmp.path(), 0);
    let store = store_in(tmp.path(), "store");
    let img = load_layout_dir(&store, &layout).unwrap().remove(0);
    let base = layer_digest(&img.layers[0]);
    let expected_diff = config_diff_ids(&store, &img.config_digest).remove(0);

    // The base layer is a gzip-compressed busybox root file system; import it as is and plain.
    let gz = read_blob(&store, &base);
    let mut plain = Vec::new();
    flate2::read::MultiGzDecoder::new(&gz[..])
        .read_to_end(&mut plain)
        .unwrap();
    let opts = ImportOptions {
        message: Some("from a test".into()),
        changes: coracle_image::archive::ImageChanges {
            cmd: Some(vec!["sh".into()]),
            env: vec!["A=b".into()],
            working_dir: Some("/tmp".into()),
            ..Default::default()
        },
    };
    let imported = tmp.path().join("imported");
    fs::create_dir(&imported).unwrap();
    for input in [gz, plain] {
        let store = ContentStore::open(imported.join(Digest::of_bytes(&input).hex())).unwrap();
        let img = import(&store, Cursor::new(input), &opts).unwrap();
        assert_eq!(img.layers.len(), 1);
        assert_eq!(
            img.layers[0].media_type().to_string(),
            "application/vnd.oci.image.layer.v1.tar+gzip"
        );
        assert_eq!(
            config_diff_ids(&store, &img.config_digest),
            std::slice::from_ref(&expected_diff)
        );
        assert_verified(&store, &img);
        let config: serde_json::Value =
            serde_json::from_slice(&read_blob(&store, &img.config_digest)).unwrap();
        assert_eq!(config["os"], "linux");
        assert_eq!(config["config"]["Cmd"][0], "sh");
        assert_eq!(config["config"]["WorkingDir"], "/tmp");
        assert_eq!(config["history"][0]["comment"], "from a test");
        // And it saves into something skopeo accepts.
        let file = imported.join("imported.tar");
        let items = [SaveItem {
            name: Some("imported:1".into()),
            manifest_digest: img.manifest_digest.clone(),
        }];
        save(&store, &items, fs::File::create(&file).unwrap()).unwrap();
        run(Command::new("skopeo")
            .arg("inspect")
            .arg(format!("docker-archive:{}", file.display())));
    }

    // Not a tar archive: refused, nothing left in ingest.
    let store = store_in(tmp.path(), "bad");
    let err = import(&store, Cursor::new(vec![7u8; 3000]), &opts).unwrap_err();
    assert!(matches!(err, ArchiveError::ImportStream { .. }), "{err}");
    assert!(store.ingests().unwrap().is_empty());
    assert!(store.list().unwrap().is_empty());
}

// --- Hostile and malformed archives ----------------------------------------------------------

/// A tar archive of `(path, content)` files, paths written raw (so `..` gets through).
fn tar_of(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (path, data) in files {
        let mut h = tar::Header::new_gnu();
        let name = &mut h.as_gnu_mut().unwrap().name;
        name[..path.len()].copy_from_slice(path.as_bytes());
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        h.set_cksum();
        b.append(&h, *data).unwrap();
    }
    b.into_inner().unwrap()
}

/// A small layer: a tar with one file.
fn layer(content: &[u8]) -> Vec<u8> {
    tar_of(&[("hello.txt", content)])
}

fn config_for(diff_ids: &[Digest]) -> Vec<u8> {
    let ids: Vec<String> = diff_ids.iter().map(|d| d.to_string()).collect();
    serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": ids},
    }))
    .unwrap()
}

fn docker_manifest(config: &str, layers: &[&str]) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!([
        {"Config": config, "RepoTags": ["evil:1"], "Layers": layers}
    ]))
    .unwrap()
}

/// Loads `archive` into a fresh store and checks that it fails leaving nothing behind.
fn refused(archive: Vec<u8>) -> ArchiveError {
    let tmp = TempDir::new().unwrap();
    let store = ContentStore::open(tmp.path()).unwrap();
    let err = load(&store, Cursor::new(archive)).unwrap_err();
    assert!(store.ingests().unwrap().is_empty(), "ingest left by: {err}");
    assert!(
        store.list().unwrap().is_empty(),
        "blobs committed by: {err}"
    );
    err
}

#[test]
fn a_valid_synthetic_docker_archive_loads() {
    let l = layer(b"hi");
    let config = config_for(&[Digest::of_bytes(&l)]);
    let archive = tar_of(&[
        (
            "manifest.json",
            &docker_manifest("c.json", &["l/layer.tar"]),
        ),
        ("c.json", &config),
        ("l/layer.tar", &l),
    ]);
    let tmp = TempDir::new().unwrap();
    let store = ContentStore::open(tmp.path()).unwrap();
    let img = load(&store, Cursor::new(archive)).unwrap().remove(0);
    assert_eq!(img.names, ["evil:1"]);
    assert_eq!(img.config_digest, Digest::of_bytes(&config));
    assert_verified(&store, &img);
}

#[test]
fn refuses_a_layer_that_does_not_match_its_diff_id() {
    let l = layer(b"hi");
    let wrong = Digest::of_bytes(b"something else");
    let archive = tar_of(&[
        (
            "manifest.json",
            &docker_manifest("c.json", &["l/layer.tar"]),
        ),
        ("c.json", &config_for(std::slice::from_ref(&wrong))),
        ("l/layer.tar", &l),
    ]);
    let err = refused(archive);
    let msg = err.to_string();
    assert!(matches!(err, ArchiveError::DiffIdMismatch { .. }), "{msg}");
    assert!(msg.contains("l/layer.tar"), "{msg}");
    assert!(msg.contains(&wrong.to_string()), "{msg}");
    assert!(msg.contains(&Digest::of_bytes(&l).to_string()), "{msg}");
}

#[test]
fn refuses_a_gzip_layer_that_does_not_match_its_diff_id() {
    use std::io::Write;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&layer(b"hi")).unwrap();
    let gz = gz.finish().unwrap();
    let archive = tar_of(&[
        ("manifest.json", &docker_manifest("c.json", &["l.tar.gz"])),
        // The compressed digest where the uncompressed one belongs.
        ("c.json", &config_for(&[Digest::of_bytes(&gz)])),
        ("l.tar.gz", &gz),
    ]);
    let err = refused(archive);
    assert!(matches!(err, ArchiveError::DiffIdMismatch { .. }), "{err}");
}

#[test]
fn refuses_dot_dot_and_absolute_entries() {
    for path in ["../escape", "a/../../b", "/etc/passwd"] {
        let archive = tar_of(&[(path, b"x"), ("manifest.json", b"[]")]);
        let err = refused(archive);
        let msg = err.to_string();
        assert!(matches!(err, ArchiveError::UnsafeEntry { .. }), "{msg}");
        assert!(msg.contains(path), "{msg}");
    }
}

#[test]
fn refuses_a_manifest_naming_a_missing_file() {
    let l = layer(b"hi");
    let archive = tar_of(&[
        (
            "manifest.json",
            &docker_manifest("c.json", &["l/layer.tar", "gone/layer.tar"]),
        ),
        (
            "c.json",
            &config_for(&[Digest::of_bytes(&l), Digest::of_bytes(&l)]),
        ),
        ("l/layer.tar", &l),
    ]);
    let err = refused(archive);
    let msg = err.to_string();
    assert!(matches!(err, ArchiveError::Missing { .. }), "{msg}");
    assert!(msg.contains("gone/layer.tar"), "{msg}");
    assert!(msg.contains("Layers[1]"), "{msg}");
}

#[test]
fn refuses_a_wrong_layer_count() {
    let l = layer(b"hi");
    let archive = tar_of(&[
        (
            "manifest.json",
            &docker_manifest("c.json", &["l/layer.tar"]),
        ),
        (
            "c.json",
            &config_for(&[Digest::of_bytes(&l), Digest::of_bytes(b"two")]),
        ),
        ("l/layer.tar", &l),
    ]);
    let err = refused(archive);
    let msg = err.to_string();
    assert!(
        matches!(
            err,
            ArchiveError::LayerCount {
                layers: 1,
                diff_ids: 2,
                ..
            }
        ),
        "{msg}"
    );
    assert!(msg.contains("c.json"), "{msg}");
}

#[test]
fn refuses_garbage_and_archives_of_neither_format() {
    let garbage: Vec<u8> = (0..10_000u32).map(|i| (i * 7919 % 251) as u8).collect();
    let err = refused(garbage);
    assert!(matches!(err, ArchiveError::Stream { .. }), "{err}");
    let err = refused(vec![0x1f, 0x8b, 0, 1, 2, 3]);
    assert!(matches!(err, ArchiveError::Stream { .. }), "{err}");
    let err = refused(tar_of(&[("hello", b"x")]));
    assert!(matches!(err, ArchiveError::UnknownFormat { .. }), "{err}");
    let err = refused(tar_of(&[("manifest.json", b"{not json")]));
    assert!(matches!(err, ArchiveError::Invalid { .. }), "{err}");
}

#[test]
fn refuses_oci_blobs_whose_digest_mismatches() {
    if !tools() {
        return;
    }
    let tmp = TempDir::new().unwrap();
    let layout = make_layout(tmp.path(), 1);
    // Corrupt the filler layer (the larger of the two is the base; pick by manifest order).
    let manifest = json(
        &layout
            .join("blobs/sha256")
            .join(index_manifest(&layout).hex()),
    );
    let filler = Digest::parse(manifest["layers"][1]["digest"].as_str().unwrap()).unwrap();
    let path = layout.join("blobs/sha256").join(filler.hex());
    let mut data = fs::read(&path).unwrap();
    let mid = data.len() / 2;
    data[mid] ^= 0xff;
    let mut perms = fs::metadata(&path).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o644);
    fs::set_permissions(&path, perms).unwrap();
    fs::write(&path, &data).unwrap();

    // As a tar: refused before anything is committed.
    let file = tmp.path().join("layout.tar");
    run(Command::new("tar")
        .arg("-C")
        .arg(&layout)
        .arg("-cf")
        .arg(&file)
        .arg("."));
    let err = refused(fs::read(&file).unwrap());
    let msg = err.to_string();
    assert!(matches!(err, ArchiveError::BlobMismatch { .. }), "{msg}");
    assert!(msg.contains(filler.hex()), "{msg}");

    // As a directory: the writer refuses it; no ingest and no manifest are left.
    let store = store_in(tmp.path(), "store");
    let err = load_layout_dir(&store, &layout).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, ArchiveError::BlobMismatch { .. }), "{msg}");
    assert!(msg.contains(filler.hex()), "{msg}");
    assert!(store.ingests().unwrap().is_empty());
    assert!(!store.exists(&index_manifest(&layout)));
}

/// Appends a symbolic or hard link entry (raw names) to a tar archive built by `tar_of`.
fn with_link(archive: Vec<u8>, path: &str, target: &str, kind: tar::EntryType) -> Vec<u8> {
    // Drop the two end-of-archive blocks, append, and end again.
    let end = archive.len() - 1024;
    let mut b = tar::Builder::new(archive[..end].to_vec());
    let mut h = tar::Header::new_gnu();
    let gnu = h.as_gnu_mut().unwrap();
    gnu.name[..path.len()].copy_from_slice(path.as_bytes());
    gnu.linkname[..target.len()].copy_from_slice(target.as_bytes());
    h.set_size(0);
    h.set_mode(0o777);
    h.set_entry_type(kind);
    h.set_cksum();
    b.append(&h, std::io::empty()).unwrap();
    b.into_inner().unwrap()
}

#[test]
fn follows_links_inside_the_archive_but_not_out_of_it() {
    let l = layer(b"hi");
    let config = config_for(std::slice::from_ref(&Digest::of_bytes(&l)));
    let base = |layer_path: &str| {
        tar_of(&[
            ("manifest.json", &docker_manifest("c.json", &[layer_path])),
            ("c.json", &config),
            ("abc.tar", &l),
        ])
    };
    // Legacy docker archives: id/layer.tar -> ../abc.tar; hard links work the same way.
    for (kind, target) in [
        (tar::EntryType::Symlink, "../abc.tar"),
        (tar::EntryType::Link, "abc.tar"),
    ] {
        let archive = with_link(base("id/layer.tar"), "id/layer.tar", target, kind);
        let tmp = TempDir::new().unwrap();
        let store = ContentStore::open(tmp.path()).unwrap();
        let img = load(&store, Cursor::new(archive)).unwrap().remove(0);
        assert_eq!(layer_digest(&img.layers[0]), Digest::of_bytes(&l));
        assert_verified(&store, &img);
    }
    // A link that leaves the archive is a missing file, never a path on the host.
    let archive = with_link(
        base("id/layer.tar"),
        "id/layer.tar",
        "../../../etc/passwd",
        tar::EntryType::Symlink,
    );
    let err = refused(archive);
    assert!(err.to_string().contains("leaves the archive"), "{err}");
    // Symlink loops end.
    let archive = with_link(base("loop"), "loop", "loop", tar::EntryType::Symlink);
    let err = refused(archive);
    assert!(err.to_string().contains("too many levels"), "{err}");
}

#[test]
fn refuses_special_files_and_directories_where_files_belong() {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_path("dev").unwrap();
    h.set_entry_type(tar::EntryType::Char);
    h.set_size(0);
    h.set_cksum();
    b.append(&h, std::io::empty()).unwrap();
    let err = refused(b.into_inner().unwrap());
    assert!(matches!(err, ArchiveError::UnsafeEntry { .. }), "{err}");
    assert!(err.to_string().contains("dev"), "{err}");

    let l = layer(b"hi");
    let archive = tar_of(&[
        ("manifest.json", &docker_manifest("c.json", &["l/"])),
        (
            "c.json",
            &config_for(std::slice::from_ref(&Digest::of_bytes(&l))),
        ),
        ("l/layer.tar", &l),
    ]);
    let err = refused(archive);
    assert!(matches!(err, ArchiveError::Missing { .. }), "{err}");

    // The same path twice is ambiguous.
    let archive = tar_of(&[("manifest.json", b"[]"), ("manifest.json", b"[]")]);
    let err = refused(archive);
    assert!(err.to_string().contains("twice"), "{err}");
}

#[test]
fn follows_a_nested_index_to_the_host_platform() {
    if !tools() {
        return;
    }
    let tmp = TempDir::new().unwrap();
    let layout = make_layout(tmp.path(), 0);
    let top = json(&layout.join("index.json"));
    let manifest = top["manifests"][0].clone();
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    let mut amd = manifest.clone();
    amd["platform"] = serde_json::json!({"os": "linux", "architecture": arch});
    amd.as_object_mut().unwrap().remove("annotations");
    let mut other = amd.clone();
    other["platform"]["architecture"] = "s390x".into();
    // A second, different manifest for another platform is listed first, and skipped.
    let nested = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [other, amd],
    }))
    .unwrap();
    let nested_digest = Digest::of_bytes(&nested);
    fs::write(
        layout.join("blobs/sha256").join(nested_digest.hex()),
        &nested,
    )
    .unwrap();
    let index = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "digest": nested_digest.to_string(),
            "size": nested.len(),
            "annotations": {
                "org.opencontainers.image.ref.name": "multi",
                "io.containerd.image.name": "example.com/multi:1",
            },
        }],
    });
    fs::write(
        layout.join("index.json"),
        serde_json::to_vec(&index).unwrap(),
    )
    .unwrap();

    let store = store_in(tmp.path(), "store");
    let img = load_layout_dir(&store, &layout).unwrap().remove(0);
    assert_eq!(img.names, ["example.com/multi:1"]);
    assert_eq!(
        img.manifest_digest.to_string(),
        manifest["digest"].as_str().unwrap()
    );
    assert_verified(&store, &img);

    // Without a manifest for this host, the error says so.
    let only_other = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2, "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": manifest["digest"], "size": manifest["size"],
            "platform": {"os": "linux", "architecture": "s390x"},
        }],
    }))
    .unwrap();
    let d = Digest::of_bytes(&only_other);
    fs::write(layout.join("blobs/sha256").join(d.hex()), &only_other).unwrap();
    let index = serde_json::json!({"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "digest": d.to_string(), "size": only_other.len(),
    }]});
    fs::write(
        layout.join("index.json"),
        serde_json::to_vec(&index).unwrap(),
    )
    .unwrap();
    let store = store_in(tmp.path(), "store2");
    let err = load_layout_dir(&store, &layout).unwrap_err();
    assert!(matches!(err, ArchiveError::NoPlatform { .. }), "{err}");
    assert!(err.to_string().contains(d.hex()), "{err}");
}

#[test]
fn loads_a_gzip_compressed_docker_archive_with_gzip_and_zstd_layers() {
    use std::io::Write;
    let plain = layer(b"compressed inside");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&plain).unwrap();
    let gz = gz.finish().unwrap();
    let mut layers: Vec<(&str, Vec<u8>, &str)> = vec![(
        "a/layer.tar",
        gz,
        "application/vnd.oci.image.layer.v1.tar+gzip",
    )];
    // A zstd layer too, when the zstd tool is there to make one.
    let tmp = TempDir::new().unwrap();
    let src = tmp.path().join("l.tar");
    fs::write(&src, &plain).unwrap();
    let zst = Command::new("zstd")
        .arg("-q")
        .arg("-c")
        .arg(&src)
        .output()
        .ok()
        .filter(|o| o.status.success());
    match zst {
        Some(o) => layers.push((
            "b/layer.tar",
            o.stdout,
            "application/vnd.oci.image.layer.v1.tar+zstd",
        )),
        None => eprintln!("zstd not installed: no zstd layer in this test"),
    }
    let ids = vec![Digest::of_bytes(&plain); layers.len()];
    let config = config_for(&ids);
    let paths: Vec<&str> = layers.iter().map(|l| l.0).collect();
    let manifest = docker_manifest("c.json", &paths);
    let mut files: Vec<(&str, &[u8])> = vec![("manifest.json", &manifest), ("c.json", &config)];
    for l in &layers {
        files.push((l.0, &l.1));
    }
    let mut outer = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    outer.write_all(&tar_of(&files)).unwrap();
    let archive = outer.finish().unwrap();

    let store = ContentStore::open(tmp.path().join("store")).unwrap();
    let img = load(&store, Cursor::new(archive)).unwrap().remove(0);
    assert_eq!(img.layers.len(), layers.len());
    for (desc, (_, data, media_type)) in img.layers.iter().zip(&layers) {
        assert_eq!(desc.media_type().to_string(), *media_type);
        assert_eq!(layer_digest(desc), Digest::of_bytes(data));
        assert!(store.exists(&layer_digest(desc)));
    }
    assert!(store.ingests().unwrap().is_empty());
}

#[test]
fn a_large_zstd_layer_is_checked_from_its_ingest() {
    let tmp = TempDir::new().unwrap();
    // 5 MiB of incompressible data: the compressed layer is staged in the ingest area.
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let data: Vec<u8> = (0..5 * 1024 * 1024)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect();
    let plain = tar_of(&[("big.bin", &data)]);
    let src = tmp.path().join("l.tar");
    fs::write(&src, &plain).unwrap();
    let Some(out) = Command::new("zstd")
        .args(["-q", "-1", "-c"])
        .arg(&src)
        .output()
        .ok()
        .filter(|o| o.status.success())
    else {
        eprintln!("skipping: zstd is not installed");
        return;
    };
    let zst = out.stdout;
    let good = config_for(std::slice::from_ref(&Digest::of_bytes(&plain)));
    let bad = config_for(std::slice::from_ref(&Digest::of_bytes(&zst)));
    for (config, ok) in [(bad, false), (good, true)] {
        let archive = tar_of(&[
            ("manifest.json", &docker_manifest("c.json", &["l.tar.zst"])),
            ("c.json", &config),
            ("l.tar.zst", &zst),
        ]);
        if !ok {
            let err = refused(archive);
            assert!(matches!(err, ArchiveError::DiffIdMismatch { .. }), "{err}");
            continue;
        }
        let store = ContentStore::open(tmp.path().join("store")).unwrap();
        let img = load(&store, Cursor::new(archive)).unwrap().remove(0);
        assert_eq!(
            img.layers[0].media_type().to_string(),
            "application/vnd.oci.image.layer.v1.tar+zstd"
        );
        assert_eq!(layer_digest(&img.layers[0]), Digest::of_bytes(&zst));
        assert!(store.ingests().unwrap().is_empty());
    }
}

#[test]
fn concurrent_loads_of_one_archive_into_one_store_all_succeed() {
    let l = layer(b"shared");
    let config = config_for(std::slice::from_ref(&Digest::of_bytes(&l)));
    let archive = tar_of(&[
        (
            "manifest.json",
            &docker_manifest("c.json", &["l/layer.tar"]),
        ),
        ("c.json", &config),
        ("l/layer.tar", &l),
    ]);
    let tmp = TempDir::new().unwrap();
    let store = ContentStore::open(tmp.path()).unwrap();
    let results: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|_| s.spawn(|| load(&store, Cursor::new(archive.clone()))))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let first = results[0].as_ref().unwrap()[0].clone();
    for r in results {
        assert_eq!(r.unwrap()[0], first);
    }
    assert_verified(&store, &first);
}
