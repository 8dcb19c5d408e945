#!/usr/bin/env bash
# Starts a worker process: `bash scripts/worker.sh [ENTRY]`, ENTRY a worker entry point (default
# src/workers/main.ts; src/workers/cpu.ts or gpu.ts for one task queue). `npm run worker`, `worker:cpu`,
# `worker:gpu`, the local stack (src/stack/services.ts) and the tests' worker processes all start here.
#
# The worker runs with jemalloc as its malloc (LD_PRELOAD) when Debian's libjemalloc2 is installed
# (scripts/setup.sh installs it). glibc's malloc keeps freed memory of the many short, multi-threaded
# allocations of image decoding and encoding in its arenas, so a worker's RSS keeps growing although nothing
# is held: sharp's documentation recommends jemalloc for this reason
# (https://sharp.pixelplumbing.com/install#linux-memory-allocator), and Node's documents the effect under
# "A note on process memoryUsage" (https://nodejs.org/api/process.html). The worker logs the allocator it
# runs with (`malloc` in its "workers ready" line).
#
# Environment:
#   DATAPREP_MALLOC   jemalloc (default) or glibc: glibc keeps the system malloc.
#   DATAPREP_NODE     the node binary (default: node on PATH).
#   LD_PRELOAD        when already set, kept as it is and nothing is added.
# The working directory is kept (tsx is resolved from it).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=scripts/jemalloc.sh
. "$HERE/jemalloc.sh"
ENTRY="${1:-$HERE/../src/workers/main.ts}"
case "${DATAPREP_MALLOC:-jemalloc}" in
  jemalloc)
    if [ -z "${LD_PRELOAD:-}" ] && lib="$(jemalloc_path)"; then
      export LD_PRELOAD="$lib"
    fi
    ;;
  glibc) ;;
  *)
    echo "worker cannot start: DATAPREP_MALLOC=${DATAPREP_MALLOC} is not one of jemalloc, glibc" >&2
    exit 2
    ;;
esac
exec "${DATAPREP_NODE:-node}" --import tsx "$ENTRY"
