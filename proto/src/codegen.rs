//! Generates the Rust code for `proto/mldefender.proto` with prost-build (needs `protoc`).

use std::io;
use std::path::{Path, PathBuf};

/// Path of the committed generated file, in the proto crate's directory `crate_dir` (the one
/// holding `proto/` and `src/gen/`; the caller names it, because only cargo knows where the
/// checkout is when the caller runs).
pub fn committed_file(crate_dir: &Path) -> PathBuf {
    crate_dir.join("src/gen/mldefender.v1.rs")
}

/// Messages made only of numbers and strings, which derive serde.
pub const SERDE_MESSAGES: [&str; 5] =
    ["FlowFeatures", "HostContext", "BehaviourLevels", "FastDetection", "DetectorScores"];

/// Generates the code into `out_dir` and returns the path of the generated file.
pub fn generate(crate_dir: &Path, out_dir: &Path) -> io::Result<PathBuf> {
    let proto_dir = crate_dir.join("proto");
    let mut config = prost_build::Config::new();
    // Plain numeric messages also serialise to JSON under their field names (the sniffer's
    // JSONL output, training data); addresses and enums get hand-written JSON where needed.
    for message in SERDE_MESSAGES {
        config.type_attribute(
            format!("mldefender.v1.{message}"),
            "#[derive(serde::Serialize, serde::Deserialize)] #[serde(default)]",
        );
    }
    config.out_dir(out_dir).compile_protos(&[proto_dir.join("mldefender.proto")], &[proto_dir])?;
    Ok(out_dir.join("mldefender.v1.rs"))
}

#[cfg(test)]
mod tests {
    /// Fails when `proto/mldefender.proto` changed without `cargo xtask proto`.
    #[test]
    fn committed_code_matches_regeneration() {
        let dir = tempfile::tempdir().unwrap();
        let crate_dir = std::path::PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap());
        let fresh =
            std::fs::read_to_string(super::generate(&crate_dir, dir.path()).unwrap()).unwrap();
        let committed = std::fs::read_to_string(super::committed_file(&crate_dir)).unwrap();
        assert!(
            fresh == committed,
            "src/gen/mldefender.v1.rs is stale: run `cargo xtask proto` and commit the result"
        );
    }
}
