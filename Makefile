# Top-level entry points (the contract in DEVELOPERS.md). CMake builds the C
# code; the Python harnesses use Debian's interpreter so that Debian's
# python3-pytest and python3-botocore are importable whatever python3 is first
# on PATH.
PYTHON ?= /usr/bin/python3
BUILD  ?= build
JOBS   ?= $(shell nproc 2>/dev/null || echo 2)
PYTEST  = $(PYTHON) -m pytest -q -p no:cacheprovider

.PHONY: all build test test-unit test-asan test-sim test-integration test-faults test-infra test-layer demo \
        layer synth bench format format-check clean deps fuzz fuzz-build test-fuzz

all: build

build:
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

# Quick when everything is installed; makes `make demo` and `make test` work
# on a fresh Debian machine.
deps:
	@bash scripts/install-deps.sh -q

# Every test: C unit tests (plain and under ASan+UBSan), the sandbox's own
# tests, then the end-to-end integration tests of the real binary.
test: deps build test-unit test-asan test-fuzz test-sim test-integration test-faults test-infra test-layer

test-unit: build
	ctest --test-dir $(BUILD) --output-on-failure

test-asan:
	@cmake -S . -B $(BUILD)/asan -DCMAKE_BUILD_TYPE=Debug -DKTE_SANITIZE=ON >/dev/null
	@cmake --build $(BUILD)/asan -j $(JOBS)
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
	  ctest --test-dir $(BUILD)/asan --output-on-failure

# Fuzzing (tests/fuzz/README.md): libFuzzer harnesses built with clang under
# ASan+UBSan in $(BUILD)/fuzz. `make fuzz` runs each harness, one at a time,
# for FUZZ_SECONDS (or FUZZ_RUNS executions, whichever comes first); FUZZERS
# picks harnesses. test-fuzz runs each for 5 s from the committed seeds in a
# scratch corpus and fails on any finding.
FUZZ_CC      ?= clang-14
FUZZ_SECONDS ?= 60
FUZZ_RUNS    ?= -1
FUZZERS      ?=

fuzz-build:
	@cmake -S . -B $(BUILD)/fuzz -DCMAKE_C_COMPILER=$(FUZZ_CC) -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	  -DKTE_FUZZ=ON -DKTE_TESTS=OFF >/dev/null
	@cmake --build $(BUILD)/fuzz -j $(JOBS) --target kte_fuzzers

fuzz: deps fuzz-build
	bash tests/fuzz/run.sh -b $(BUILD)/fuzz -t $(FUZZ_SECONDS) -r $(FUZZ_RUNS) $(FUZZERS)

test-fuzz: fuzz-build
	@rm -rf $(BUILD)/fuzz/test && mkdir -p $(BUILD)/fuzz/test
	bash tests/fuzz/run.sh -b $(BUILD)/fuzz -t 5 -w $(BUILD)/fuzz/test

test-sim:
	$(PYTEST) tests/sim

test-integration: build
	$(PYTEST) tests/integration

test-faults: build
	$(PYTEST) tests/faults

demo: deps build
	bash scripts/demo.sh

layer:
	bash scripts/build-layer.sh

# Builds both layers, then runs each in a bare chroot (arm64 under qemu-user)
# over verified HTTPS. Needs root (chroot, mknod).
test-layer:
	bash tests/layer/run.sh

# infra/: npm ci only when the lockfile changed.
INFRA_DEPS := infra/node_modules/.package-lock.json
$(INFRA_DEPS): infra/package.json infra/package-lock.json
	cd infra && npm ci --no-audit --no-fund
	@touch $@

synth: $(INFRA_DEPS)
	cd infra && npm run --silent synth -- $(CDK_CONTEXT)

test-infra: $(INFRA_DEPS)
	cd infra && npm test

bench: deps build
	bash scripts/bench.sh

format:
	clang-format -i src/*.[ch] tests/unit/*.[ch] tests/fuzz/*.[ch]

format-check:
	clang-format --dry-run --Werror src/*.[ch] tests/unit/*.[ch] tests/fuzz/*.[ch]

clean:
	rm -rf $(BUILD)
