#!/usr/bin/env bash
# Image/qemu-test.sh [WORK]: the appliance image end to end. Boots a copy of Image/out/exhibit.img
# under QEMU (software emulation, UEFI from Debian's ovmf) and drives it over QMP as a technician
# and a lab would, with nothing in the guest to help but a read-only status port:
#   1. first boot to a ready exhibitd and the panel on the display (QMP screendump, checked);
#   2. a case opened from the panel's keyboard (QMP send-key), automatic mode;
#   3. a read-only usb-storage disk hot-plugged (device_add) and acquired automatically; a
#      writable one hot-plugged, made read-only by the udev rule, acquired, its file unchanged;
#   4. the lab chooses E01 in the store's settings file (written into the store partition on the
#      host after a clean power-off); power cut (QMP quit) while a third disk is being acquired as
#      an E01; boot again: the job resumes and seals with the SHA-256 of the whole disk;
#   6. a QEMU usb-mtp device hot-plugged appears as a phone slot with its classification;
#   5. after a clean power-off, the bundles are taken out of the store partition on the host
#      (dd + debugfs rdump: no mount, no trust in the guest) and judged by bagit.py --validate,
#      openssl cms -verify against the agency root, sha256sum against Exhibit-Media-SHA256 (for
#      the E01, of ewfexport's stream, and ewfverify), case_validate, the custody chain and exhibit
#      verify; each names the image's build;
#   7. one byte of the root partition changed on the disk: dm-verity refuses it at the next boot;
#   8. the system partitions written again (update-system.sh): it boots, the store is intact.
# Prints "image-test: step N ok: ..." per step, the boot-to-ready times, and ends with
# "image-test: passed". WORK (default Image/out/test) keeps the logs and screendumps.
#
# The guest's side of the conversation is exhibit-status-port (Image/mkosi.extra): a unit that
# only runs when a virtio-serial port named org.exhibit.status exists, writing BOOT, STATE,
# STATUS and LOG lines to it.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
image=$here/out/exhibit.img
work=${1:-$here/out/test}
qmp_tool=$here/qmp.py
exhibit=${EXHIBIT:-$repo/.build-image/release/exhibit}
ovmf_code=/usr/share/OVMF/OVMF_CODE_4M.fd
ovmf_vars=/usr/share/OVMF/OVMF_VARS_4M.fd
started=$SECONDS
say() { echo "image-test: $*"; }
fail() { echo "image-test: FAILED: $*" >&2; exit 1; }
# A check that fails without stopping the steps after it (they do not depend on it); the
# test still fails at the end.
failed_checks=()
fail_later() { echo "image-test: FAILED: $*" >&2; failed_checks+=("$*"); }

[ -f "$image" ] || fail "no image at $image (make image)"
for tool in qemu-system-x86_64 python3 jq debugfs sfdisk openssl bagit.py case_validate; do
    command -v "$tool" >/dev/null || fail "$tool is missing (scripts/install-deps)"
done
[ -f "$ovmf_code" ] || fail "no UEFI firmware $ovmf_code (apt-get install ovmf)"
[ -x "$exhibit" ] || fail "no exhibit binary at $exhibit (make image builds it)"

# The build the bundles must name (read before the image is copied).
build_version=$(jq -r .imageVersion "$here/out/build.json")
build_hash=$(jq -r .rootHash "$here/out/build.json")
rm -rf "$work"
mkdir -p "$work"
cd "$work"
# A copy of the image on a larger disk, as a lab writes it to one: the store fills the rest.
cp --sparse=always "$image" disk.img
truncate -s 6G disk.img
cp "$ovmf_vars" vars.fd

# Evidence: reproducible pseudo-random disks (AES-CTR of zeros with a fixed key).
# (Zeros first, then the cipher: openssl never writes into a closed pipe, which pipefail would
# count as a failure.)
evidence() { head -c "$2" /dev/zero | openssl enc -aes-128-ctr -nosalt -pbkdf2 -pass "pass:$1" >"$3"; }
evidence ro 32M ev-ro.img
evidence rw 32M ev-rw.img
evidence big 384M ev-big.img
rw_before=$(sha256sum ev-rw.img | cut -d' ' -f1)
mkdir -p mtp/DCIM/Camera
echo "a photo" >mtp/DCIM/Camera/IMG_0001.jpg
echo "a note" >mtp/note.txt

