//! The image store: records, shared layers, tags, rmi/prune/gc and crash leftovers, with
//! images built in the test from real tar layers.

use std::fs;
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use coracle_image::content::Digest;
use coracle_image::reference::Reference;
use coracle_image::store::{ImageStore, NewImage, Removed, StoreError};

/// A layer: a tar with the given files, gzip-compressed.
struct Layer {
    gz: Vec<u8>,
    diff_id: Digest,
}

fn layer(files: &[(&str, &[u8])]) -> Layer {
    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(0);
        h.set_uid(0);
        h.set_gid(0);
        h.set_entry_type(tar::EntryType::Regular);
        b.append_data(&mut h, name, *data).unwrap();
    }
    let tar = b.into_inner().unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&tar).unwrap();
    Layer {
        gz: gz.finish().unwrap(),
        diff_id: Digest::of_bytes(&tar),
    }
}

/// Puts the layers, a config naming `diff_ids` and a manifest into the store's content store.
fn new_image(
    store: &ImageStore,
    layers: &[&Layer],
    diff_ids: &[Digest],
    tag: Option<&str>,
) -> NewImage {
    let content = store.content();
    let mut descs = Vec::new();
    for l in layers {
        let d = content.put(&l.gz).unwrap();
        descs.push((
            d,
            "application/vnd.oci.image.layer.v1.tar+gzip".to_string(),
            l.gz.len() as u64,
        ));
    }
    let ids: Vec<String> = diff_ids.iter().map(|d| format!("\"{d}\"")).collect();
    let config = format!(
        r#"{{"architecture":"amd64","os":"linux","created":"2026-01-01T00:00:00Z","config":{{"Cmd":["sh"],"Env":["PATH=/bin"]}},"rootfs":{{"type":"layers","diff_ids":[{}]}}}}"#,
        ids.join(",")
    );
    let config_digest = content.put(config.as_bytes()).unwrap();
    let manifest = format!(
        r#"{{"schemaVersion":2,"config":{{"digest":"{config_digest}"}},"layers":{}}}"#,
        descs.len()
    );
    let manifest_digest = content.put(manifest.as_bytes()).unwrap();
    NewImage {
        manifest_digest,
        config_digest,
        layers: descs,
        tag: tag.map(|t| t.parse::<Reference>().unwrap()),
        repo_digest: None,
    }
}

fn image(store: &ImageStore, layers: &[&Layer], tag: Option<&str>) -> NewImage {
    let ids: Vec<Digest> = layers.iter().map(|l| l.diff_id.clone()).collect();
    new_image(store, layers, &ids, tag)
}

fn open() -> (tempfile::TempDir, ImageStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = ImageStore::open(dir.path().join("images")).unwrap();
    (dir, store)
}

fn layer_dirs(store: &ImageStore) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(store.root().join("layers"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.ends_with(".json"))
        .collect();
    names.sort();
    names
}

fn count_blobs(store: &ImageStore) -> usize {
    store.content().list().unwrap().len()
}

#[test]
fn a_committed_image_is_listed_resolved_and_its_layers_unpacked() {
    let (_dir, store) = open();
    let base = layer(&[("bin/sh", b"#!shell"), ("etc/os-release", b"coracle")]);
    let app = layer(&[("app/run", b"hello")]);
    let rec = store
        .commit(image(&store, &[&base, &app], Some("busybox")))
        .unwrap();

    assert_eq!(
        rec.tags,
        vec!["docker.io/library/busybox:latest".to_string()]
    );
    assert_eq!(rec.layers.len(), 2);
    assert_eq!(rec.size, 7 + 7 + 5);
    assert_eq!(rec.created.as_deref(), Some("2026-01-01T00:00:00Z"));
    assert_eq!(
        fs::read(store.layer_dir(&app.diff_id).join("app/run")).unwrap(),
        b"hello"
    );
    assert_eq!(
        fs::read(store.layer_dir(&base.diff_id).join("etc/os-release")).unwrap(),
        b"coracle"
    );

    for name in [
        "busybox",
        "busybox:latest",
        "docker.io/library/busybox:latest",
        rec.short_id(),
        &rec.id.to_string(),
        &rec.id.hex()[..4],
    ] {
        assert_eq!(store.resolve(name).unwrap().id, rec.id, "resolving {name}");
    }
    let err = store.resolve("nginx").unwrap_err();
    assert_eq!(err.to_string(), "No such image: nginx");
    assert_eq!(store.list().unwrap(), vec![rec.clone()]);
    assert_eq!(
        store.config(&rec).unwrap().defaults().cmd,
        Some(vec!["sh".to_string()])
    );

    // Committing the same image again changes nothing.
    let again = store
        .commit(image(&store, &[&base, &app], Some("busybox")))
        .unwrap();
    assert_eq!(again, rec);
    assert_eq!(store.list().unwrap().len(), 1);
}

