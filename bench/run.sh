#!/usr/bin/env bash
# Exhibit against its peers on the same source, in one run.
#
#   bench/run.sh [SIZE_GIB]       (default 4; needs root for the loop device and the tmpfs mount,
#                                  and 2×SIZE of free RAM)
#
# Sources: a page-cached file in tmpfs, then a read-only loop device over it. Destination: the same
# tmpfs for every tool. Prints the best and the median seconds of REPEAT runs, MB/s, the ratio to
# `openssl dgst -sha256` (the hashing limit) and to dc3dd, and peak RSS. Then Exhibit's peak RSS on
# a 1 GiB and a 16 GiB sparse source written to disk, to show memory stays flat.
set -euo pipefail
size_gib=${1:-4}
work=${BENCH_DIR:-/dev/shm/exhibit-bench}
disk_work=${BENCH_DISK_DIR:-$PWD/.build/bench-disk}
# BENCH_EXHIBIT=PATH times another build of exhibit, e.g. the appliance's (static Swift runtime):
# .build-image/release/exhibit after `make image`.
bin=$(swift build -c release --show-bin-path)
exhibit=${BENCH_EXHIBIT:-$bin/exhibit}
[ -x "$exhibit" ] || { echo "build first: swift build -c release" >&2; exit 1; }
echo "exhibit: $exhibit"
ldd "$exhibit" | grep -q libswiftCore && echo "  (Swift runtime linked dynamically: its libraries count in the RSS)" \
  || echo "  (Swift runtime linked statically, as on the appliance)"
for tool in dc3dd dcfldd ewfacquire openssl /usr/bin/time; do
  command -v "$tool" >/dev/null || { echo "missing $tool: run scripts/install-deps" >&2; exit 1; }
done

# The tmpfs is mounted with huge=always when we can mount: 512 times fewer page faults for every
# tool alike. Free page reporting to a VM's host is held off while the benchmark runs (timing.sh).
loop=""
mounted=""
rm -rf "$work"; mkdir -p "$work"
if [ -z "${BENCH_DIR:-}" ] && [ "$(id -u)" = 0 ] \
   && mount -t tmpfs -o "size=$(( size_gib * 2 + 2 ))G,huge=always" exhibit-bench "$work" 2>/dev/null; then
  mounted=$work