qemu_pid=""
boot=0
# start_vm EXTRA-QEMU-ARGUMENTS...: starts the machine; its status port goes to status-N.log.
# virtio-vga, not the standard VGA: cage (wlroots) drives only a DRM device that can import
# PRIME buffers, which bochs-drm cannot ("PRIME import not supported").
start_vm() {
    boot=$((boot + 1))
    status=$work/status-$boot.log
    : >"$status"
    rm -f qmp.sock
    boot_started=$SECONDS
    qemu-system-x86_64 -nodefaults -machine q35 -accel tcg -m 2048 -smp 2 \
        -drive if=pflash,format=raw,readonly=on,file="$ovmf_code" -drive if=pflash,format=raw,file=vars.fd \
        -drive file=disk.img,if=virtio,format=raw \
        -device virtio-vga -display none -serial file:"$work/console-$boot.log" \
        -device virtio-serial -chardev file,id=status,path="$status" \
        -device virtserialport,chardev=status,name=org.exhibit.status \
        -qmp unix:"$work/qmp.sock",server=on,wait=off \
        -device qemu-xhci,id=xhci \
        -drive if=none,id=ev-ro,file=ev-ro.img,format=raw,readonly=on \
        -drive if=none,id=ev-rw,file=ev-rw.img,format=raw \
        -drive if=none,id=ev-big,file=ev-big.img,format=raw,readonly=on \
        "$@" >"$work/qemu-$boot.log" 2>&1 &
    qemu_pid=$!
}
stop_vm() {  # the power cut: QEMU stops at once, whatever the guest was doing
    python3 "$qmp_tool" qmp.sock quit >/dev/null 2>&1 || true
    wait "$qemu_pid" 2>/dev/null || true
    qemu_pid=""
}
# A script that stops early must not leave QEMU running (a CI run would wait for it): QMP quit,
# then SIGKILL (a QEMU started under the test runner once ignored SIGTERM).
cleanup() {
    [ -n "$qemu_pid" ] || return 0
    python3 "$qmp_tool" qmp.sock quit >/dev/null 2>&1 || true
    sleep 1
    kill -KILL "$qemu_pid" 2>/dev/null || true
}
trap cleanup EXIT
trap "exit 1" INT TERM
qmp() { python3 "$qmp_tool" qmp.sock "$@"; }
# The newest status snapshot from the guest, as JSON.
snapshot() { grep -a '^STATUS ' "$status" | tail -1 | cut -c8-; }
# wait_until SECONDS WHAT COMMAND...: polls COMMAND every second.
wait_until() {
    local limit=$1 what=$2
    shift 2
    local deadline=$((SECONDS + limit))
    until "$@"; do
        kill -0 "$qemu_pid" 2>/dev/null || fail "QEMU exited while waiting for $what"
        [ $SECONDS -lt $deadline ] || {
            grep -a '^LOG ' "$status" | tail -40 | cut -c1-300 >&2
            fail "waited ${limit} s for $what"
        }
        sleep 1
    done
}
ready() { grep -aq '^STATE active active active' "$status" && snapshot | jq -e '.daemon.applianceId' >/dev/null 2>&1; }
power_off() {  # clean: the guest shuts down, so the store's file system is consistent for debugfs
    qmp system_powerdown >/dev/null
    for _ in $(seq 120); do kill -0 "$qemu_pid" 2>/dev/null || break; sleep 1; done
    kill -0 "$qemu_pid" 2>/dev/null && stop_vm
    wait "$qemu_pid" 2>/dev/null || true
    qemu_pid=""
}
# The store partition's first sector and size, in 512-byte sectors.
store_partition() { sfdisk --json disk.img | jq -r '.partitiontable.partitions[] | select(.name == "exhibit-store") | "\(.start) \(.size)"'; }
slot_by_serial() { snapshot | jq -c --arg s "$1" '[.slots[]? | select((.serial // "") | contains($s))][0] // empty'; }
slot_state() { slot_by_serial "$1" | jq -r '.state // empty'; }
sealed() { [ "$(slot_state "$1")" = sealed ]; }

