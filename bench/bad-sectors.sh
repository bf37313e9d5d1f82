#!/usr/bin/env bash
# Skip first, scrape later: how fast Exhibit reads the healthy areas of a failing disk.
#
#   bench/bad-sectors.sh [SIZE_MIB] [PERCENT]     (default 1024 MiB, 0.1 %; needs root, loop, FUSE)
#
# One random source, served twice through the FUSE fault fixture (Tests/Fixtures/faultfile.c) and
# attached as read-only loop devices: once healthy, once with PERCENT of its 512-byte sectors
# unreadable (EIO), scattered at random in runs of 1-8 sectors. Exhibit acquires each (--no-verify,
# into tmpfs). From each bundle's acquisition.log: the first pass's time and the bytes it skipped,
# so the healthy bytes per second of the first pass can be compared with the healthy source's, and
# the second pass's time. Also checks the image against the source with the bad sectors zeroed.
set -euo pipefail
size_mib=${1:-1024}
percent=${2:-0.1}
root=$(cd "$(dirname "$0")/.." && pwd)
work=${BENCH_DIR:-/dev/shm/exhibit-bad-bench}
bin=$(swift build -c release --show-bin-path)
exhibit="$bin/exhibit"
[ -x "$exhibit" ] || { echo "build first: swift build -c release" >&2; exit 1; }
[ "$(id -u)" = 0 ] || { echo "needs root (loop devices, FUSE)" >&2; exit 1; }

rm -rf "$work"; mkdir -p "$work"
cleanup() {
  [ -f "$work/loops" ] && while read -r l; do losetup -d "$l" 2>/dev/null || true; done < "$work/loops"
  for m in "$work"/mnt-*; do umount -l "$m" 2>/dev/null || true; done
  [ -f "$work/pids" ] && xargs -r kill < "$work/pids" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
cc -O2 "$root/Tests/Fixtures/faultfile.c" $(pkg-config --cflags --libs fuse3) -o "$work/faultfile"
src="$work/source.img"
openssl enc -aes-128-ctr -pass pass:exhibit-bad -nosalt -pbkdf2 -in /dev/zero 2>/dev/null \
  | head -c $((size_mib << 20)) > "$src" || true
sectors=$(( (size_mib << 20) / 512 ))

# Bad runs of 1-8 sectors at random places until PERCENT of the sectors are bad.
python3 - "$sectors" "$percent" > "$work/bad.txt" <<'EOF'
import random, sys
sectors, percent = int(sys.argv[1]), float(sys.argv[2])
random.seed(7)
target, bad, runs = int(sectors * percent / 100), set(), []
while len(bad) < target:
    start, length = random.randrange(sectors - 8), random.randint(1, 8)
    if any(s in bad for s in range(start - 1, start + length + 1)):
        continue
    bad.update(range(start, start + length))
    runs.append((start, length))
for start, length in sorted(runs):
    print(start * 512, length * 512)
EOF
: > "$work/none.txt"
echo "source: ${size_mib} MiB; $(wc -l < "$work/bad.txt") bad runs, $(awk '{s += $2} END {print s / 512}' "$work/bad.txt") bad sectors"

attach() {  # attach NAME BADFILE -> loop device
  local mnt="$work/mnt-$1"
  mkdir -p "$mnt"
  # Its own output away from the caller's $(...), which would otherwise wait for it to exit.
  "$work/faultfile" "$src" "$mnt" --bad-file "$2" >/dev/null 2>&1 &
  echo $! >> "$work/pids"
  for _ in $(seq 50); do [ -e "$mnt/image" ] && break; sleep 0.1; done
  local loop
  loop=$(losetup --find --show --read-only "$mnt/image")
  blockdev --setro "$loop"
  echo "$loop" >> "$work/loops"
  echo "$loop"
}
healthy=$(attach healthy "$work/none.txt")
faulty=$(attach faulty "$work/bad.txt")
"$exhibit" provision --store "$work/store" >/dev/null

acquire() {  # acquire LOOP EXHIBIT -> bundle path; prints the log's pass lines
  local out
  out=$("$exhibit" acquire "$1" --store "$work/store" --case BENCH --exhibit "$2" --examiner bench --no-verify --json 2>/dev/null)
  python3 -c 'import json,sys; print(json.load(sys.stdin)["bundlePath"])' <<< "$out"
}
seconds() { grep -o 'first pass read [0-9]* bytes in [0-9.]* s' "$1/data/acquisition.log" | awk '{print $7}'; }
skipped() { grep -o '([0-9]* bytes) skipped' "$1/data/acquisition.log" | tr -d '(' | awk '{print $1}' || true; }

h=$(acquire "$healthy" HEALTHY)
f=$(acquire "$faulty" FAULTY)
bytes=$((size_mib << 20))
h_s=$(seconds "$h"); f_s=$(seconds "$f"); f_skip=$(skipped "$f"); f_skip=${f_skip:-0}
second=$(python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print(round(r["durationSeconds"], 2))' "$f/data/acquisition.json")
unreadable=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["unreadableSectors"])' "$f/data/acquisition.json")

# The expected image: the source with the bad sectors zeroed (dd, not Exhibit).
cp "$src" "$work/expected.img"
while read -r offset length; do
  head -c "$length" /dev/zero | dd of="$work/expected.img" bs=64K seek="$offset" oflag=seek_bytes conv=notrunc status=none
done < "$work/bad.txt"
expected=$(sha256sum < "$work/expected.img" | cut -d' ' -f1)
got=$(cat "$f"/data/image/* | sha256sum | cut -d' ' -f1)

awk -v b="$bytes" -v hs="$h_s" -v fs="$f_s" -v sk="$f_skip" -v total="$second" -v u="$unreadable" 'BEGIN {
  hr = b / hs / 1e6; fr = (b - sk) / fs / 1e6
  printf "healthy source, first pass:          %7.2f s  %7.1f MB/s\n", hs, hr
  printf "failing source, first pass:          %7.2f s  %7.1f MB/s of healthy bytes (%d bytes skipped)\n", fs, fr, sk
  printf "healthy-area speed ratio:            %7.2f\n", fr / hr
  printf "failing source, whole job:           %7.2f s  (%d sectors unreadable)\n", total, u
}'
if [ "$got" = "$expected" ]; then echo "image = source with exactly the bad sectors zeroed: yes"; else echo "image MISMATCH: $got != $expected"; exit 1; fi