#[test]
fn a_shared_layer_is_unpacked_once() {
    let (_dir, store) = open();
    let base = layer(&[("bin/sh", b"#!shell")]);
    let a = layer(&[("a", b"a")]);
    let b = layer(&[("b", b"b")]);
    store
        .commit(image(&store, &[&base, &a], Some("one")))
        .unwrap();
    let ino = fs::metadata(store.layer_dir(&base.diff_id).join("bin/sh"))
        .unwrap()
        .ino();
    store
        .commit(image(&store, &[&base, &b], Some("two")))
        .unwrap();
    assert_eq!(
        fs::metadata(store.layer_dir(&base.diff_id).join("bin/sh"))
            .unwrap()
            .ino(),
        ino
    );
    assert_eq!(layer_dirs(&store).len(), 3);
}

#[test]
fn a_layer_whose_content_does_not_match_its_diff_id_is_refused_and_leaves_nothing() {
    let (_dir, store) = open();
    let good = layer(&[("ok", b"ok")]);
    let evil = layer(&[("evil", b"evil")]);
    // The config claims `good`'s diff_id for the second layer, but the blob is `evil`.
    let new = new_image(
        &store,
        &[&good, &evil],
        &[good.diff_id.clone(), layer(&[("x", b"x")]).diff_id],
        Some("bad"),
    );
    let err = store.commit(new).unwrap_err();
    assert!(matches!(err, StoreError::DiffIdMismatch { .. }), "{err}");
    assert!(err.to_string().contains("uncompressed content"), "{err}");
    assert!(store.list().unwrap().is_empty());
    let leftovers: Vec<String> = layer_dirs(&store)
        .into_iter()
        .filter(|n| n.starts_with(".tmp-"))
        .collect();
    assert!(
        leftovers.is_empty(),
        "temporary layer dirs left: {leftovers:?}"
    );
    assert!(!store.layer_dir(&evil.diff_id).exists());
}

#[test]
fn a_config_listing_fewer_diff_ids_than_layers_is_refused() {
    let (_dir, store) = open();
    let a = layer(&[("a", b"a")]);
    let b = layer(&[("b", b"b")]);
    let new = new_image(&store, &[&a, &b], std::slice::from_ref(&a.diff_id), None);
    let err = store.commit(new).unwrap_err();
    assert!(
        err.to_string().contains("2 layers but the config lists 1"),
        "{err}"
    );
}

#[test]
fn a_tag_moves_to_the_newer_image_and_the_old_one_dangles_until_pruned() {
    let (_dir, store) = open();
    let v1 = layer(&[("v", b"1")]);
    let v2 = layer(&[("v", b"2")]);
    let old = store
        .commit(image(&store, &[&v1], Some("app:latest")))
        .unwrap();
    let new = store
        .commit(image(&store, &[&v2], Some("app:latest")))
        .unwrap();
    let list = store.list().unwrap();
    assert_eq!(list.len(), 2);
    let dangling = list.iter().find(|r| r.id == old.id).unwrap();
    assert!(dangling.tags.is_empty());
    assert_eq!(store.resolve("app").unwrap().id, new.id);

    let (deleted, reclaimed) = store.prune(false).unwrap();
    assert_eq!(deleted, vec![old.id.clone()]);
    assert!(reclaimed > 0);
    assert_eq!(store.list().unwrap().len(), 1);
    assert!(!store.layer_dir(&v1.diff_id).exists());
    assert!(store.layer_dir(&v2.diff_id).exists());
}

#[test]
fn rmi_untags_then_deletes_and_collects_garbage() {
    let (_dir, store) = open();
    let l = layer(&[("f", b"data")]);
    let rec = store.commit(image(&store, &[&l], Some("a:1"))).unwrap();
    store.tag("a:1", &"b:2".parse().unwrap()).unwrap();
    assert_eq!(store.resolve("b:2").unwrap().id, rec.id);

    // By id with two names: refused without force.
    let err = store.remove(rec.short_id(), false).unwrap_err();
    assert!(err.to_string().contains("must be forced"), "{err}");

    assert_eq!(
        store.remove("a:1", false).unwrap(),
        vec![Removed::Untagged("a:1".into())]
    );
    assert!(store.layer_dir(&l.diff_id).exists(), "still named b:2");
    let out = store.remove("b:2", false).unwrap();
    assert_eq!(
        out,
        vec![
            Removed::Untagged("b:2".into()),
            Removed::Deleted(rec.id.clone())
        ]
    );
    assert!(store.list().unwrap().is_empty());
    assert_eq!(
        count_blobs(&store),
        0,
        "manifest, config and layer blobs removed"
    );
    assert!(layer_dirs(&store).is_empty());
    assert!(matches!(
        store.remove("b:2", false),
        Err(StoreError::NotFound(_))
    ));
}

