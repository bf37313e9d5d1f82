# Exhibit: the two quick-start commands are `make run` and `make test`.
SHELL := /bin/bash
SWIFT ?= swift
STORE ?= $(CURDIR)/store
SOURCE ?=

.PHONY: deps run-deps build run test bench clean image

# Everything the tests and benchmarks use; `make run` needs only the smaller set.
deps:
	scripts/install-deps

run-deps:
	scripts/install-deps run

build: run-deps
	$(SWIFT) build -c release

# Provisions a local store and acquires a source into a sealed, verified bundle.
# SOURCE=/dev/sdX (read-only) or an image file; without it a demo image is made.
run: build
	scripts/run-appliance "$(STORE)" "$(SOURCE)"

# The appliance's bootable disk (Image/out/exhibit.img): Debian bookworm, UEFI, verity root.
# Needs root; see README "The appliance image".
image:
	scripts/install-deps image
	SWIFT="$(SWIFT)" Image/build.sh

# The suite includes the image's QEMU test (ApplianceImageVMTests), so the image is built first
# where it can be (as root); elsewhere that test says it skipped and why.
test: deps
	@if [ "$$(id -u)" = 0 ]; then $(MAKE) --no-print-directory image SWIFT="$(SWIFT)"; \
	else echo "make test: not root, so no appliance image is built (ApplianceImageVMTests skips)"; fi
	$(SWIFT) build --build-tests
	SWIFT="$(SWIFT)" scripts/run-tests

bench: deps build
	bench/run.sh

clean:
	rm -rf .build .build-image Image/out
