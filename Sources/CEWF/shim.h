// SPDX-License-Identifier: Apache-2.0
// libewf 20140813 (Debian's libewf-dev, the line ewf-tools is built from), libdeflate 1.14 and
// ISA-L 2.30 (libisal-dev), imported only by the ExpertWitness module. /usr/include/libewf.h is
// the API of this libewf version.
#ifndef EXHIBIT_CEWF_SHIM_H
#define EXHIBIT_CEWF_SHIM_H
#include <libewf.h>
#include <libdeflate.h>
#include <isa-l/igzip_lib.h>
#include <stdint.h>
#include <stddef.h>
#include <sys/types.h>
#include <linux/falloc.h>
// malloc_trim: gives back the heap pages a closed libewf read handle leaves free.
#include <malloc.h>

/// glibc declares fallocate only under _GNU_SOURCE, which Swift's Glibc module is not built with.
int fallocate(int fd, int mode, off_t offset, off_t length);

/// Frees the store blocks of a byte range of a file (a staging file the E01 has taken over).
static inline int cewf_punch_hole(int descriptor, off_t offset, off_t length) {
    return fallocate(descriptor, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, offset, length);
}

/// libewf's error as text (its backtrace, innermost call last), then freed; `*error` is NULLed.
static inline void cewf_error_take(libewf_error_t **error, char *text, size_t size) {
    if (size > 0) text[0] = 0;
    if (error == NULL || *error == NULL) return;
    if (libewf_error_backtrace_sprint(*error, text, size) < 0) libewf_error_sprint(*error, text, size);
    libewf_error_free(error);
}
/// Bytes of working memory ISA-L's compression `level` (0 to 3) wants (its default size).
static inline uint32_t cewf_isal_level_buffer_size(uint32_t level) {
    switch (level) {
    case 1: return ISAL_DEF_LVL1_DEFAULT;
    case 2: return ISAL_DEF_LVL2_DEFAULT;
    case 3: return ISAL_DEF_LVL3_DEFAULT;
    default: return ISAL_DEF_LVL0_DEFAULT;
    }
}

/// Deflates `size` bytes into one zlib stream (RFC 1950, with its Adler-32) with ISA-L in one
/// call; returns the stream's size, or 0 when it does not fit in `capacity` bytes.
static inline size_t cewf_isal_zlib_compress(
    uint32_t level, uint8_t *level_buffer, uint32_t level_buffer_size, const uint8_t *input, uint32_t size, uint8_t *output,
    uint32_t capacity) {
    struct isal_zstream stream;
    isal_deflate_stateless_init(&stream);
    stream.level = level;
    stream.level_buf = level_buffer;
    stream.level_buf_size = level_buffer_size;
    stream.gzip_flag = IGZIP_ZLIB;
    stream.next_in = (uint8_t *)input;
    stream.avail_in = size;
    stream.next_out = output;
    stream.avail_out = capacity;
    stream.end_of_stream = 1;
    stream.flush = NO_FLUSH;
    return isal_deflate_stateless(&stream) == COMP_OK ? stream.total_out : 0;
}
#endif
