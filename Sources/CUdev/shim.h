// SPDX-License-Identifier: Apache-2.0
// libudev (systemd 252), imported only by the Devices module.
#ifndef EXHIBIT_CUDEV_SHIM_H
#define EXHIBIT_CUDEV_SHIM_H
#include <libudev.h>
#include <poll.h>
#include <sys/eventfd.h>
#endif
