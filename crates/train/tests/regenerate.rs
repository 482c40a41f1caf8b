//! The committed forests and model cards are exactly what training produces now: a change to
//! the features, the flow engine, the generator or the trainer that would change a model fails
//! here until `make train` is run and the new models are committed.

use std::path::PathBuf;

#[test]
fn committed_models_match_a_fresh_training_run() {
    let root = PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"),
    )
    .join("../..");
    let data = root.join("../shared/data");
    assert!(
        data.join("LABELS.tsv").exists(),
        "the shared captures are expected at {}",
        data.display()
    );
    let outputs =
        mld_train::outputs(&root, &data, 1, mld_train::corpus::Rows::None, |_| {}).unwrap();
    assert_eq!(outputs.len(), 8, "four forests and four model cards");
    let mut stale = Vec::new();
    for (path, text) in &outputs {
        if std::fs::read_to_string(path).ok().as_deref() != Some(text.as_str()) {
            stale.push(path.display().to_string());
        }
    }
    assert!(stale.is_empty(), "regenerating changes {stale:?}: run `make train` and commit");
}
