// SPDX-License-Identifier: Apache-2.0
// libusb-1.0, imported only by the ADB module (the USB transport).
#ifndef EXHIBIT_CUSB_SHIM_H
#define EXHIBIT_CUSB_SHIM_H
#include <libusb.h>
#endif
