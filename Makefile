# The README's two commands live here: `make demo` and `make check`.
# CMake does the building; this file only strings the steps together.

BUILD      ?= build
ASAN_BUILD ?= build-asan
FUZZ_BUILD ?= build-fuzz
VG_BUILD   ?= build-valgrind
# The tests `make valgrind` (so .ci/run) runs under memcheck, as a CTest
# label regex (memcheck: chosen in tests/CMakeLists.txt); `make valgrind-full`
# runs them all.
VALGRIND_LABELS ?= memcheck
FUZZ_SECONDS ?= 60
CHECK_FUZZ_SECONDS ?= 5
# make check runs every test on the plain build, and under ASan+UBSan the
# tests labelled unit and cli (every module of the library, the admin tool's
# every path). The end-to-end and interop suites under ASan are make
# check-asan (.ci/run runs it after make check): with them make check took
# 20 minutes on 2 cores, CPU-bound, against a goal of 12.
CHECK_ASAN_LABELS ?= ^(unit|cli)$$
# What make check-asan leaves out too (a CTest regex): the end-to-end suites
# that run a second time on PostgreSQL (the same scripts; the PostgreSQL
# backend's code runs under ASan in unit/test_registry*_pg and e2e/pg_nodes),
# and the benchmark harness at smoke sizes (nearly three minutes under ASan;
# the daemons it drives are under ASan in every other e2e suite). make
# check-full runs them under ASan too.
CHECK_ASAN_EXCLUDE ?= ^e2e/((fleet|server_http|crash_daemon|hostile_clients|identity)_pg|bench_smoke)$$
# Random-moment kills per mode in e2e/crash_admin (every file-changing
# system call is killed at in any case); make check-full uses its default, 15.
CHECK_CRASH_RANDOM ?= 3
JOBS       ?= 2
PREFIX     ?= /usr/local
CMAKE_ARGS ?=

.PHONY: all deps build build-asan build-fuzz build-valgrind check check-asan check-fast check-full check-users demo install clean bench fuzz lint valgrind valgrind-full

all: build

deps:
	@scripts/install-deps

# compile_commands.json is for clang-tidy (make lint).
build: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_EXPORT_COMPILE_COMMANDS=ON \
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

# Every test on the plain build; the unit and CLI tests again under
# ASan+UBSan, each fuzz target for a few seconds, then the static analysis
# (make lint): two lanes side by side (tests/check.sh), the wall time at the
# end. About 11 minutes on 2 cores. .ci/run runs make check-asan, make
# valgrind and make check-users after it.
check:
	@CHECK_START=$$(date +%s) && export CHECK_START && \
	    $(MAKE) --no-print-directory build build-asan build-fuzz && \
	    JOBS=$(JOBS) ASAN_LABELS='$(CHECK_ASAN_LABELS)' CRASH_RANDOM=$(CHECK_CRASH_RANDOM) \
	    tests/check.sh $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD)

# The rest of the suite under ASan+UBSan: what make check leaves out of its
# ASan lane but CHECK_ASAN_EXCLUDE (about 10 minutes on 2 cores).
check-asan: build build-asan
	@CHECK_START=$$(date +%s) && export CHECK_START && \
	    JOBS=$(JOBS) CRASH_RANDOM=$(CHECK_CRASH_RANDOM) \
	    ASAN_NOT_LABELS='$(CHECK_ASAN_LABELS)' ASAN_EXCLUDE='$(CHECK_ASAN_EXCLUDE)' \
	    tests/check.sh --asan-only $(BUILD) $(ASAN_BUILD)

# Everything make check leaves out: the ASan lane on every test, the full
# random-kill rounds of e2e/crash_admin, then every test under valgrind
# (about an hour and a half on 2 cores). Run before a release; record the result.
check-full:
	@CHECK_START=$$(date +%s) && export CHECK_START && \
	    $(MAKE) --no-print-directory build build-asan build-fuzz && \
	    JOBS=$(JOBS) tests/check.sh $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD)
	$(MAKE) --no-print-directory valgrind-full

# The tests that act as another user (label users), from a fresh clone of
# HEAD inside a 0700 folder, as a checkout in /root is: nothing they run as
# nobody or postgres may depend on where the checkout lives.
check-users: deps
	@d=$$(mktemp -d) && chmod 0700 "$$d" && git clone -q . "$$d/authcert" && \
	    cmake -S "$$d/authcert" -B "$$d/authcert/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	        $(CMAKE_ARGS) >/dev/null && \
	    cmake --build "$$d/authcert/build" -j $(JOBS) >/dev/null && \
	    (cd "$$d/authcert/build" && ctest --output-on-failure -L users); \
	    rc=$$?; rm -rf "$$d"; exit $$rc

# Static analysis, clean or it fails: cppcheck (suppressions in .cppcheck,
# each with its reason) and clang-tidy (checks in .clang-tidy, with the
# plain build's compile_commands.json) over every source of the library,
# the daemons and the tool; no loop of calls among authcertd's objects
# (tests/lint/no-call-loops.sh: the objects of today's server/*.c, not a
# stale one); no early-exiting reader in a pipefail script
# (tests/lint/pipefail.sh).
lint: build
	cppcheck --quiet --error-exitcode=1 --enable=warning,performance,portability \
	    --std=c11 -D_GNU_SOURCE -Iinclude -Ilib --inline-suppr \
	    --suppressions-list=.cppcheck lib server agent tools
	ls lib/*.c lib/*/*.c server/*.c agent/*.c tools/*/*.c | \
	    xargs -P $(JOBS) -n 4 clang-tidy -p $(BUILD) --quiet
	tests/lint/no-call-loops.sh $(patsubst server/%.c,$(BUILD)/server/CMakeFiles/authcertd.dir/%.c.o,$(wildcard server/*.c))
	tests/lint/pipefail.sh

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
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD) $(VG_BUILD) demo-state build-bench

# The benchmarks (bench/README.md): an optimised build in build-bench, a
# table, and build-bench/bench/results.json. Never part of `make check`.
bench: deps
	bench/run
