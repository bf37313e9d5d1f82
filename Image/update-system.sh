#!/usr/bin/env bash
# Image/update-system.sh TARGET: writes the system of a new build (Image/out/esp.img, root.img,
# verity.img from `make image`) over partitions 1-3 of an appliance's disk, and leaves the
# evidence store (partition 4, "exhibit-store") as it is: bundles, keys and catalog survive.
#
# TARGET is the appliance's disk attached to another machine (/dev/sdX), or a disk image file.
# The new root hash names the root and verity partitions (their GPT UUIDs, as the initrd finds
# them), so those are rewritten in the partition table too. A build whose files do not fit the
# existing partitions is refused: then the store must be copied off and the whole image written.
set -euo pipefail
target=${1:?usage: $0 TARGET (a disk device or image file)}
out=$(cd "$(dirname "$0")" && pwd)/out
say() { echo "update-system: $*"; }
fail() { echo "update-system: $*" >&2; exit 1; }

[ -f "$out/build.json" ] || fail "no build in $out (make image)"
roothash=$(jq -r .rootHash "$out/build.json")
version=$(jq -r .imageVersion "$out/build.json")
[ ${#roothash} = 64 ] || fail "no root hash in $out/build.json"
if [ -b "$target" ]; then
    # Never the running system, nor a disk something has mounted.
    mounted=$(lsblk -nro MOUNTPOINT "$target" | grep -v '^$' || true)
    [ -z "$mounted" ] || fail "$target has mounted file systems ($mounted)"
fi

table=$(sfdisk --json "$target")
partition() {  # NAME -> "NUMBER START SIZE" (sectors of 512 bytes)
    jq -r --arg name "$1" '.partitiontable.partitions[] | select(.name == $name)
        | "\(.node | capture("(?<n>[0-9]+)$").n) \(.start) \(.size)"' <<<"$table"
}
jq -e '.partitiontable.partitions[] | select(.name == "exhibit-store")' <<<"$table" >/dev/null ||
    say "note: $target has no store partition yet (the appliance makes it on first boot)"

uuid() { echo "$1" | sed 's/^\(.\{8\}\)\(.\{4\}\)\(.\{4\}\)\(.\{4\}\)\(.\{12\}\)$/\1-\2-\3-\4-\5/'; }
# Every file is checked against its partition before anything is written.
plan=()
for entry in esp:esp.img exhibit-root:root.img exhibit-verity:verity.img; do
    name=${entry%%:*} file=$out/${entry#*:}
    read -r number start size < <(partition "$name") || fail "$target has no partition named $name"
    [ -f "$file" ] || fail "no $file"
    [ "$(stat -c %s "$file")" -le $((size * 512)) ] ||
        fail "$file ($(stat -c %s "$file") bytes) does not fit partition $number ($((size * 512)) bytes)"
    plan+=("$number $start $file")
    case $name in exhibit-root) root_number=$number ;; exhibit-verity) verity_number=$number ;; esac
done
for step in "${plan[@]}"; do
    read -r number start file <<<"$step"
    dd if="$file" of="$target" bs=4M oflag=seek_bytes seek=$((start * 512)) conv=notrunc,fsync status=none
    say "partition $number <- $(basename "$file")"
done
sfdisk --quiet --part-uuid "$target" "$root_number" "$(uuid "${roothash:0:32}")"
sfdisk --quiet --part-uuid "$target" "$verity_number" "$(uuid "${roothash:32:32}")"
sync
say "$target now boots build $version (root hash $roothash); the store partition was not touched"
