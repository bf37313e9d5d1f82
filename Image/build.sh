#!/usr/bin/env bash
# Builds the appliance's bootable disk image: Image/out/exhibit.img (raw GPT, UEFI).
#
#   Image/build.sh            (make image; needs root, Debian bookworm, scripts/install-deps image)
#
# Partitions, in this order on the disk:
#   1 ESP        systemd-boot, the kernel, the initrd, the boot entries (the root hash is in them)
#   2 root       ext4, read-only, the OS and Exhibit; its GPT UUID is the first half of the root hash
#   3 verity     the dm-verity hash tree of partition 2; UUID = the second half of the root hash
#   (4 store     made on the appliance's first boot, filling the disk: exhibit-store-setup)
# Everything is made from files: mkosi 14 builds the OS tree as a directory, and the disk is
# assembled with mkfs.ext4 -d, veritysetup format, mkfs.vfat + mtools, sfdisk and dd. mkosi's own
# GPT formats need loop partition devices, which the build machines' kernel does not create.
#
# Prints the image version, root hash, sizes and build time; writes Image/out/build.json.
set -euo pipefail
started=$SECONDS
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
out=$here/out
say() { echo "image: $*"; }

[ "$(id -u)" = 0 ] || { echo "image: mkosi and mkfs need root" >&2; exit 1; }
for tool in mkosi veritysetup mkfs.ext4 mkfs.vfat mcopy mmd sfdisk strip; do
    command -v "$tool" >/dev/null || { echo "image: $tool is missing (scripts/install-deps image)" >&2; exit 1; }
done

