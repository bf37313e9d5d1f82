#!/usr/bin/env bash
# Physical streaming from a phone: Exhibit against Debian's adb on the same simulated phone.
#
#   bench/phone.sh [SIZE_MIB]     (default 1024)
#
# The simulated phone (simulated-adbd, rooted, over TCP on 127.0.0.1) serves a SIZE_MIB
# "userdata" partition from tmpfs. Peers, each REPEAT times (default 3), best and median seconds:
#   adb exec-out "su -c 'cat PART'" | sha256sum      (Debian's adb client and server)
#   exhibit acquire adb:tcp:… --physical --no-verify (the whole job: logical profile, a small
#                                                      /sdcard tree, the image, sealing)
# and the ratio exhibit / adb (issue 6 asks for ≥ 0.8), plus Exhibit's peak RSS.
set -euo pipefail
size_mib=${1:-1024}
repeat=${REPEAT:-3}
work=${BENCH_DIR:-/dev/shm/exhibit-phone-bench}
bin=$(swift build -c release --show-bin-path)
for tool in "$bin/exhibit" "$bin/simulated-adbd"; do
  [ -x "$tool" ] || { echo "build first: swift build -c release" >&2; exit 1; }
done
for tool in adb sha256sum /usr/bin/time; do
  command -v "$tool" >/dev/null || { echo "missing $tool: run scripts/install-deps" >&2; exit 1; }
done
rm -rf "$work"; mkdir -p "$work/home"
export HOME=$work/home ANDROID_ADB_SERVER_PORT=15038
sim=""
source "$(dirname "$0")/timing.sh"
trap 'restore_page_reporting; [ -n "$sim" ] && kill "$sim" 2>/dev/null; adb kill-server >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
hold_page_reporting

"$bin/simulated-adbd" --root "$work/phone" --tree --rooted > "$work/port" &
sim=$!
for _ in $(seq 50); do [ -s "$work/port" ] && break; sleep 0.1; done
part=/dev/block/by-name/userdata
openssl enc -aes-128-ctr -pass pass:exhibit-phone -nosalt -pbkdf2 -in /dev/zero 2>/dev/null \
  | head -c $((size_mib << 20)) > "$work/phone$part" || true
port=$(awk '{print $2}' "$work/port")
truth=$(sha256sum "$work/phone$part" | cut -d' ' -f1)
bytes=$(stat -c %s "$work/phone$part")
"$bin/exhibit" provision --store "$work/store" >/dev/null
# The adb server daemonizes; start it with no inherited descriptors so nothing waits for it.
adb start-server </dev/null >/dev/null 2>&1
adb connect "127.0.0.1:$port" >/dev/null
for _ in $(seq 50); do adb devices | grep -q "127.0.0.1:$port[[:space:]]*device" && break; sleep 0.1; done

before_each() { rm -rf "$work/store/bundles"/* "$work/store/work"/*; }
measure() {
  local name=$1; shift
  timed "$name" "$work/out" bash -c "$*" || exit 1
}

measure adb "adb -s 127.0.0.1:$port exec-out \"su -c 'cat $part'\" | sha256sum"
[ "$(cut -d' ' -f1 "$work/out")" = "$truth" ] || { echo "adb streamed other bytes" >&2; exit 1; }
measure exhibit "'$bin/exhibit' acquire adb:tcp:127.0.0.1:$port --store '$work/store' --case BENCH --exhibit P1 --examiner bench --physical --no-verify --json"
grep -q "\"mediaSHA256\" : \"$truth\"" "$work/out" || { echo "exhibit's image SHA-256 differs"; cat "$work/out"; exit 1; }

printf '%s MiB partition, %s runs each (best / median seconds, MB/s of the best)\n' "$size_mib" "$repeat"
for name in adb exhibit; do
  printf '  %-8s %6.2f / %6.2f s  %7.1f MB/s\n' "$name" "${secs[$name]}" "${median[$name]}" \
    "$(awk -v b="$bytes" -v s="${secs[$name]}" 'BEGIN { print b / s / 1e6 }')"
done
printf '  exhibit / adb throughput: %.2f (best), %.2f (median)\n' \
  "$(awk -v a="${secs[adb]}" -v e="${secs[exhibit]}" 'BEGIN { print a / e }')" \
  "$(awk -v a="${median[adb]}" -v e="${median[exhibit]}" 'BEGIN { print a / e }')"
printf '  exhibit peak RSS: %d MiB\n' $(( rss[exhibit] / 1024 ))