# --- 1. first boot -----------------------------------------------------------------------------
start_vm
wait_until 600 "a ready exhibitd and panel (first boot)" ready
first_ready=$((SECONDS - boot_started))
say "first boot to ready: ${first_ready} s (store partition made, device key made on the device)"
grep -a '^BOOT ' "$status" | head -1 | sed 's/^/image-test: guest /'
applianceid=$(snapshot | jq -r .daemon.applianceId)
# The first screendump waits until the panel's terminal runs and has drawn for a while: a
# screendump while cage was still setting its mode once left the emulated display without
# page flips for good (the guest's compositor then waits forever).
panel_started() { grep -aq 'cage\[[0-9]*\]: info: terminal.c' "$status"; }
wait_until 180 "the panel's terminal started" panel_started
sleep 20
screen_ok() { qmp check-screen "$work/screen-ready.ppm" >"$work/screen-ready.txt" 2>&1; }
# Live, not a frozen first frame: the panel's clock moves, so a screen a few seconds later differs.
panel_live() {
    qmp screendump "$work/screen-later.ppm" >/dev/null 2>&1 && ! cmp -s "$work/screen-ready.ppm" "$work/screen-later.ppm"
}
panel_shown() {
    local deadline=$((SECONDS + $1))
    until screen_ok || [ $SECONDS -ge $deadline ]; do sleep 2; done
    screen_ok && { sleep 3; panel_live; }
}
# Under emulation, cage 0.1.4 (wlroots 0.15) sometimes stops presenting frames after foot's
# first ones: the screen stays black but for the pointer until an input event arrives
# (reproduced here in about one boot in four with the host busy and screendumps taken while
# cage starts; a pointer move or a key brings the panel back, drawn and updating). It is logged,
# not failed: the step still fails if a pointer move does not bring the panel up.
if panel_shown 60; then
    say "step 1 ok: exhibitd ready, appliance $applianceid, panel drawn and updating ($(cat "$work/screen-ready.txt"))"
else
    stalled=$(head -1 "$work/screen-ready.txt")
    qmp input-send-event '{"events":[{"type":"rel","data":{"axis":"x","value":8}}]}' >/dev/null
    sleep 5
    if panel_shown 30; then
        say "step 1 ok: exhibitd ready, appliance $applianceid, panel drawn and updating ($(cat "$work/screen-ready.txt")), but only after a pointer move: the compositor had stopped presenting ($stalled)"
    else
        fail_later "step 1: exhibitd ready, but the panel is not on the display or not updating, even after a pointer move ($(head -1 "$work/screen-ready.txt"))"
    fi
fi

# --- 2. a case from the panel's keyboard ------------------------------------------------------
# c: new case; case number, Enter; examiner, Enter; y: acquire automatically.
qmp keys "c"
sleep 1
qmp keys $'CASE-VM-1\n'
sleep 1
qmp keys $'QEMU Examiner\n'
sleep 1
qmp keys "y"
case_open() { snapshot | jq -e '.session.caseId == "CASE-VM-1" and .session.auto == true' >/dev/null 2>&1; }
wait_until 30 "the case opened from the panel" case_open
qmp screendump "$work/screen-case.ppm" >/dev/null
say "step 2 ok: case CASE-VM-1 opened from the panel's keys, automatic mode"

# --- 3. hot-plugged disks, read-only and writable ---------------------------------------------
qmp device_add '{"driver": "usb-storage", "bus": "xhci.0", "drive": "ev-ro", "id": "usb-ro", "serial": "EVID-RO-0001"}' >/dev/null
wait_until 300 "the read-only disk sealed" sealed EVID-RO-0001
ro_sha=$(slot_by_serial EVID-RO-0001 | jq -r '.digests.sha256 // .digests["sha-256"] // empty')
[ "$ro_sha" = "$(sha256sum ev-ro.img | cut -d' ' -f1)" ] || fail "read-only disk sealed with SHA-256 '$ro_sha'"
qmp device_add '{"driver": "usb-storage", "bus": "xhci.0", "drive": "ev-rw", "id": "usb-rw", "serial": "EVID-RW-0002", "removable": true}' >/dev/null
wait_until 300 "the writable disk sealed" sealed EVID-RW-0002
rw_slot=$(slot_by_serial EVID-RW-0002)
[ "$(jq -r .readOnly <<<"$rw_slot")" = true ] || fail "the writable disk was not read-only in the guest: $rw_slot"
rw_sha=$(jq -r '.digests.sha256 // empty' <<<"$rw_slot")
[ "$(sha256sum ev-rw.img | cut -d' ' -f1)" = "$rw_before" ] || fail "the writable disk's backing file changed"
[ "$rw_sha" = "$rw_before" ] || fail "writable disk sealed with SHA-256 '$rw_sha', file has $rw_before"
qmp device_del '{"id": "usb-ro"}' >/dev/null
qmp device_del '{"id": "usb-rw"}' >/dev/null
say "step 3 ok: read-only disk and writable disk (made read-only by udev) acquired and sealed; backing file unchanged"