# The image version names the commit it was built from; "+dirty" when the tree had changes.
commit=$(git -C "$repo" rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
stamp=$(git -C "$repo" log -1 --format=%cd --date=format:%Y%m%d 2>/dev/null || date -u +%Y%m%d)
version="$stamp.$commit"
git -C "$repo" diff --quiet HEAD 2>/dev/null || version="$version+dirty"
say "version $version"

# 1. Exhibit in release, the Swift runtime linked in: the image carries no Swift toolchain.
# The build lock is shared with everyone building Swift on this machine (2 cores).
# SWIFT_BUILD=no reuses the binaries already there (for image-only changes while someone
# else's build or test run holds the lock).
swift_started=$SECONDS
bin=$repo/.build-image/release
if [ "${SWIFT_BUILD:-yes}" != no ]; then
    (cd "$repo" && flock /tmp/exhibit-swift-build.lock "${SWIFT:-swift}" build -c release --static-swift-stdlib \
        --scratch-path .build-image --product exhibitd >/dev/null &&
        flock /tmp/exhibit-swift-build.lock "${SWIFT:-swift}" build -c release --static-swift-stdlib \
            --scratch-path .build-image --product exhibit >/dev/null)
    say "swift release build $((SECONDS - swift_started)) s"
fi
[ -x "$bin/exhibitd" ] && [ -x "$bin/exhibit" ] || { echo "image: no release binaries in $bin" >&2; exit 1; }

# 2. The staging tree: what the repository puts into the OS, in the places its files name.
stage=$out/stage
rm -rf "$stage"
mkdir -p "$out/cache"   # mkosi's package cache (Cache= in mkosi.conf), kept between builds
install -d "$stage/usr/bin" "$stage/usr/libexec/exhibit" "$stage/usr/lib/systemd/system" \
    "$stage/usr/lib/sysusers.d" "$stage/usr/lib/udev/rules.d" "$stage/etc/exhibit" \
    "$stage/usr/share/doc/exhibit" "$stage/usr/lib/exhibit"
# Stripped: the debug information is most of a statically linked Swift binary's size. Both live
# in /usr/libexec/exhibit beside their SwiftPM resource bundles (the panel's message catalogues),
# which Bundle.module finds next to the executable's real path; /usr/bin/exhibit is a link.
strip -o "$stage/usr/libexec/exhibit/exhibitd" "$bin/exhibitd"
strip -o "$stage/usr/libexec/exhibit/exhibit" "$bin/exhibit"
cp -r "$bin"/*.resources "$stage/usr/libexec/exhibit/"
ln -s ../libexec/exhibit/exhibit "$stage/usr/bin/exhibit"
install -m 0644 "$repo/Systemd/exhibitd.service" "$repo/Systemd/exhibit-panel.service" "$stage/usr/lib/systemd/system/"
install -m 0644 "$repo/Systemd/exhibit.sysusers" "$stage/usr/lib/sysusers.d/exhibit.conf"
install -m 0644 "$repo/Systemd/exhibit-panel-foot.ini" "$stage/etc/exhibit/panel-foot.ini"
install -m 0644 "$repo"/Udev/*.rules "$stage/usr/lib/udev/rules.d/"
install -m 0755 "$repo/Udev/exhibit-system-disk" "$stage/usr/libexec/exhibit/"
install -m 0644 "$repo/README.md" "$repo/docs/status-api.md" "$stage/usr/share/doc/exhibit/"

# 3. The OS tree (mkosi.conf, mkosi.extra/, mkosi.postinst; the staging tree copied in).
mkosi_started=$SECONDS
(cd "$here" && mkosi --force --extra-tree "$here/mkosi.extra" --extra-tree "$stage" build >"$out/mkosi.log" 2>&1) || {
    tail -40 "$out/mkosi.log"; echo "image: mkosi failed (log: $out/mkosi.log)" >&2; exit 1; }
tree=$out/root
say "mkosi (Debian bookworm tree) $((SECONDS - mkosi_started)) s, $(du -sh "$tree" | cut -f1)"

# /var is a tmpfs on the appliance: what the packages left there (apt's lists and caches) is
# never seen at run time. The package list stays in Image/out/root.manifest.
rm -rf "$tree"/var/cache/* "$tree"/var/lib/apt/lists/* "$tree"/var/log/*

# Which build this is, for every bundle's record (the root hash is not known yet: it is a hash
# of this very file system, so it travels on the kernel command line, roothash=).
built=$(date -u +%Y-%m-%dT%H:%M:%SZ)
{
    echo "IMAGE_ID=exhibit"
    echo "IMAGE_VERSION=$version"
} >>"$tree/usr/lib/os-release"
cat >"$tree/usr/lib/exhibit/build.json" <<EOF
{"imageId": "exhibit", "imageVersion": "$version", "commit": "$commit", "built": "$built",
 "rootHashSource": "kernel command line roothash=", "clock": "hardware clock (RTC, UTC); no network time"}
EOF

# 4. Root file system and its hash tree. No journal: it is never written.
root_img=$out/root.img verity_img=$out/verity.img
rm -f "$root_img" "$verity_img"
used_mib=$(du -s --block-size=1M "$tree" | cut -f1)
root_mib=$(( (used_mib * 115 / 100 + 64 + 3) / 4 * 4 ))
mkfs.ext4 -q -F -L exhibit-root -O ^has_journal -m 0 -I 256 -d "$tree" "$root_img" "${root_mib}M" >/dev/null
roothash=$(veritysetup format "$root_img" "$verity_img" | sed -n 's/^Root hash:[[:space:]]*//p')
[ ${#roothash} = 64 ] || { echo "image: veritysetup printed no root hash" >&2; exit 1; }
say "root ${root_mib} MiB (tree ${used_mib} MiB), verity $(( $(stat -c %s "$verity_img") >> 20 )) MiB, root hash $roothash"
uuid() { echo "$1" | sed 's/^\(.\{8\}\)\(.\{4\}\)\(.\{4\}\)\(.\{4\}\)\(.\{12\}\)$/\1-\2-\3-\4-\5/'; }
root_uuid=$(uuid "${roothash:0:32}")
verity_uuid=$(uuid "${roothash:32:32}")

# 5. The ESP: systemd-boot from the image's own systemd-boot-efi, the kernel and initrd, and
# two entries. The normal entry is the default; the maintenance entry is for the lab
# administrator (README: "Maintenance mode").
esp_img=$out/esp.img
rm -f "$esp_img"
kernel=$(readlink -f "$tree/boot/vmlinuz") initrd=$(readlink -f "$tree/boot/initrd.img")
boot_mib=$(( ($(stat -c %s "$kernel") + $(stat -c %s "$initrd")) >> 20 ))
esp_mib=$(( (boot_mib * 2 + 32 + 7) / 8 * 8 ))
mkfs.vfat -F 32 -n EXHIBIT-ESP -C "$esp_img" $((esp_mib * 1024)) >/dev/null
export MTOOLS_SKIP_CHECK=1
mmd -i "$esp_img" ::/EFI ::/EFI/BOOT ::/EFI/systemd ::/loader ::/loader/entries ::/exhibit
mcopy -i "$esp_img" "$tree/usr/lib/systemd/boot/efi/systemd-bootx64.efi" ::/EFI/BOOT/BOOTX64.EFI
mcopy -i "$esp_img" "$tree/usr/lib/systemd/boot/efi/systemd-bootx64.efi" ::/EFI/systemd/systemd-bootx64.efi
mcopy -i "$esp_img" "$kernel" ::/exhibit/vmlinuz
mcopy -i "$esp_img" "$initrd" ::/exhibit/initrd.img
# roothash= is read by the initrd's exhibit-verity script and by exhibitd (the bundle record);
# systemd.verity=no and systemd.gpt_auto=0: the initrd opened the root already, and nothing is
# mounted by partition type; fsck.mode=skip: the root is read-only and verified instead.
common="root=/dev/mapper/root ro roothash=$roothash systemd.verity=no systemd.gpt_auto=0 fsck.mode=skip"
entries=$out/entries
rm -rf "$entries" && mkdir -p "$entries"
cat >"$entries/loader.conf" <<EOF
default exhibit.conf
timeout 3
editor no
console-mode keep
EOF
cat >"$entries/exhibit.conf" <<EOF
title      Exhibit $version
version    $version
linux      /exhibit/vmlinuz
initrd     /exhibit/initrd.img
options    $common console=tty1 console=ttyS0,115200 quiet
EOF
# Maintenance: no daemon, no panel; systemd's rescue target gives a root shell on the screen
# (sulogin without a password: the image has no root password and a locked root account).
cat >"$entries/exhibit-maintenance.conf" <<EOF
title      Exhibit $version - maintenance (root shell, no acquisition)
version    $version
linux      /exhibit/vmlinuz
initrd     /exhibit/initrd.img
options    $common console=tty1 systemd.unit=rescue.target systemd.setenv=SYSTEMD_SULOGIN_FORCE=1
EOF
mcopy -i "$esp_img" "$entries/loader.conf" ::/loader/loader.conf
mcopy -i "$esp_img" "$entries/exhibit.conf" "$entries/exhibit-maintenance.conf" ::/loader/entries/

# 6. The disk: GPT, the three partitions placed from their files. 1 MiB alignment; 1 MiB at
# the end for the backup GPT (moved to the real end of a larger disk on first boot).
disk=$out/exhibit.img
rm -f "$disk"
root_size=$(( $(stat -c %s "$root_img") >> 20 ))
verity_size=$(( ($(stat -c %s "$verity_img") + (1 << 20) - 1) >> 20 ))
esp_start=1 root_start=$((1 + esp_mib)) verity_start=$((1 + esp_mib + root_size))
disk_mib=$((verity_start + verity_size + 1))
truncate -s "${disk_mib}M" "$disk"
sfdisk --quiet "$disk" <<EOF
label: gpt
unit: sectors
start=$((esp_start * 2048)), size=$((esp_mib * 2048)), type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, name="esp"
start=$((root_start * 2048)), size=$((root_size * 2048)), type=4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709, uuid=$root_uuid, name="exhibit-root"
start=$((verity_start * 2048)), size=$((verity_size * 2048)), type=2C7357ED-EBD2-46D9-AEC8-6DFFF7DA9FE8, uuid=$verity_uuid, name="exhibit-verity"
EOF
dd if="$esp_img" of="$disk" bs=1M seek="$esp_start" conv=notrunc,sparse status=none
dd if="$root_img" of="$disk" bs=1M seek="$root_start" conv=notrunc,sparse status=none
dd if="$verity_img" of="$disk" bs=1M seek="$verity_start" conv=notrunc,sparse status=none

elapsed=$((SECONDS - started))
cat >"$out/build.json" <<EOF
{"imageVersion": "$version", "rootHash": "$roothash", "image": "exhibit.img", "imageMiB": $disk_mib,
 "rootMiB": $root_size, "espMiB": $esp_mib, "verityMiB": $verity_size, "buildSeconds": $elapsed, "built": "$built"}
EOF
say "disk $disk: $disk_mib MiB (ESP $esp_mib, root $root_size, verity $verity_size; the store is made on first boot)"
say "built in $elapsed s"
