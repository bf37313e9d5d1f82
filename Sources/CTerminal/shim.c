// SPDX-License-Identifier: Apache-2.0
#define _XOPEN_SOURCE 700
#include <wchar.h>
#include "exhibit_terminal.h"

int exhibit_wcwidth(uint32_t code_point) {
    return wcwidth((wchar_t)code_point);
}