# --- 4. the lab's settings: E01; power cut mid-acquisition, resume --------------------------------
# The root is read-only: a lab's choices live in the store (STORE/exhibitd.json), read by exhibitd
# at start. Written here as a lab would on the host, through a loop device over the partition.
power_off
read -r store_start store_size < <(store_partition)
printf '{"imageFormat": "e01", "compression": "fast"}\n' >exhibitd.json
store_loop=$(losetup --find --show --offset $((store_start * 512)) --sizelimit $((store_size * 512)) disk.img)
# A loop device keeps the read-only flag `blockdev --setro` gave it while attached to another file
# (the suite's tests set it): made writable again, or debugfs -w would change nothing (seen in CI).
blockdev --setrw "$store_loop"
# The guest's clean shutdown can still leave ext4's journal to replay; replayed at the next mount,
# it would put back the root directory without the new file (seen once in CI). e2fsck replays it
# first; debugfs exits 0 whatever it did, so the file is looked for afterwards.
fsck_status=0
e2fsck -fy "$store_loop" >"$work/e2fsck-store.log" 2>&1 || fsck_status=$?
debugfs -w -R "write exhibitd.json exhibitd.json" "$store_loop" >/dev/null 2>&1 || true
written=$(debugfs -R "cat /exhibitd.json" "$store_loop" 2>/dev/null || true)
losetup -d "$store_loop"
[ "$fsck_status" -le 1 ] || fail "e2fsck of the store partition: status $fsck_status ($(tail -3 "$work/e2fsck-store.log"))"
[ "$written" = "$(cat exhibitd.json)" ] || fail "debugfs did not write the settings file into the store partition"
start_vm
wait_until 600 "a ready exhibitd (boot with the lab's settings)" ready
grep -aq 'settings: /srv/evidence/exhibitd.json' "$status" || fail "exhibitd did not take the store's settings file"
say "lab settings boot to ready: $((SECONDS - boot_started)) s (E01 chosen in /srv/evidence/exhibitd.json)"
qmp device_add '{"driver": "usb-storage", "bus": "xhci.0", "drive": "ev-big", "id": "usb-big", "serial": "EVID-BIG-0003"}' >/dev/null
midway() {
    local done
    done=$(slot_by_serial EVID-BIG-0003 | jq -r 'select(.state == "acquiring") | .bytesDone' 2>/dev/null)
    [ -n "$done" ] && [ "$done" -gt $((48 << 20)) ]
}
wait_until 300 "the third disk's acquisition under way" midway
cut_at=$(slot_by_serial EVID-BIG-0003 | jq -r .bytesDone)
stop_vm
say "power cut at byte $cut_at of $((384 << 20))"
# The disk is plugged in when the appliance comes back (cold-plugged this time).
start_vm -device usb-storage,bus=xhci.0,drive=ev-big,id=usb-big,serial=EVID-BIG-0003
wait_until 600 "a ready exhibitd (second boot)" ready
say "second boot to ready: $((SECONDS - boot_started)) s"
wait_until 600 "the interrupted job resumed and sealed" sealed EVID-BIG-0003
big_sha=$(slot_by_serial EVID-BIG-0003 | jq -r '.digests.sha256 // empty')
[ "$big_sha" = "$(sha256sum ev-big.img | cut -d' ' -f1)" ] || fail "the resumed job sealed with SHA-256 '$big_sha'"
say "step 4 ok: the E01 job resumed after the power cut and sealed with the whole disk's SHA-256"

# --- 6. an MTP phone -----------------------------------------------------------------------------
# A case still open is closed first (c, y on the panel) so that the phone is only shown, not
# acquired.
case_closed() { snapshot | jq -e '.session == null' >/dev/null 2>&1; }
if ! case_closed; then
    qmp keys "c"
    sleep 1
    qmp keys "y"
    wait_until 30 "the case closed from the panel" case_closed
