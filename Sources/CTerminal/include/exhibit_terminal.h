// SPDX-License-Identifier: Apache-2.0
#ifndef EXHIBIT_TERMINAL_H
#define EXHIBIT_TERMINAL_H
#include <stdint.h>

/// Columns the C library gives a code point (wcwidth under the current LC_CTYPE); -1 for
/// non-printing ones. Swift's Glibc module does not import wcwidth.
int exhibit_wcwidth(uint32_t code_point);

#endif
