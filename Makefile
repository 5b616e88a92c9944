# omnibus: the two commands of the quick start are `make run` and `make test`.
BUILD    ?= build
JOBS     ?= $(shell nproc)
CONFIG   ?= config/quickstart.yaml
PREFIX   ?= /usr/local
DESTDIR  ?=
CMAKE_FLAGS ?=

.PHONY: all deps configure build run test bench fuzz docs install clean

all: build

deps:
	@scripts/install-deps

configure: deps
	@cmake -S . -B $(BUILD) -DCMAKE_INSTALL_PREFIX=$(PREFIX) $(CMAKE_FLAGS) >/dev/null

build: configure
	@cmake --build $(BUILD) -j$(JOBS)

run: build
	$(BUILD)/daemon/omnibusd --config $(CONFIG)

test: build
	cd $(BUILD) && ctest --output-on-failure -j$(JOBS) --timeout 600

bench: build
	@bench/run-all $(BUILD)

docs: build
	$(BUILD)/daemon/omnibusd --print-config-reference > docs/configuration.md

install: build
	DESTDIR=$(DESTDIR) cmake --install $(BUILD)

clean:
	rm -rf $(BUILD)