fi
qmp device_add "{\"driver\": \"usb-mtp\", \"bus\": \"xhci.0\", \"id\": \"phone\", \"rootdir\": \"$work/mtp\", \"readonly\": true, \"desc\": \"Test Phone\"}" >/dev/null
phone_slot() { snapshot | jq -c '[.slots[]? | select(.kind == "phone")][0] // empty'; }
phone_seen() { [ -n "$(phone_slot)" ]; }
wait_until 120 "the MTP phone's slot" phone_seen
phone=$(phone_slot)
[ "$(jq -r .phoneKind <<<"$phone")" = mtp ] || fail "the phone slot is not classified as MTP: $phone"
qmp screendump "$work/screen-phone.ppm" >/dev/null
say "step 6 ok: MTP phone in slot $(jq -r .slot <<<"$phone") ($(jq -r '.phoneKind + ", " + (.model // "-") + ", " + .state' <<<"$phone"))"

power_off

# --- 5. the bundles, judged on the host ---------------------------------------------------------
read -r start size < <(store_partition)
[ -n "${size:-}" ] || fail "no exhibit-store partition on the disk"
dd if=disk.img of=store.img bs=512 skip="$start" count="$size" conv=sparse status=none
rm -rf bundles
debugfs -R "rdump /bundles $work" store.img >/dev/null 2>&1
debugfs -R "dump /keys/agency-root.pem $work/agency-root.pem" store.img >/dev/null 2>&1
[ -s agency-root.pem ] || fail "no agency root in the store"
count=0
for bundle in bundles/*/; do
    bundle=${bundle%/}
    name=$(basename "$bundle")
    bagit.py --validate "$bundle" >"$work/bagit-$name.log" 2>&1 || fail "bagit.py --validate $name"
    openssl cms -verify -binary -inform DER -in "$bundle/seal.p7s" -content "$bundle/tagmanifest-sha256.txt" \
        -CAfile agency-root.pem -purpose any -out /dev/null 2>"$work/cms-$name.log" || fail "openssl cms -verify $name"
    media=$(sed -n 's/^Exhibit-Media-SHA256: //p' "$bundle/bag-info.txt")
    e01=$(find "$bundle/data/image" -name '*.E01')
    if [ -n "$e01" ]; then
        ewfverify -q "$e01" >"$work/ewfverify-$name.log" 2>&1 || fail "ewfverify $name"
        ewfexport -q -u -f raw -S 7EiB -t "$work/export-$name" "$e01" >/dev/null 2>&1 || fail "ewfexport $name"
        raw=$(sha256sum "$work/export-$name.raw" | cut -d' ' -f1)
        rm -f "$work/export-$name.raw"
    else
        raw=$(cat "$bundle"/data/image/*.raw* | sha256sum | cut -d' ' -f1)
    fi
    [ "$media" = "$raw" ] || fail "$name: Exhibit-Media-SHA256 $media, image $raw"
    case_validate "$bundle/data/case.jsonld" >"$work/case-$name.log" 2>&1 || fail "case_validate $name"
    "$exhibit" verify "$bundle" --trust agency-root.pem >"$work/verify-$name.log" 2>&1 || fail "exhibit verify $name"
    # The custody chain, as the hub checks it with jq and sha256sum.
    previous=$(printf '0%.0s' $(seq 64))
    while IFS= read -r line; do
        [ "$(jq -r .prev <<<"$line")" = "$previous" ] || fail "$name: custody chain broken"
        previous=$(printf '%s\n' "$line" | sha256sum | cut -d' ' -f1)
    done <"$bundle/data/custody.jsonl"
    grep -q "^Custody-Log-Head-SHA256: $previous" "$bundle/bag-info.txt" || fail "$name: custody head mismatch"
    [ -z "$(find "$bundle" ! -type f ! -type d)" ] || fail "$name: links or special files in the bundle"
    # Which appliance build made it: the image version and root hash this image was built with.
    jq -e --arg v "$build_version" --arg h "$build_hash" \
        '.appliance.build.imageVersion == $v and .appliance.build.rootHash == $h' \
        "$bundle/data/acquisition.json" >/dev/null || fail "$name: acquisition.json does not name build $build_version / $build_hash"
    grep -q INTACT "$work/verify-$name.log" || fail "exhibit verify $name: $(cat "$work/verify-$name.log")"
    count=$((count + 1))
done
[ "$count" -ge 3 ] || fail "only $count bundles in the store"
for want in "$(sha256sum ev-ro.img | cut -d' ' -f1)" "$rw_before" "$(sha256sum ev-big.img | cut -d' ' -f1)"; do
    grep -lq "^Exhibit-Media-SHA256: $want" bundles/*/bag-info.txt || fail "no bundle holds the disk with SHA-256 $want"
