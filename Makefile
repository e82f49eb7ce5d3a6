# The README's two commands live here: `make demo` and `make check`.
# CMake does the building; this file only strings the steps together.

BUILD      ?= build
ASAN_BUILD ?= build-asan
FUZZ_BUILD ?= build-fuzz
LINT_BUILD ?= build-lint
VG_BUILD   ?= build-valgrind
# The tests `make valgrind` (so `make check`) runs under memcheck, as a CTest
# label regex (memcheck: chosen in tests/CMakeLists.txt); `make valgrind-full`
# runs them all.
VALGRIND_LABELS ?= memcheck
FUZZ_SECONDS ?= 60
CHECK_FUZZ_SECONDS ?= 5
JOBS       ?= 2
PREFIX     ?= /usr/local
CMAKE_ARGS ?=

.PHONY: all deps build build-asan build-fuzz build-valgrind check check-fast demo install clean bench fuzz lint valgrind valgrind-full

all: build

deps:
	@scripts/install-deps

build: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	    -DCMAKE_INSTALL_PREFIX=$(PREFIX) $(CMAKE_ARGS) >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

build-asan: deps
	@cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug \
	    -DAUTHCERT_SANITIZE=ON $(CMAKE_ARGS) >/dev/null
	@cmake --build $(ASAN_BUILD) -j $(JOBS)

# libFuzzer targets (clang), ASan+UBSan.
build-fuzz: deps
	@CC=clang cmake -S . -B $(FUZZ_BUILD) -DCMAKE_BUILD_TYPE=Debug \
	    -DAUTHCERT_FUZZ=ON -DFUZZ_SECONDS=$(CHECK_FUZZ_SECONDS) $(CMAKE_ARGS) >/dev/null
	@cmake --build $(FUZZ_BUILD) -j $(JOBS)

# Every test, the same suite again under ASan+UBSan, each fuzz target for a
# few seconds, then the static analysis and valgrind (make lint).
check: build build-asan build-fuzz
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)
	cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	    ctest --output-on-failure -j $(JOBS)
	cd $(FUZZ_BUILD) && ctest --output-on-failure -j $(JOBS)
	$(MAKE) --no-print-directory lint

# Static analysis, clean or it fails: cppcheck (suppressions in .cppcheck,
# each with its reason) and clang-tidy (checks in .clang-tidy) over every
# source of the library, the daemons and the tool; no loop of calls among
# authcertd's objects (tests/lint/no-call-loops.sh: the objects of today's
# server/*.c, not a stale one); then valgrind memcheck over the unit tests
# and the quicker CLI suites (make valgrind).
lint: deps
	@cmake -S . -B $(LINT_BUILD) -DCMAKE_BUILD_TYPE=Debug \
	    -DCMAKE_EXPORT_COMPILE_COMMANDS=ON $(CMAKE_ARGS) >/dev/null
	@cmake --build $(LINT_BUILD) -j $(JOBS)
	cppcheck --quiet --error-exitcode=1 --enable=warning,performance,portability \
	    --std=c11 -D_GNU_SOURCE -Iinclude -Ilib --inline-suppr \
	    --suppressions-list=.cppcheck lib server agent tools
	ls lib/*.c lib/*/*.c server/*.c agent/*.c tools/*/*.c | \
	    xargs -P $(JOBS) -n 4 clang-tidy -p $(LINT_BUILD) --quiet
	tests/lint/no-call-loops.sh $(patsubst server/%.c,$(LINT_BUILD)/server/CMakeFiles/authcertd.dir/%.c.o,$(wildcard server/*.c))
	$(MAKE) --no-print-directory valgrind

# The suite under valgrind memcheck (invalid accesses, uninitialised values,
# definite leaks, in every process a test starts): its own build dir, where
# each test runs its programs through valgrind (tests/CMakeLists.txt,
# AUTHCERT_VALGRIND). `make valgrind`: most unit tests and the quicker CLI
# suites, about 3 minutes; `make valgrind-full`: every test, about an hour.
build-valgrind: deps
	@cmake -S . -B $(VG_BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	    -DAUTHCERT_VALGRIND=ON $(CMAKE_ARGS) >/dev/null
	@cmake --build $(VG_BUILD) -j $(JOBS)

valgrind: build-valgrind
	JOBS=$(JOBS) tests/valgrind.sh $(VG_BUILD) -L '$(VALGRIND_LABELS)'

valgrind-full: build-valgrind
	JOBS=$(JOBS) tests/valgrind.sh $(VG_BUILD)

# Each fuzz target for FUZZ_SECONDS (default 60).
fuzz: deps
	@CC=clang cmake -S . -B $(FUZZ_BUILD) -DCMAKE_BUILD_TYPE=Debug \
	    -DAUTHCERT_FUZZ=ON -DFUZZ_SECONDS=$(FUZZ_SECONDS) $(CMAKE_ARGS) >/dev/null
	@cmake --build $(FUZZ_BUILD) -j $(JOBS)
	cd $(FUZZ_BUILD) && ctest --output-on-failure -j $(JOBS)

# The plain build's suite only, for the edit-compile-test loop.
check-fast: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

demo: build
	@scripts/demo

install: build
	DESTDIR=$(DESTDIR) cmake --install $(BUILD)

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD) $(LINT_BUILD) $(VG_BUILD) demo-state build-bench

# The benchmarks (bench/README.md): an optimised build in build-bench, a
# table, and build-bench/bench/results.json. Never part of `make check`.
bench: deps
	bench/run
