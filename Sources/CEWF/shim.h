// SPDX-License-Identifier: Apache-2.0
// libewf 20140813 (Debian's libewf-dev, the line ewf-tools is built from) and libdeflate 1.14,
// imported only by the ExpertWitness module. /usr/include/libewf.h is the API of this version.
#ifndef EXHIBIT_CEWF_SHIM_H
#define EXHIBIT_CEWF_SHIM_H
#include <libewf.h>
#include <libdeflate.h>
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
#endif
