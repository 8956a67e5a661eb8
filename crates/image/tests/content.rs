//! Content store behaviour: commit, verification, resume, races and crash leftovers.

use std::fs;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::sync::{Arc, Barrier};

use coracle_image::content::{ContentError, ContentStore, Digest};

fn store() -> (tempfile::TempDir, ContentStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = ContentStore::open(dir.path().join("content")).unwrap();
    (dir, store)
}

fn read_blob(store: &ContentStore, d: &Digest) -> Vec<u8> {
    let mut buf = Vec::new();
    store.open_blob(d).unwrap().read_to_end(&mut buf).unwrap();
    buf
}

fn payload(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 % 251) as u8).collect()
}

#[test]
fn commit_of_a_correct_blob() {
    let (_t, store) = store();
    let data = payload(200_000);
    let expected = Digest::of_bytes(&data);
    let mut w = store
        .writer(expected.hex(), Some(&expected), Some(data.len() as u64))
        .unwrap();
    w.write_all(&data[..1000]).unwrap();
    w.write_all(&data[1000..]).unwrap();
    assert_eq!(w.offset(), data.len() as u64);
    let got = w.commit().unwrap();
    assert_eq!(got, expected);

    assert!(store.exists(&expected));
    assert_eq!(read_blob(&store, &expected), data);
    assert_eq!(store.size(&expected).unwrap(), data.len() as u64);
    let mode = fs::metadata(store.blob_path(&expected))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o444);
    assert!(!store.root().join("ingest").join(expected.hex()).exists());
    assert!(store.ingests().unwrap().is_empty());
    store.verify(&expected).unwrap();
    assert_eq!(store.list().unwrap(), vec![expected]);
}

#[test]
fn commit_without_expected_digest_returns_the_computed_one() {
    let (_t, store) = store();
    let mut w = store.writer("upload-1", None, None).unwrap();
    w.write_all(b"hello").unwrap();
    let d = w.commit().unwrap();
    assert_eq!(d, Digest::of_bytes(b"hello"));
    assert_eq!(read_blob(&store, &d), b"hello");
}

#[test]
fn digest_mismatch_is_refused_and_the_ingest_removed() {
    let (_t, store) = store();
    let expected = Digest::of_bytes(b"the real layer");
    let mut w = store.writer("layer", Some(&expected), None).unwrap();
    w.write_all(b"a tampered layer").unwrap();
    let err = w.commit().unwrap_err();
    let actual = Digest::of_bytes(b"a tampered layer");
    match &err {
        ContentError::DigestMismatch {
            expected: e,
            actual: a,
            ..
        } => {
            assert_eq!(e, &expected);
            assert_eq!(a, &actual);
        }
        other => panic!("unexpected error {other:?}"),
    }
    let msg = err.to_string();
    assert!(msg.contains(&expected.to_string()) && msg.contains(&actual.to_string()));
    assert!(!store.exists(&expected) && !store.exists(&actual));
    assert!(store.list().unwrap().is_empty());
    assert!(store.ingests().unwrap().is_empty());
    // A new writer on the same ref starts from scratch, not from the corrupt data.
    assert_eq!(store.writer("layer", None, None).unwrap().offset(), 0);
}

