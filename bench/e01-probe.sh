#!/usr/bin/env bash
# Exhibit's E01 writer against ewfacquire on the same half-random, half-zero source, in one run.
#
#   bench/e01-probe.sh [SIZE_GIB]     (default 4; needs about 3 × SIZE of free RAM for /dev/shm)
#
# e01-probe drives the writer as an acquisition job does (read → MD5, SHA-1, SHA-256 and the E01
# writer on their own threads, then complete); `ewfacquire -d sha256` computes MD5 and SHA-256 on
# its one thread. Source and outputs are in the same tmpfs. Prints the best and the median of
# REPEAT runs (default 3), MB/s, the output size, peak RSS (/usr/bin/time) and the ratio to
# `ewfacquire -c fast`; then reading the E01 back (e01-probe read, ewfverify).
# Targets (issue 17): E01 fast ≥ 4 × ewfacquire -c fast, output no larger, peak RSS ≤ 64 MiB.
set -euo pipefail
size_gib=${1:-4}
work=${BENCH_DIR:-/dev/shm/exhibit-e01-bench}
repeat=${REPEAT:-3}
bin=$(swift build -c release --show-bin-path)
probe="$bin/e01-probe"
[ -x "$probe" ] || { echo "build first: swift build -c release --product e01-probe" >&2; exit 1; }
for tool in ewfacquire ewfverify openssl python3 /usr/bin/time; do
  command -v "$tool" >/dev/null || { echo "missing $tool: run scripts/install-deps" >&2; exit 1; }
done
source "$(dirname "$0")/timing.sh"
rm -rf "$work"; mkdir -p "$work/out"
trap 'restore_page_reporting; rm -rf "$work"' EXIT
hold_page_reporting
src="$work/source.img"
echo "making a ${size_gib} GiB source in $work: random and zero mebibytes in turn ..."
openssl enc -aes-128-ctr -pass pass:exhibit-e01 -nosalt -pbkdf2 -in /dev/zero 2>/dev/null | python3 -c '
import sys
mebibytes, mib = int(sys.argv[1]) * 1024, 1 << 20
with open(sys.argv[2], "wb") as out:
    for index in range(mebibytes):
        out.write(sys.stdin.buffer.read(mib) if index % 2 == 0 else bytes(mib))
' "$size_gib" "$src" || true   # openssl ends on SIGPIPE when python has enough
bytes=$(stat -c %s "$src")
[ "$bytes" = $((size_gib << 30)) ] || { echo "the source is $bytes bytes, not $((size_gib << 30))" >&2; exit 1; }
cat "$src" >/dev/null

before_each() { rm -rf "$work/out"/*; }
declare -A out
# run NAME GLOB COMMAND...: timed, then the size of the files the last run left.
run() {
  local name=$1 glob=$2; shift 2
  timed "$name" /dev/null "$@" || true
  out[$name]=$(cat "$work"/out/$glob 2>/dev/null | wc -c)
}
run exhibit-e01-fast 'P.E*' "$probe" write "$src" --dir "$work/out" --name P --compression fast
run exhibit-e01-best 'P.E*' "$probe" write "$src" --dir "$work/out" --name P --compression best
run ewfacquire-fast 'A.E*' ewfacquire -u -q -c fast -d sha256 -S 7EiB -t "$work/out/A" "$src"
run ewfacquire-best 'A.E*' ewfacquire -u -q -c best -d sha256 -S 7EiB -t "$work/out/A" "$src"

printf '\nwriting an E01 of %s bytes (best and median of %s runs)\n' "$bytes" "$repeat"
printf '%-20s %8s %8s %8s %14s %9s %14s\n' tool best median MB/s "output bytes" "RSS MiB" "x ewfacq fast"
for name in exhibit-e01-fast exhibit-e01-best ewfacquire-fast ewfacquire-best; do
  awk -v n="$name" -v s="${secs[$name]}" -v m="${median[$name]}" -v b="$bytes" -v o="${out[$name]}" -v r="${rss[$name]}" \
    -v f="${secs[ewfacquire-fast]}" \
    'BEGIN { printf "%-20s %8.2f %8.2f %8.0f %14.0f %9.1f %14.2f\n", n, s, m, b/s/1e6, o, r/1024, f/s }'
done

# Reading back the E01 the fast run writes.
before_each
"$probe" write "$src" --dir "$work/out" --name P --compression fast >/dev/null
before_each() { :; }
timed e01-probe-read /dev/null "$probe" read "$work/out/P.E01" || true
timed ewfverify /dev/null ewfverify -q "$work/out/P.E01" || true
printf '\nreading it back\n'
for name in e01-probe-read ewfverify; do
  awk -v n="$name" -v s="${secs[$name]}" -v r="${rss[$name]}" -v b="$bytes" \
    'BEGIN { printf "%-20s %8.2f s %8.0f MB/s %9.1f MiB RSS\n", n, s, b/s/1e6, r/1024 }'
done

echo
awk -v f="${secs[ewfacquire-fast]}" -v e="${secs[exhibit-e01-fast]}" -v of="${out[ewfacquire-fast]}" \
  -v oe="${out[exhibit-e01-fast]}" -v r="${rss[exhibit-e01-fast]}" 'BEGIN {
    printf "targets: E01 fast %.2f x ewfacquire -c fast (>= 4: %s); output %.0f vs %.0f bytes (no larger: %s); peak RSS %.1f MiB (<= 64: %s)\n",
      f/e, (f/e >= 4 ? "yes" : "NO"), oe, of, (oe <= of ? "yes" : "NO"), r/1024, (r/1024 <= 64 ? "yes" : "NO") }'