fi
mkdir -p "$work/out"
source "$(dirname "$0")/timing.sh"
# A loop device can be busy for a moment (udev probes it after a change), so that losetup -d and
# then umount fail: one run in about ten left its loop device and mount behind. Both are retried.
cleanup() {
  restore_page_reporting
  if [ -n "$loop" ]; then
    for _ in 1 2 3 4 5; do losetup -d "$loop" 2>/dev/null && break; sleep 1; done
  fi
  rm -rf "$work"/* "$disk_work"
  if [ -n "$mounted" ]; then
    for _ in 1 2 3 4 5; do umount "$mounted" 2>/dev/null && break; sleep 1; done
  fi
  rmdir "$work" 2>/dev/null || true
}
trap cleanup EXIT
echo "destination: $(findmnt -no FSTYPE,OPTIONS -T "$work")"
hold_page_reporting
src="$work/source.img"
echo "making a ${size_gib} GiB random source in $work (page-cached) ..."
openssl enc -aes-128-ctr -pass pass:exhibit-bench -nosalt -pbkdf2 -in /dev/zero 2>/dev/null \
  | head -c $((size_gib << 30)) > "$src" || true   # openssl ends on SIGPIPE when head has enough
bytes=$(stat -c %s "$src")
# Pages the host took back before the hold still cost a host fault when first touched: one run's
# worth is touched and freed here, so that the first tool timed does not pay for all of them.
if [ -n "$page_reporting_saved" ]; then head -c "$bytes" /dev/zero > "$work/warm-up"; rm -f "$work/warm-up"; fi
"$exhibit" provision --store "$work/store" >/dev/null

# Every tool runs REPEAT times (default 5) and the table shows the best and the median.
repeat=${REPEAT:-5}

# run NAME COMMAND...: the best seconds, the median and the peak RSS of the best run.
before_each() { rm -rf "$work/out"/* "$work/store/bundles"/* "$work/store/work"/*; }
run() {
  local name=$1; shift
  timed "$name" /dev/null "$@" || true
}

report() {
  local label=$1 base=$2; shift 2
  printf '\n%s (%s bytes)\n' "$label" "$bytes"
  printf '%-28s %8s %8s %9s %10s %9s %9s\n' tool best median MB/s "x openssl" "x dc3dd" "RSS MiB"
  for name in "$@"; do
    local s=${secs[$name]}
    awk -v n="$name" -v s="$s" -v m="${median[$name]}" -v b="$bytes" -v o="${secs[$base]}" -v d="${secs[$label-dc3dd]:-0}" -v r="${rss[$name]}" \
      'BEGIN { printf "%-28s %8.2f %8.2f %9.0f %10.2f %9s %9.1f\n", n, s, m, b/s/1e6, o/s, (d>0 ? sprintf("%.2f", d/s) : "-"), r/1024 }'
  done
  echo "(MB/s and the ratios are of the best runs)"
}

bench_source() {
  local label=$1 input=$2
  run "$label-openssl-sha256" openssl dgst -sha256 "$input"
  run "$label-openssl-md5" openssl dgst -md5 "$input"
  run "$label-exhibit" "$exhibit" acquire "$input" --store "$work/store" --case B --exhibit E --examiner bench --no-verify
  run "$label-exhibit+verify" "$exhibit" acquire "$input" --store "$work/store" --case B --exhibit E --examiner bench
  run "$label-exhibit+md5+sha1" "$exhibit" acquire "$input" --store "$work/store" --case B --exhibit E --examiner bench --no-verify --digest md5,sha1
  run "$label-dc3dd" dc3dd if="$input" of="$work/out/dc3dd.raw" hash=sha256 nwspc=on
  run "$label-dcfldd" dcfldd if="$input" of="$work/out/dcfldd.raw" hash=sha256 hashlog="$work/out/dcfldd.hash"
  run "$label-ewfacquire" ewfacquire -u -c none -d sha256 -t "$work/out/ewf" -S 7EiB "$input"
  report "$label" "$label-openssl-sha256" "$label-openssl-sha256" "$label-openssl-md5" "$label-exhibit" \
    "$label-exhibit+verify" "$label-exhibit+md5+sha1" "$label-dc3dd" "$label-dcfldd" "$label-ewfacquire"
}

cat "$src" >/dev/null   # page-cache it
# BENCH_RAW=0 skips the raw comparison (to run only the E01 one).
if [ "${BENCH_RAW:-1}" = 1 ]; then
  bench_source file "$src"
  if [ "$(id -u)" = 0 ] && loop=$(losetup --find --show --read-only "$src" 2>/dev/null); then
    blockdev --setro "$loop"
    cat "$loop" >/dev/null   # the loop device has a page cache of its own: fill it before timing
    bench_source loop "$loop"
  else
    echo; echo "loop device: skipped (needs root and /dev/loop-control)"
  fi
fi

# E01: Exhibit's acquisition into an E01 (its MD5, SHA-1 and SHA-256, chunks compressed on every
# core; each chunk section decoded by Exhibit's parser against the window GMACs of the stream once
# libewf closes it, during the pass, the last once the E01 is complete, its files hashed for the
# manifest from the same reads; and without the read-back, as ewfacquire has none) against
# ewfacquire (-d sha256: MD5 and SHA-256 on its one thread) on a source of half random, half zero
# mebibytes, and on a real file-system image.
declare -A out_bytes
e01_run() {
  local name=$1 glob=$2; shift 2
  run "$name" "$@"
  out_bytes[$name]=$(cat $glob 2>/dev/null | wc -c)
}
bench_e01() {
  local label=$1 input=$2
  cat "$input" >/dev/null
  run "$label-openssl-sha256" openssl dgst -sha256 "$input"
  e01_run "$label-exhibit-e01-fast" "$work/store/bundles/*/data/image/*.E*" \
    "$exhibit" acquire "$input" --store "$work/store" --case B --exhibit E --examiner bench --format e01 --compression fast
  e01_run "$label-exhibit-e01-fast-noverify" "$work/store/bundles/*/data/image/*.E*" \
    "$exhibit" acquire "$input" --store "$work/store" --case B --exhibit E --examiner bench --format e01 --compression fast --no-verify
  [ "${3:-}" = fast-only ] || e01_run "$label-exhibit-e01-best" "$work/store/bundles/*/data/image/*.E*" \
    "$exhibit" acquire "$input" --store "$work/store" --case B --exhibit E --examiner bench --format e01 --compression best
  e01_run "$label-ewfacquire-fast" "$work/out/A.E*" ewfacquire -u -q -c fast -d sha256 -S 7EiB -t "$work/out/A" "$input"
  [ "${3:-}" = fast-only ] || e01_run "$label-ewfacquire-best" "$work/out/A.E*" ewfacquire -u -q -c best -d sha256 -S 7EiB -t "$work/out/A" "$input"
  local ebytes; ebytes=$(blockdev --getsize64 "$input" 2>/dev/null || stat -c %s "$input")
  printf '\n%s to E01 (%s bytes)\n' "$label" "$ebytes"
  printf '%-42s %8s %8s %9s %14s %9s %15s\n' tool best median MB/s "output bytes" "RSS MiB" "x ewfacq fast"
  for name in "$label-exhibit-e01-fast" "$label-exhibit-e01-fast-noverify" "$label-exhibit-e01-best" "$label-ewfacquire-fast" \
    "$label-ewfacquire-best"; do
    [ -n "${secs[$name]:-}" ] || continue
    awk -v n="$name" -v s="${secs[$name]}" -v m="${median[$name]}" -v b="$ebytes" -v o="${out_bytes[$name]}" -v r="${rss[$name]}" \
      -v f="${secs[$label-ewfacquire-fast]}" \
      'BEGIN { printf "%-42s %8.2f %8.2f %9.0f %14.0f %9.1f %15.2f\n", n, s, m, b/s/1e6, o, r/1024, f/s }'
  done
}
# The E01 with the store on disk, where the read-back's reads are real: each chunk section is read
# back once libewf closes it, during the pass, so what is left after completion is the last
# section. Beside it, what reading the whole E01 back after the pass costs (`e01-probe read`: the
# job's decoder), the page cache dropped before each. BENCH_E01_DISK=0 skips it.
bench_e01_on_disk() {
  local input=$1 probe; probe=$(dirname "$exhibit")/e01-probe
  [ "${BENCH_E01_DISK:-1}" = 1 ] && [ -w /proc/sys/vm/drop_caches ] && [ -x "$probe" ] || {
    echo; echo "E01 on disk: skipped (needs root and e01-probe beside exhibit)"; return 0; }
  mkdir -p "$disk_work"
  "$exhibit" provision --store "$disk_work/e01-store" >/dev/null
  printf '
half-zero to E01 with the store on disk (%s): page cache dropped before each
' "$(findmnt -no SOURCE -T "$disk_work")"
  printf '%-6s %10s %9s %26s %28s
' run "job s" "RSS MiB" "read back after the pass s" "whole E01 read back again s"
  for i in 1 2; do
    rm -rf "$disk_work/e01-store/bundles"/* "$disk_work/e01-store/work"/*
    sync; echo 3 > /proc/sys/vm/drop_caches
    /usr/bin/time -o "$disk_work/time" -f "%e %M" "$exhibit" acquire "$input" --store "$disk_work/e01-store" --case B \
      --exhibit "D$i" --examiner bench --format e01 >/dev/null
    local t rest whole
    t=$(tail -1 "$disk_work/time")
    rest=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["verification"]["durationSeconds"])' \
      "$disk_work"/e01-store/bundles/*/data/acquisition.json)
    sync; echo 3 > /proc/sys/vm/drop_caches
    /usr/bin/time -o "$disk_work/time" -f "%e" "$probe" read "$disk_work"/e01-store/bundles/*/data/image/D$i.E* >/dev/null
    whole=$(tail -1 "$disk_work/time")
    awk -v i="$i" -v s="${t% *}" -v r="${t#* }" -v a="$rest" -v w="$whole" \
      'BEGIN { printf "%-6s %10.2f %9.1f %26.3f %28.2f\n", i, s, r/1024, a, w }'
  done
  rm -rf "$disk_work/e01-store"
}
if [ "${BENCH_E01:-1}" = 1 ]; then
  [ -n "$loop" ] && { losetup -d "$loop" 2>/dev/null || true; loop=""; }
  before_each   # the last raw run's image and bundle go: the E01 sources need the room
  half="$work/half.img"
  # Half random, half zero: the first half of the random source, then zeros, mebibyte by mebibyte in turn.
  python3 - "$src" "$half" <<'PY'
import sys
mib = 1 << 20
with open(sys.argv[1], "rb") as source, open(sys.argv[2], "wb") as out:
    index = 0
    while chunk := source.read(mib):
        out.write(chunk if index % 2 == 0 else bytes(len(chunk)))
        index += 1
PY
  rm -f "$src"
  bench_e01 half-zero "$half"
  bench_e01_on_disk "$half"
  rm -f "$half"
  # A real file system: ext4 holding /usr/share (documentation, locales, fonts: text that compresses).
  fs="$work/fs.img"
  mkfs.ext4 -q -F -d /usr/share "$fs" "$(( $(du -sm /usr/share | cut -f1) * 13 / 10 + 64 ))M"
  bench_e01 filesystem "$fs"
  # The same file system as the appliance meets a disk: a read-only block device (a loop device
  # over the image), fast compression only.
  if [ "$(id -u)" = 0 ] && loop=$(losetup --find --show --read-only "$fs" 2>/dev/null); then
    blockdev --setro "$loop"
    bench_e01 filesystem-loop "$loop" fast-only
    losetup -d "$loop" 2>/dev/null || true; loop=""
  fi
  rm -f "$fs"
fi

echo
echo "targets: exhibit ≥ 0.9 × openssl sha256 (raw, SHA-256, no verify); exhibit+verify ≥ 0.85 ×; exhibit+md5+sha1 ≥ 0.9 × openssl md5;"
echo "         E01 fast ≥ 4 × ewfacquire -c fast, output no larger; RSS ≤ 64 MiB"

# Memory by source size: the same job on 1, 16 and 32 GiB sparse sources, into a store on disk.
# Raw stays flat. The E01 (fast, read back during the pass, as by default) grows by what libewf
# 20140813 keeps for every chunk it has written, for the life of its handle (its chunk list):
# the growth from 16 to 32 GiB, where both jobs read back sections during the pass, is printed
# per GiB of source. Needs 32 GiB free under BENCH_DISK_DIR (the store reserves the source size).
if [ "${BENCH_FLATNESS:-1}" = 1 ]; then
  mkdir -p "$disk_work"
  "$exhibit" provision --store "$disk_work/store" >/dev/null
  printf '\npeak RSS by source size (sparse sources, store on disk)\n'
  printf '%-16s %6s %9s %9s\n' job GiB seconds "RSS MiB"
  declare -A flat_rss
  for job in "raw --no-verify" "e01 fast"; do
    if [ "$job" = "e01 fast" ]; then args=(--format e01 --compression fast); else args=(--no-verify); fi
    for gib in 1 16 32; do
      sparse="$disk_work/sparse-$gib.img"
      truncate -s "${gib}G" "$sparse"
      /usr/bin/time -o "$disk_work/time" -f "%e %M" "$exhibit" acquire "$sparse" --store "$disk_work/store" --case B \
        --exhibit "S$gib" --examiner bench "${args[@]}" >/dev/null 2>&1
      t=$(tail -1 "$disk_work/time")
      flat_rss[$job-$gib]=${t#* }
      awk -v j="$job" -v g="$gib" -v s="${t% *}" -v r="${t#* }" 'BEGIN { printf "%-16s %6d %9.2f %9.1f\n", j, g, s, r/1024 }'
      rm -rf "$disk_work/store/bundles"/* "$sparse"
    done
    awk -v j="$job" -v a="${flat_rss[$job-16]}" -v b="${flat_rss[$job-32]}" \
      'BEGIN { printf "%-16s from 16 to 32 GiB: %+.3f MiB per GiB of source (%+.1f bytes per 32 KiB chunk)\n", j, (b-a)/1024/16, (b-a)*1024/(16*32768) }'
  done
fi
