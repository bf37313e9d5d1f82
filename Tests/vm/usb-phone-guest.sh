#!/bin/bash
# Runs inside a QEMU guest (virtme-ng, the Debian kernel, the host's files read-only): makes the
# simulated phone a real USB ADB device with configfs + FunctionFS on dummy_hcd, then acquires
# it with Exhibit as a technician would, and leaves the store in WORK for the host to judge:
#   1. exhibitd finds the phone through udev, a case is opened and the phone's slot acquired as
#      exhibit P1 (logical, and physical: the daemon is configured to image userdata); the phone
#      waits 5 s before "Allow", and every alert the daemon raises is kept (WORK/alerts-seen);
#      the cable is pulled (the gadget unbound from its UDC) while the partition streams, and
#      plugged back: the daemon must resume the interrupted job by itself and seal it;
#   2. `exhibit acquire adb:usb:SERIAL --physical` acquires it again as P2 (rooted: the
#      userdata partition is imaged); the phone now knows the appliance's key.
#   usb-phone-guest.sh BIN_DIR WORK
# Prints "guest: …" progress lines and ends with "guest: done"; any failure exits non-zero.
set -euo pipefail
bin=$1 work=$2
serial=EXHIBITUSB0001
say() { echo "guest: $*"; }

modprobe dummy_hcd
modprobe libcomposite
modprobe usb_f_fs
mountpoint -q /sys/kernel/config || mount -t configfs none /sys/kernel/config

# udevd gives the daemon real udev events (it falls back to kernel uevents without it).
if [ -x /lib/systemd/systemd-udevd ]; then
    /lib/systemd/systemd-udevd --daemon
    say "udevd started"
fi

gadget=/sys/kernel/config/usb_gadget/exhibit-phone
mkdir -p $gadget
echo 0x18d1 > $gadget/idVendor     # Google Inc.
echo 0x4ee7 > $gadget/idProduct    # a phone in "file transfer + ADB" mode
mkdir -p $gadget/strings/0x409
echo "$serial" > $gadget/strings/0x409/serialnumber
echo "Exhibit Test Devices" > $gadget/strings/0x409/manufacturer
echo "SimPhone" > $gadget/strings/0x409/product
mkdir -p $gadget/configs/c.1/strings/0x409
echo "adb" > $gadget/configs/c.1/strings/0x409/configuration
mkdir -p $gadget/functions/ffs.adb
ln -s $gadget/functions/ffs.adb $gadget/configs/c.1/
mkdir -p /dev/usb-ffs/adb
mount -t functionfs adb /dev/usb-ffs/adb

mkdir -p "$work/phone"
# Every connection begins as after a cable pulled mid-transfer: an earlier session's WRTE header
# and only part of its payload, which the host must set aside before the phone's answer.
"$bin/simulated-adbd" --root "$work/phone" --tree --userdata-mib 96 --rooted --auth allow --allow-after 5 --serial "$serial" \
    --cut-payload-before-connect --functionfs /dev/usb-ffs/adb > "$work/simulated-adbd.out" 2>&1 &
