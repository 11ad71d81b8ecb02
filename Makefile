# The front door. `make run` and `make test` install what is missing, build, and go.
BUILD_DIR ?= build
BUILD_TYPE ?= Release
JOBS ?= $(shell nproc)

.PHONY: setup build run test unit e2e bench fuzz mutate format clean

setup:
	@scripts/setup.sh

build: setup
	@cmake -S . -B $(BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) >/dev/null
	@cmake --build $(BUILD_DIR) -j $(JOBS)

run: build
	./$(BUILD_DIR)/keel serve --data-dir ./keel-data

test: build
	@scripts/test.sh

# Every libFuzzer target for FUZZ_SECONDS (60) each, from its corpus; fails on a crash (scripts/fuzz.sh).
FUZZ_SECONDS ?= 60
fuzz: setup
	@FUZZ_SECONDS=$(FUZZ_SECONDS) scripts/fuzz.sh

# Mutation testing: each planted bug in mutants/ is applied, built and run against the tests that must catch
# it, then reverted; fails below a 95% kill rate (scripts/mutate.sh). Not part of `make test`.
mutate: build
	@scripts/mutate.sh

bench: build
	@scripts/setup.sh --bench
	@bench/health.sh
	@bench/auth.sh
	@bench/gateway.sh
	@bench/events.sh
	@bench/memory.sh
	@bench/fleet.sh
	@bench/postgres.sh
	@bench/stream.sh
	@bench/console.sh

format:
	@clang-format -i $$(git ls-files '*.cpp' '*.hpp')

clean:
	rm -rf $(BUILD_DIR)
