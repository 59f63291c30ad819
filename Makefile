# The front door. `make run` and `make test` install what they need first.
PRESET ?= release
BUILD_DIR := build/$(PRESET)
CNX := $(BUILD_DIR)/src/cli/cnx
JOBS ?= $(shell nproc)
CTEST_LABELS ?= unit|integration
DATA_DIR ?= ./cnx-data

.PHONY: all bootstrap configure build run test test-all bench fmt lint fuzz clean

all: build

bootstrap:
	@scripts/bootstrap.sh

$(BUILD_DIR)/build.ninja:
	cmake --preset $(PRESET) >/dev/null

configure: $(BUILD_DIR)/build.ninja

build: bootstrap configure
	cmake --build $(BUILD_DIR) -j $(JOBS)

run: build
	$(CNX) serve --data-dir $(DATA_DIR) --demo --demo-docs $(CURDIR)

test: build
	ctest --test-dir $(BUILD_DIR) -L '$(CTEST_LABELS)' -j $(JOBS) --output-on-failure --timeout 600

test-all: build
	ctest --test-dir $(BUILD_DIR) -j $(JOBS) --output-on-failure

bench: build
	bench/run.sh $(BUILD_DIR)

fuzz: bootstrap
	cmake --preset fuzz >/dev/null && cmake --build build/fuzz -j $(JOBS)

fmt:
	git ls-files '*.cc' '*.h' | xargs clang-format -i

lint: configure
	git ls-files 'src/*.cc' | xargs clang-tidy -p $(BUILD_DIR) --quiet

clean:
	rm -rf build