for _ in $(seq 100); do grep -q '^functionfs' "$work/simulated-adbd.out" 2>/dev/null && break; sleep 0.2; done
grep -q '^functionfs' "$work/simulated-adbd.out" || { cat "$work/simulated-adbd.out"; exit 1; }
# Phone paths of 496 to 511 bytes: some sync request (8 bytes of header and the path) is then
# exactly 512 bytes, one full high-speed packet, which the host must end with a zero-length
# packet or the phone keeps waiting for the rest of the transfer.
long=$work/phone/sdcard/Long/$(printf 'a%.0s' $(seq 200))/$(printf 'b%.0s' $(seq 200))
mkdir -p "$long"
for length in $(seq 496 511); do
    name=$(printf 'z%.0s' $(seq $((length - ${#long} + ${#work} + 6 - 1))))
    echo "path of $length bytes" > "$long/$name"
done
ls /sys/class/udc > $gadget/UDC
say "gadget bound to $(cat $gadget/UDC)"
for _ in $(seq 100); do
    grep -lx "$serial" /sys/bus/usb/devices/*/serial >/dev/null 2>&1 && break
    sleep 0.2
done
port=$(basename "$(dirname "$(grep -lx "$serial" /sys/bus/usb/devices/*/serial)")")
say "phone enumerated at port $port ($(cat /sys/bus/usb/devices/$port/idVendor):$(cat /sys/bus/usb/devices/$port/idProduct))"

store=$work/store
"$bin/exhibit" provision --store "$store" --appliance-id exhibit-vm > /dev/null
socket=/run/exhibitd.sock   # a unix socket cannot live on the 9p share
echo '{"phonePhysicalPartition": "/dev/block/by-name/userdata"}' > "$work/exhibitd.json"
"$bin/exhibitd" --store "$store" --socket "$socket" --config "$work/exhibitd.json" --verbose > "$work/exhibitd.log" 2>&1 &
daemon=$!
for _ in $(seq 150); do "$bin/exhibit" status --socket "$socket" > /dev/null 2>&1 && break; sleep 0.2; done
# Every alert the daemon raises, from its own messages: sampling with `exhibit status` missed the
# few seconds of "tap Allow" once, each command taking seconds under emulation.
"$bin/exhibit" status --watch --json --socket "$socket" > "$work/watch.jsonl" 2> "$work/watch.err" &
watch=$!
"$bin/exhibit" case open --case CASE-USB --examiner "VM Examiner" --socket "$socket" > /dev/null
slot=""
for _ in $(seq 150); do
    slot=$("$bin/exhibit" status --socket "$socket" --json | jq -r '.slots[]? | select(.kind == "phone" and .state == "ready") | .slot' | head -1)
    [ -n "$slot" ] && break
    sleep 0.2
done
[ -n "$slot" ] || { "$bin/exhibit" status --socket "$socket"; cat "$work/exhibitd.log"; exit 1; }
say "daemon shows the phone as ready in slot $slot"
"$bin/exhibit" acquire --slot "$slot" --exhibit P1 --socket "$socket" > /dev/null
snapshot() { "$bin/exhibit" status --socket "$socket" --json > "$work/status.json"; }
phone_slot() { jq -r "[.slots[]? | select(.kind == \"phone\")][0] | .$1" "$work/status.json"; }
pulled=""
deadline=$((SECONDS + 240))
while [ $SECONDS -lt $deadline ]; do
    snapshot
    if [ "$(phone_slot state)" = acquiring ] && [ "$(phone_slot bytesDone)" -gt $((4 << 20)) ]; then
        echo "" > $gadget/UDC
        pulled=$(phone_slot bytesDone)
        break
    fi
    case $(phone_slot state) in sealed|failed|interrupted) break ;; esac
    sleep 0.3
done
[ -n "$pulled" ] || { say "the job ended $(phone_slot state) before the cable could be pulled"; cat "$work/exhibitd.log"; exit 1; }
say "cable pulled at $pulled bytes"
# The job ends interrupted; its slot stays (interrupted) or goes (the phone's removal seen after
# the job ended): either way the job-interrupted alert stands until the job is resumed.
interrupted() { jq -r '.alerts[]? | select(.kind == "job-interrupted") | .detail' "$work/status.json"; }
deadline=$((SECONDS + 90))
while [ $SECONDS -lt $deadline ]; do
    snapshot
    [ -n "$(interrupted)" ] && break
    sleep 0.3
done
[ -n "$(interrupted)" ] || { say "after the pull the slot is $(phone_slot state)"; cat "$work/exhibitd.log"; exit 1; }
say "job interrupted: $(interrupted)"
ls /sys/class/udc > $gadget/UDC
state=""
deadline=$((SECONDS + 300))
while [ $SECONDS -lt $deadline ]; do
    snapshot
    state=$(phone_slot state)
    case $state in sealed|failed) break ;; esac
    sleep 0.3
done
kill -TERM $daemon; wait $daemon || true
# The watcher ends by itself once it has written the daemon's last message (up to 20 s allowed
# under emulation); killed at once, its last lines could be lost.
for _ in $(seq 100); do kill -0 $watch 2>/dev/null || break; sleep 0.2; done
kill $watch 2>/dev/null || true
wait $watch || true
jq -rR 'fromjson? | .alerts[]? | "\(.kind) \(.slot) \(.detail)"' "$work/watch.jsonl" > "$work/alerts-seen"
[ "$state" = sealed ] || { say "the resumed phone slot ended $state"; cat "$work/exhibitd.log"; exit 1; }
say "daemon sealed the phone's bundle"

"$bin/exhibit" acquire "adb:usb:$serial" --physical --store "$store" --case CASE-USB --exhibit P2 \
    --examiner "VM Examiner" --json > "$work/acquire.json" 2> "$work/acquire.err" || {
    cat "$work/acquire.err"; exit 1; }
say "acquired over USB with the CLI"
say done
