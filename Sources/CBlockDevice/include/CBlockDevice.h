// SPDX-License-Identifier: Apache-2.0
// Block-device ioctls for the Acquisition module. Each returns 0 on success and -1 with errno
// set on failure, like the system calls they wrap.
#ifndef EXHIBIT_CBLOCKDEVICE_H
#define EXHIBIT_CBLOCKDEVICE_H

#include <stdint.h>

/// BLKROGET: the kernel's read-only flag of the block device behind `fd` (1 = read-only).
int exhibit_blk_read_only(int fd, int *read_only);
/// BLKGETSIZE64: the device size in bytes.
int exhibit_blk_size_bytes(int fd, uint64_t *size);
/// BLKSSZGET: the logical sector size in bytes.
int exhibit_blk_logical_sector_size(int fd, uint32_t *size);
/// BLKPBSZGET: the physical sector size in bytes.
int exhibit_blk_physical_sector_size(int fd, uint32_t *size);
/// Turns O_DIRECT on or off for an open descriptor (0 on success, -1 with errno).
int exhibit_set_direct_io(int fd, int on);

#endif