#[test]
fn size_mismatch_is_refused() {
    let (_t, store) = store();
    let data = b"twelve bytes";
    let expected = Digest::of_bytes(data);
    let mut w = store.writer("short", Some(&expected), Some(13)).unwrap();
    w.write_all(data).unwrap();
    let err = w.commit().unwrap_err();
    assert!(
        matches!(
            err,
            ContentError::SizeMismatch {
                expected: 13,
                actual: 12,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(!store.exists(&expected));
    assert!(store.ingests().unwrap().is_empty());
}

#[test]
fn an_interrupted_write_resumes_at_its_offset() {
    let (_t, store) = store();
    let data = payload(300_001);
    let half = data.len() / 2;
    let expected = Digest::of_bytes(&data);
    let size = Some(data.len() as u64);

    let mut w = store.writer(expected.hex(), Some(&expected), size).unwrap();
    w.write_all(&data[..half]).unwrap();
    drop(w);
    assert_eq!(store.ingests().unwrap(), vec![expected.hex().to_owned()]);
    assert!(store.list().unwrap().is_empty());

    let mut w = store.writer(expected.hex(), Some(&expected), size).unwrap();
    assert_eq!(w.offset(), half as u64);
    w.write_all(&data[half..]).unwrap();
    assert_eq!(w.commit().unwrap(), expected);
    assert_eq!(read_blob(&store, &expected), data);
    store.verify(&expected).unwrap();
}

#[test]
fn a_ref_is_held_by_one_writer_at_a_time() {
    let (_t, store) = store();
    let w = store.writer("busy", None, None).unwrap();
    assert!(matches!(
        store.writer("busy", None, None),
        Err(ContentError::Locked { .. })
    ));
    drop(w);
    store.writer("busy", None, None).unwrap();
}

#[test]
fn two_writers_of_the_same_content_both_succeed() {
    let (_t, store) = store();
    let data = payload(50_000);
    let expected = Digest::of_bytes(&data);

    let mut a = store.writer("a", Some(&expected), None).unwrap();
    let mut b = store.writer("b", Some(&expected), None).unwrap();
    a.write_all(&data).unwrap();
    b.write_all(&data).unwrap();
    assert_eq!(a.commit().unwrap(), expected);
    assert_eq!(b.commit().unwrap(), expected);
    assert_eq!(store.list().unwrap(), vec![expected.clone()]);
    assert!(store.ingests().unwrap().is_empty());

    // The same race across threads.
    store.delete(&expected).unwrap();
    let barrier = Arc::new(Barrier::new(4));
    let handles: Vec<_> = (0..4)
        .map(|i| {
            let (store, data, expected, barrier) = (
                store.clone(),
                data.clone(),
                expected.clone(),
                barrier.clone(),
            );
            std::thread::spawn(move || {
                let mut w = store
                    .writer(&format!("t{i}"), Some(&expected), None)
                    .unwrap();
                w.write_all(&data).unwrap();
                barrier.wait();
                w.commit().unwrap()
            })
        })
        .collect();
    for h in handles {
        assert_eq!(h.join().unwrap(), expected);
    }
    assert_eq!(store.list().unwrap(), vec![expected.clone()]);
    assert_eq!(read_blob(&store, &expected), data);
    assert!(store.ingests().unwrap().is_empty());
}

#[test]
fn list_and_delete_are_idempotent() {
    let (_t, store) = store();
    let a = store.put(b"a").unwrap();
    let b = store.put(b"b").unwrap();
    assert_eq!(store.put(b"a").unwrap(), a);
    let mut both = vec![a.clone(), b.clone()];
    both.sort();
    assert_eq!(store.list().unwrap(), both);
    store.delete(&a).unwrap();
    store.delete(&a).unwrap();
    assert!(!store.exists(&a));
    assert_eq!(store.list().unwrap(), vec![b.clone()]);
    assert!(matches!(
        store.open_blob(&a),
        Err(ContentError::NotFound { .. })
    ));
    assert!(matches!(store.size(&a), Err(ContentError::NotFound { .. })));
    assert!(matches!(
        store.verify(&a),
        Err(ContentError::NotFound { .. })
    ));
    store.delete(&b).unwrap();
    assert!(store.list().unwrap().is_empty());
}

#[test]
fn crash_leftovers_never_show_up_in_list() {
    let (_t, store) = store();
    let good = store.put(b"good").unwrap();
    let blobs = store.root().join("blobs").join("sha256");
    // A temp file, a truncated name, a directory named like a digest, and an ingest dir.
    let other = Digest::of_bytes(b"other");
    fs::write(blobs.join(format!("{}.tmp", other.hex())), b"x").unwrap();
    fs::write(blobs.join(&other.hex()[..10]), b"x").unwrap();
    fs::create_dir(blobs.join(Digest::of_bytes(b"dir").hex())).unwrap();
    let mut w = store.writer(other.hex(), Some(&other), None).unwrap();
    w.write_all(b"oth").unwrap();
    drop(w);

    assert_eq!(store.list().unwrap(), vec![good.clone()]);
    assert!(!store.exists(&other));
    // Reopening the store (after the "crash") sees the same.
    let reopened = ContentStore::open(store.root()).unwrap();
    assert_eq!(reopened.list().unwrap(), vec![good]);
    assert_eq!(reopened.ingests().unwrap(), vec![other.hex().to_owned()]);
    reopened.abort(other.hex()).unwrap();
    assert!(reopened.ingests().unwrap().is_empty());
}

#[test]
fn verify_detects_a_corrupted_blob() {
    let (_t, store) = store();
    let d = store.put(b"pristine").unwrap();
    let path = store.blob_path(&d);
    fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
    fs::write(&path, b"bitrot!!").unwrap();
    let err = store.verify(&d).unwrap_err();
    assert!(matches!(err, ContentError::Corrupt { .. }), "{err:?}");
    assert!(err.to_string().contains(&d.to_string()));
}

#[test]
fn unsafe_refs_are_refused() {
    let (_t, store) = store();
    for bad in ["../escape", "a/b", "", ".."] {
        assert!(matches!(
            store.writer(bad, None, None),
            Err(ContentError::InvalidRef { .. })
        ));
    }
}
