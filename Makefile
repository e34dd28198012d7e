# SPDX-License-Identifier: MIT
# Thin wrapper around CMake for the README's commands (./run demo and
# ./run check call these targets, installing make first where it is missing).
#   make deps         install missing Debian packages for everything (root or sudo)
#   make deps-demo    only those the build and the demo need
#   make              build (build/)
#   make demo         local demo: a relay and two endpoints on loopback, a file by ticket
#   make check        unit + integration tests, sanitizer build, short fuzz runs
#   make bench        benchmarks (figures printed, never pass/fail)
#   make coverage     the test suite on a gcov build, line and branch
#                     coverage per folder (COVERAGE_TESTS=regex narrows it)
#   make install      PREFIX=/usr/local (or prefix=), DESTDIR= for staging
#   make check-distros  ./run check on bare Debian 12 and 13 roots (root, minutes)
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
BUILD ?= build
ASAN_BUILD ?= build-asan
FUZZ_BUILD ?= build-fuzz
COV_BUILD ?= build-cov
COVERAGE_TESTS ?=
FUZZ_SECONDS ?= 10
PREFIX ?= /usr/local
prefix ?= $(PREFIX)
DISTROS ?= bookworm trixie

.PHONY: all deps deps-demo build demo check test test-asan fuzz bench coverage install \
  check-distros clean format

all: build

deps:
	@./scripts/deps.sh check

deps-demo:
	@./scripts/deps.sh demo

$(BUILD)/CMakeCache.txt:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo

build: $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j $(JOBS)

demo: deps-demo
	@$(MAKE) --no-print-directory build
	@./scripts/demo.sh $(BUILD)

test: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

$(ASAN_BUILD)/CMakeCache.txt:
	cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DKW_SANITIZE=ON

test-asan: $(ASAN_BUILD)/CMakeCache.txt
	cmake --build $(ASAN_BUILD) -j $(JOBS)
	cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  KW_SANITIZED=1 ctest --output-on-failure -j $(JOBS)

$(FUZZ_BUILD)/CMakeCache.txt:
	CC=clang cmake -S . -B $(FUZZ_BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	  -DKW_FUZZ=ON -DKW_TESTS=OFF

fuzz: $(FUZZ_BUILD)/CMakeCache.txt
	cmake --build $(FUZZ_BUILD) -j $(JOBS) --target fuzz-all
	JOBS=$(JOBS) ./tests/fuzz/run.sh $(FUZZ_BUILD) $(FUZZ_SECONDS)

check: deps
	@$(MAKE) --no-print-directory test
	@$(MAKE) --no-print-directory test-asan
	@$(MAKE) --no-print-directory fuzz
	@echo "check: all suites passed"

$(COV_BUILD)/CMakeCache.txt:
	cmake -S . -B $(COV_BUILD) -DCMAKE_BUILD_TYPE=Debug -DKW_COVERAGE=ON

coverage: $(COV_BUILD)/CMakeCache.txt
	@./scripts/deps.sh coverage
	cmake --build $(COV_BUILD) -j $(JOBS)
	./scripts/coverage.sh $(COV_BUILD) $(COVERAGE_TESTS)

bench: deps
	@$(MAKE) --no-print-directory build
	./bench/loopback.sh $(BUILD)
	./bench/relay.sh $(BUILD)
	./bench/natlab.sh $(BUILD)
	./bench/natlab_paths.sh $(BUILD)
	./bench/natlab_switch.sh $(BUILD)
	./bench/natlab_birthday.sh $(BUILD)
	./bench/lookup.sh $(BUILD)

# The prefix is a configure-time setting (the systemd unit names the
# installed binary), so install re-configures when it changed. DESTDIR is
# read by cmake --install from the environment; ldconfig runs only for an
# install into the system itself (no DESTDIR).
install: $(BUILD)/CMakeCache.txt
	cmake -S . -B $(BUILD) -DCMAKE_INSTALL_PREFIX=$(prefix) >/dev/null
	cmake --build $(BUILD) -j $(JOBS)
	DESTDIR=$(DESTDIR) cmake --install $(BUILD)

check-distros:
	@for d in $(DISTROS); do ./scripts/distro-check.sh $$d || exit 1; done

format:
	clang-format -i include/*.h src/*/*.[ch] tools/*/*.[ch] tests/*/*.[ch] examples/*.c

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD)
