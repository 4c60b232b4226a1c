# Top-level entry points (the contract in DEVELOPERS.md). CMake builds the C
# code; the Python harnesses use Debian's interpreter so that Debian's
# python3-pytest and python3-botocore are importable whatever python3 is first
# on PATH.
PYTHON ?= /usr/bin/python3
BUILD  ?= build
JOBS   ?= $(shell nproc 2>/dev/null || echo 2)
PYTEST  = $(PYTHON) -m pytest -q -p no:cacheprovider

.PHONY: all build test test-unit test-asan test-tsan test-sim test-integration test-flush test-faults test-hostile test-infra test-layer demo \
        layer synth bench format format-check clean deps fresh-check fuzz fuzz-build test-fuzz

all: build

build:
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

# Quick when everything is installed; makes `make demo` and `make test` work
# on a fresh Debian machine.
deps:
	@bash scripts/install-deps.sh -q

# Every test: C unit tests (plain and under ASan+UBSan), the sandbox's own
# tests, the end-to-end tests of the real binary, the layers, then infra/ (after
# test-layer, so that its check of the built layer zips runs, not skips).
test: deps build test-unit test-asan test-tsan test-fuzz test-sim test-integration test-flush test-faults test-hostile test-layer test-infra

test-unit: build
	ctest --test-dir $(BUILD) --output-on-failure

test-asan:
	@cmake -S . -B $(BUILD)/asan -DCMAKE_BUILD_TYPE=Debug -DKTE_SANITIZE=ON >/dev/null
	@cmake --build $(BUILD)/asan -j $(JOBS)
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
	  ctest --test-dir $(BUILD)/asan --output-on-failure

# The unit tests (test_pipeline_stress among them: ingest, flush,
# set_request and close on many threads) under ThreadSanitizer; any report
# fails the run. gcc's libtsan (Debian's libtsan2).
test-tsan:
	@cmake -S . -B $(BUILD)/tsan -DCMAKE_BUILD_TYPE=Debug -DKTE_TSAN=ON >/dev/null
	@cmake --build $(BUILD)/tsan -j $(JOBS)
	TSAN_OPTIONS=halt_on_error=1:abort_on_error=1:second_deadlock_stack=1 \
	  ctest --test-dir $(BUILD)/tsan --output-on-failure

# Fuzzing (tests/fuzz/README.md): libFuzzer harnesses built with clang under
# ASan+UBSan in $(BUILD)/fuzz. `make fuzz` runs each harness, one at a time,
# for FUZZ_SECONDS (or FUZZ_RUNS executions, whichever comes first); FUZZERS
# picks harnesses. test-fuzz runs each for 5 s from the committed seeds in a
# scratch corpus and fails on any finding.
FUZZ_CC      ?= clang
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

# The flush strategies end to end: invocation traces (sparse, busy) under
# lambda-sim against kinesis-local, exact counts (issue 12, docs/flush.md).
test-flush: build
	$(PYTEST) tests/flush

test-faults: build
	$(PYTEST) tests/faults

# Hostile clients against the real binary (floods, slow and malformed
# requests, forged posts, a second bind): see tests/hostile.
test-hostile: build
	$(PYTEST) tests/hostile

demo: deps build
	bash scripts/demo.sh

layer:
	bash scripts/build-layer.sh

# The zips `make synth` needs, rebuilt when the code or the layer build changed
# (one run for both: the script shares its source download between them).
LAYER_ZIPS   := build/layer-x86_64.zip build/layer-arm64.zip
LAYER_INPUTS := $(wildcard src/*.c src/*.h scripts/layer/*) CMakeLists.txt scripts/build-layer.sh
$(LAYER_ZIPS) &: $(LAYER_INPUTS)
	bash scripts/build-layer.sh

# Builds both layers, then runs each in a bare chroot (arm64 under qemu-user)
# over verified HTTPS. Needs root (chroot, mknod).
test-layer:
	bash tests/layer/run.sh

# infra/ runs on a Node that AWS CDK supports: the system's if new enough,
# else tools/node's (scripts/cdk-node.sh installs and picks it). npm ci only
# when the lockfile changed; --engine-strict fails on EBADENGINE instead of
# warning.
CDK_NODE   := bash $(CURDIR)/scripts/cdk-node.sh exec
INFRA_DEPS := infra/node_modules/.package-lock.json
$(INFRA_DEPS): infra/package.json infra/package-lock.json tools/node/package-lock.json
	cd infra && $(CDK_NODE) npm ci --no-audit --no-fund --engine-strict
	@touch $@

# Builds the layer zips first unless CDK_CONTEXT points elsewhere (-c layerDir=DIR).
synth: $(INFRA_DEPS) $(if $(findstring layerDir,$(CDK_CONTEXT)),,$(LAYER_ZIPS))
	cd infra && $(CDK_NODE) npm run --silent synth -- $(CDK_CONTEXT)

test-infra: $(INFRA_DEPS)
	cd infra && $(CDK_NODE) npm test

# README's two commands (make demo, make test) as root in a pristine Debian
# root (debootstrap minbase + git, make, ca-certificates) from a clean clone of
# HEAD; FRESH_ARGS="--release trixie", "--ref REV", ... (see --help).
fresh-check:
	bash scripts/fresh-check.sh $(FRESH_ARGS)

bench: deps build
	bash scripts/bench.sh

format:
	clang-format -i src/*.[ch] tests/unit/*.[ch] tests/fuzz/*.[ch]

format-check:
	clang-format --dry-run --Werror src/*.[ch] tests/unit/*.[ch] tests/fuzz/*.[ch]

clean:
	rm -rf $(BUILD)
