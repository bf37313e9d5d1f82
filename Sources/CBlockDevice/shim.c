// SPDX-License-Identifier: Apache-2.0
#include "CBlockDevice.h"

#include <fcntl.h>
#include <stddef.h>
#include <linux/fs.h>
#include <sys/ioctl.h>

_Static_assert(sizeof(uint64_t) == 8, "BLKGETSIZE64 writes a 64-bit size");

int exhibit_blk_read_only(int fd, int *read_only) {
    return ioctl(fd, BLKROGET, read_only);
}

int exhibit_blk_size_bytes(int fd, uint64_t *size) {
    return ioctl(fd, BLKGETSIZE64, size);
}

int exhibit_blk_logical_sector_size(int fd, uint32_t *size) {
    int value = 0;
    if (ioctl(fd, BLKSSZGET, &value) != 0) return -1;
    *size = (uint32_t)value;
    return 0;
}

int exhibit_blk_physical_sector_size(int fd, uint32_t *size) {
    unsigned int value = 0;
    if (ioctl(fd, BLKPBSZGET, &value) != 0) return -1;
    *size = (uint32_t)value;
    return 0;
}

int exhibit_set_direct_io(int fd, int on) {
    int flags = fcntl(fd, F_GETFL);
    if (flags < 0) return -1;
    flags = on ? (flags | O_DIRECT) : (flags & ~O_DIRECT);
    return fcntl(fd, F_SETFL, flags);
}