#[test]
fn an_image_a_snapshot_uses_is_kept_unless_forced_and_even_then_its_data_stays() {
    let (_dir, store) = open();
    let l = layer(&[("f", b"data")]);
    let rec = store.commit(image(&store, &[&l], Some("busybox"))).unwrap();
    let spec = store.create_snapshot("ctr1", &rec).unwrap();
    assert!(spec.options.contains("lowerdir=l/0"), "{}", spec.options);

    let err = store.remove("busybox", false).unwrap_err();
    assert!(
        err.to_string()
            .contains("being used by 1 snapshot(s): ctr1"),
        "{err}"
    );
    assert_eq!(store.prune(true).unwrap().0, Vec::<Digest>::new());

    let out = store.remove("busybox", true).unwrap();
    assert_eq!(out, vec![Removed::Untagged("busybox:latest".into())]);
    assert!(
        store.layer_dir(&l.diff_id).exists(),
        "the snapshot still needs the layer"
    );
    store.snapshotter().remove("ctr1").unwrap();
    let (deleted, _) = store.prune(false).unwrap();
    assert_eq!(deleted, vec![rec.id]);
    assert!(layer_dirs(&store).is_empty());
}

#[test]
fn crash_leftovers_are_invisible_and_collected() {
    let (_dir, store) = open();
    let l = layer(&[("f", b"data")]);
    let rec = store.commit(image(&store, &[&l], Some("keep"))).unwrap();
    // What a crash mid-pull leaves: a half-unpacked layer, a partial ingest, a torn records
    // temp file and an unreferenced committed blob.
    let layers = store.root().join("layers");
    fs::create_dir_all(layers.join(".tmp-deadbeef-1-0/usr")).unwrap();
    let mut w = store.content().writer("pull-layer-x", None, None).unwrap();
    w.write_all(b"partial").unwrap();
    drop(w);
    fs::write(store.root().join("images.tmp-999"), b"{\"images\": {tor").unwrap();
    let orphan = store.content().put(b"orphan blob").unwrap();

    assert_eq!(store.list().unwrap(), vec![rec.clone()]);
    store.gc().unwrap();
    assert_eq!(layer_dirs(&store), vec![l.diff_id.hex().to_string()]);
    assert!(store.content().ingests().unwrap().is_empty());
    assert!(!store.content().exists(&orphan));
    assert_eq!(store.resolve("keep").unwrap(), rec);
}

#[test]
fn garbage_collection_waits_for_pulls_in_progress() {
    let (_dir, store) = open();
    let lease = store.lease().unwrap();
    // Blobs a pull has committed but not yet recorded, and a partial ingest it is writing.
    let pending = store.content().put(b"layer of a pull in progress").unwrap();
    let writer = store
        .content()
        .writer("pull-in-progress", None, None)
        .unwrap();
    let other = ImageStore::open(store.root()).unwrap();
    assert_eq!(other.gc().unwrap(), 0);
    assert!(store.content().exists(&pending), "gc ran during a lease");
    drop(lease);
    // The writer still holds its ingest: gc removes the unreferenced blob, not the live ingest.
    other.gc().unwrap();
    assert!(!store.content().exists(&pending));
    assert_eq!(
        store.content().ingests().unwrap(),
        vec!["pull-in-progress".to_string()]
    );
    drop(writer);
    other.gc().unwrap();
    assert!(store.content().ingests().unwrap().is_empty());
}

#[test]
fn concurrent_puts_of_the_same_blob_all_succeed() {
    let (_dir, store) = open();
    let data = vec![7u8; 1 << 20];
    std::thread::scope(|s| {
        for _ in 0..8 {
            s.spawn(|| store.content().put(&data).unwrap());
        }
    });
    assert_eq!(
        store.content().list().unwrap(),
        vec![Digest::of_bytes(&data)]
    );
    assert!(store.content().ingests().unwrap().is_empty());
}

#[test]
fn corrupt_records_are_reported_not_silently_dropped() {
    let (_dir, store) = open();
    fs::write(store.root().join("images.json"), b"{not json").unwrap();
    let err = store.list().unwrap_err();
    assert!(err.to_string().contains("images.json are corrupt"), "{err}");
}

#[test]
fn an_ambiguous_id_prefix_is_refused() {
    let (_dir, store) = open();
    // Commit images until two ids share a first hex digit (at most 17 by pigeonhole).
    let mut ids: Vec<Digest> = Vec::new();
    for i in 0..17u8 {
        let l = layer(&[("n", &[i])]);
        let rec = store
            .commit(image(&store, &[&l], Some(&format!("img:{i}"))))
            .unwrap();
        let first = &rec.id.hex()[..1];
        if ids.iter().any(|d| &d.hex()[..1] == first) {
            let err = store.resolve(first).unwrap_err();
            assert!(matches!(err, StoreError::Ambiguous { .. }), "{err}");
            return;
        }
        ids.push(rec.id);
    }
    panic!("17 ids cannot all have distinct first hex digits");
}

#[test]
fn concurrent_commits_from_many_threads_all_land() {
    let (_dir, store) = open();
    let root = store.root().to_path_buf();
    std::thread::scope(|s| {
        for i in 0..8u8 {
            let root: &Path = &root;
            s.spawn(move || {
                let store = ImageStore::open(root).unwrap();
                let l = layer(&[("n", &[i, i])]);
                store
                    .commit(image(&store, &[&l], Some(&format!("par:{i}"))))
                    .unwrap();
            });
        }
    });
    let list = store.list().unwrap();
    assert_eq!(list.len(), 8);
    for i in 0..8 {
        store.resolve(&format!("par:{i}")).unwrap();
    }
}
