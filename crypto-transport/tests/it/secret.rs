use std::fs;
use std::os::unix::fs::PermissionsExt;

use mld_crypto_transport::{RootSecret, SecretError};

fn mode(path: &std::path::Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

#[test]
fn written_secret_is_0600_and_loads_back() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("root.key");
    let secret = RootSecret::generate().unwrap();
    secret.write_new(&path).unwrap();
    assert_eq!(mode(&path), 0o600);
    let text = fs::read_to_string(&path).unwrap();
    assert_eq!(text.len(), 65);
    assert!(text.ends_with('\n'));
    RootSecret::load(&path).unwrap();
}

#[test]
fn write_never_overwrites() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("root.key");
    RootSecret::generate().unwrap().write_new(&path).unwrap();
    let before = fs::read(&path).unwrap();
    let err = RootSecret::generate().unwrap().write_new(&path).unwrap_err();
    assert!(matches!(err, SecretError::Exists { .. }), "{err}");
    assert_eq!(fs::read(&path).unwrap(), before);
}

#[test]
fn load_refuses_files_readable_by_group_or_others() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("root.key");
    RootSecret::generate().unwrap().write_new(&path).unwrap();
    for bad in [0o644, 0o640, 0o604, 0o660, 0o602, 0o620, 0o777] {
        fs::set_permissions(&path, fs::Permissions::from_mode(bad)).unwrap();
        let err = RootSecret::load(&path).unwrap_err();
        assert!(
            matches!(err, SecretError::PermissionsTooOpen { mode, .. } if mode == bad),
            "mode {bad:o}: {err}"
        );
        assert!(err.to_string().contains("chmod 600"), "{err}");
    }
    for good in [0o600, 0o400] {
        fs::set_permissions(&path, fs::Permissions::from_mode(good)).unwrap();
        RootSecret::load(&path).unwrap();
    }
}

#[test]
fn load_rejects_malformed_missing_and_non_files() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &[u8]| {
        let path = dir.path().join(name);
        fs::write(&path, text).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        path
    };
    let cases: [(&str, &[u8]); 5] = [
        ("empty", b""),
        ("short", b"abcd\n"),
        ("not-hex", &[b'z'; 64]),
        ("too-long", &[b'a'; 66]),
        ("two-newlines", b"00000000000000000000000000000000000000000000000000000000000000\n\n"),
    ];
    for (name, text) in cases {
        let err = RootSecret::load(&write(name, text)).unwrap_err();
        assert!(matches!(err, SecretError::Malformed { .. }), "{name}: {err}");
        assert!(err.to_string().contains(name), "message names the file: {err}");
    }
    let missing = RootSecret::load(&dir.path().join("absent")).unwrap_err();
    assert!(matches!(missing, SecretError::Read { .. }), "{missing}");
    let sub = dir.path().join("sub");
    fs::create_dir(&sub).unwrap();
    fs::set_permissions(&sub, fs::Permissions::from_mode(0o700)).unwrap();
    assert!(matches!(RootSecret::load(&sub).unwrap_err(), SecretError::NotAFile { .. }));
}

#[test]
fn secret_file_content_is_the_key() {
    // Two secrets loaded from the same file derive the same keys; different files differ.
    use mld_crypto_transport::{Channel, KeyRing, Opener, Sealer};
    use std::sync::Arc;
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    RootSecret::generate().unwrap().write_new(&a).unwrap();
    RootSecret::generate().unwrap().write_new(&b).unwrap();
    let ring = |p| Arc::new(KeyRing::new(RootSecret::load(p).unwrap(), 1));
    let mut sealer = Sealer::new(ring(&a), Channel::Flow).unwrap();
    let sealed = sealer.seal(b"x").unwrap();
    assert!(Opener::new(ring(&a), Channel::Flow).open(&sealed).is_ok());
    assert!(Opener::new(ring(&b), Channel::Flow).open(&sealed).is_err());
}