done
big_bundle=$(dirname "$(grep -l "^Exhibit-Media-SHA256: $(sha256sum ev-big.img | cut -d' ' -f1)" bundles/*/bag-info.txt)")
jq -e '.image.format == "e01" and (.interruptions | length) >= 1' "$big_bundle/data/acquisition.json" >/dev/null \
    || fail "the third disk's bundle is not an E01 that was interrupted and resumed: $(jq -c '{image, interruptions}' "$big_bundle/data/acquisition.json")"
say "step 5 ok: $count bundles from the store partition pass bagit.py, openssl cms, sha256sum (the E01's through ewfexport, and ewfverify), case_validate, the custody chain and exhibit verify, and name build $build_version"

# --- 7. a changed root is refused ---------------------------------------------------------------
# One byte of exhibitd's executable is changed on the disk (its place found with debugfs in the
# build's root.img, the same bytes as partition 2): dm-verity must turn reading it into an I/O
# error, so the daemon cannot start from a root that is not the one the root hash names.
read -r root_start _ < <(sfdisk --json disk.img | jq -r '.partitiontable.partitions[] | select(.name == "exhibit-root") | "\(.start) \(.size)"')
block_size=$(dumpe2fs -h "$here/out/root.img" 2>/dev/null | sed -n 's/^Block size:[[:space:]]*//p')
block=$(debugfs -R "bmap /usr/libexec/exhibit/exhibitd 0" "$here/out/root.img" 2>/dev/null | tail -1)
[ -n "$block" ] && [ -n "$block_size" ] || fail "exhibitd's first block not found in root.img"
offset=$((root_start * 512 + block * block_size + 100))
old=$(dd if=disk.img bs=1 skip="$offset" count=1 status=none | od -An -tu1 | tr -d ' ')
printf "\\x$(printf %02x $(((old + 1) % 256)))" | dd of=disk.img bs=1 seek="$offset" conv=notrunc status=none
start_vm
refused() { grep -aq 'verity.*is corrupted' "$status"; }
wait_until 300 "dm-verity refusing the changed block" refused
daemon_down() { grep -aq '^STATE \(failed\|activating\|inactive\)' "$status"; }
wait_until 60 "exhibitd not running from the changed root" daemon_down
say "step 7 ok: one changed byte of the root ($(grep -a -m1 'verity.*is corrupted' "$status" | sed 's/^LOG \[[^]]*\] //' | cut -c1-90)); exhibitd does not run"
stop_vm

# --- 8. the system rewritten, the evidence kept -------------------------------------------------
# The build's partitions 1-3 written over the changed system (Image/update-system.sh, as a lab
# updates an appliance): it boots again, and the store still holds every sealed bundle.
"$here/update-system.sh" disk.img >"$work/update-system.log" 2>&1 || fail "update-system.sh: $(cat "$work/update-system.log")"
start_vm
wait_until 600 "a ready exhibitd after the system was rewritten" ready
kept() { [ "$(snapshot | jq '[.jobs[]? | select(.state == "sealed")] | length')" -ge "$count" ]; }
wait_until 60 "the store's bundles in the catalog" kept
say "step 8 ok: system partitions rewritten by update-system.sh; boots to ready in $((SECONDS - boot_started)) s with all $count sealed bundles in the store"
stop_vm

if [ ${#failed_checks[@]} -gt 0 ]; then
    echo "image-test: FAILED: ${failed_checks[*]}" >&2
    exit 1
fi
say "image size $(du -h --apparent-size "$image" | cut -f1) (on disk $(du -h "$image" | cut -f1)); first boot to ready ${first_ready} s under TCG"
say "test took $((SECONDS - started)) s"
say passed
