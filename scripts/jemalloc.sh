# Sourced by scripts/worker.sh and scripts/setup.sh (and test/stack.test.ts): where Debian's libjemalloc2 puts
# jemalloc, in one place.
# jemalloc_path: prints the path of libjemalloc.so.2 and returns 0 when it is installed; prints nothing and
# returns 1 otherwise.
jemalloc_path() {
  local lib
  for lib in "/usr/lib/$(uname -m)-linux-gnu/libjemalloc.so.2" /usr/lib/libjemalloc.so.2 /usr/lib64/libjemalloc.so.2; do
    if [ -f "$lib" ]; then
      echo "$lib"
      return 0
    fi
  done
  return 1
}
