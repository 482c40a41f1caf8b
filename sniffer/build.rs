//! Compiles the XDP program in `../sniffer-ebpf/` with clang into `OUT_DIR`, where
//! `src/xdp.rs` embeds it. Needs `clang` and the kernel UAPI/libbpf headers (`make setup`).

use std::path::PathBuf;
use std::process::Command;

fn main() {
    // Read at run time: a build script compiled for one checkout is reused by another that
    // shares the target directory (the CI cache), and `env!` would point it at the first.
    let manifest = std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let src = PathBuf::from(manifest).join("../sniffer-ebpf/xdp_sniffer.c");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"))
        .join("xdp_sniffer.o");
    println!("cargo:rerun-if-changed={}", src.display());
    let clang = std::env::var("CLANG").unwrap_or_else(|_| "clang".to_owned());
    println!("cargo:rerun-if-env-changed=CLANG");
    let status = Command::new(&clang)
        .args([
            "-O2",
            "-g",
            "-target",
            "bpf",
            "-Wall",
            "-Werror",
            "-I/usr/include/x86_64-linux-gnu",
            "-c",
        ])
        .arg(&src)
        .arg("-o")
        .arg(&out)
        .status();
    match status {
        Ok(s) if s.success() => {}
        Ok(s) => panic!("{clang} failed ({s}) compiling {}", src.display()),
        Err(e) => panic!(
            "cannot run {clang} to compile the XDP program {} ({e}); install clang, llvm and \
             libbpf-dev (`make setup`), or set CLANG",
            src.display()
        ),
    }
}
