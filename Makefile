# fedpipe build. Files are discovered, not listed: common/<lib>/*.c ->
# build/libfp<lib>.a (core, store, matrix, feed; see common/README),
# cmd/<prog>/*.c -> bin/<prog>, tests/unit/test_*.c -> build/tests/,
# tests/tools/*.c -> build/tools/, bench/*.c -> build/bench/,
# tests/fuzz/fuzz_*.c -> build/fuzz/ (clang libFuzzer).
VERSION   := 0.1.0
PREFIX    ?= /usr/local
DESTDIR   ?=
CC        ?= cc
BUILD     ?= build
BIN       ?= bin
OPT       ?= -O2
SAN       ?=
PKGS      := libcares libevent libevent_pthreads libevent_openssl openssl libcurl lmdb libsodium inih libnats
CFLAGS    += -std=c11 -D_GNU_SOURCE -DFP_VERSION='"$(VERSION)"' $(OPT) -g -Wall -Wextra -Werror \
             -Wno-unused-parameter -Icommon $(SAN) $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LDLIBS    += -Wl,--as-needed $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lpthread -lm
LDFLAGS   += $(SAN)

DEB_PKGS  := build-essential pkg-config libevent-dev libcurl4-openssl-dev liblmdb-dev lmdb-utils \
             libjsmn-dev libsodium-dev libssl-dev libinih-dev libnats-dev nats-server \
             python3 python3-signedjson python3-canonicaljson python3-nacl clang libclang-rt-14-dev \
             curl jq wrk hyperfine systemd procps openssl strace mandoc lintian \
             libc-ares-dev dnsmasq-base tmux prometheus nginx

LIBS       := feed store core matrix
COMMON_SRC := $(wildcard $(LIBS:%=common/%/*.c))
COMMON_HDR := $(wildcard $(LIBS:%=common/%/*.h))
# Link order: a library may use only those after it (feed -> store -> core ->
# matrix). libfpmatrix.a also carries core/buf.o, the one file of ours the
# matrix code includes, so it links alone (tests/unit/test_matrix_alone.c).
LIB_ARS    := $(LIBS:%=$(BUILD)/libfp%.a)
MATRIX_OBJ := $(patsubst %.c,$(BUILD)/obj/%.o,$(wildcard common/matrix/*.c) common/core/buf.c)
PROGS      := $(notdir $(patsubst %/,%,$(wildcard cmd/*/)))
PROG_BINS  := $(PROGS:%=$(BIN)/%)
UNIT_SRC   := $(wildcard tests/unit/test_*.c)
UNIT_BINS  := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
TOOL_SRC   := $(wildcard tests/tools/*.c)
TOOL_BINS  := $(TOOL_SRC:tests/tools/%.c=$(BUILD)/tools/%)
BENCH_SRC  := $(wildcard bench/*.c)
BENCH_BINS := $(BENCH_SRC:bench/%.c=$(BUILD)/bench/%)
FUZZ_SRC   := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BINS  := $(FUZZ_SRC:tests/fuzz/%.c=$(BUILD)/fuzz/%)

.PHONY: all deps test run bench bench-scale asan fuzz fuzz-smoke soak install deb clean check-deps
all: $(PROG_BINS) $(UNIT_BINS) $(TOOL_BINS) $(BENCH_BINS)

deps:
	@sh scripts/deps.sh $(DEB_PKGS)
	@sh scripts/deps-npm.sh $(BUILD)

$(BUILD)/obj/%.o: %.c $(COMMON_HDR)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c -o $@ $<

define LIB_template
$(BUILD)/libfp$(1).a: $(patsubst %.c,$(BUILD)/obj/%.o,$(wildcard common/$(1)/*.c))
	@mkdir -p $$(dir $$@)
	rm -f $$@ && ar rcs $$@ $$^
endef
$(foreach l,feed store core,$(eval $(call LIB_template,$(l))))
$(BUILD)/libfpmatrix.a: $(MATRIX_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

define PROG_template
$(BIN)/$(1): $(patsubst %.c,$(BUILD)/obj/%.o,$(wildcard cmd/$(1)/*.c)) $(LIB_ARS)
	@mkdir -p $(BIN)
	$(CC) $(LDFLAGS) -o $$@ $$^ $(LDLIBS)
endef
$(foreach p,$(PROGS),$(eval $(call PROG_template,$(p))))

# The matrix library stands alone: this test links it and nothing else of ours.
$(BUILD)/tests/test_matrix_alone: $(BUILD)/obj/tests/unit/test_matrix_alone.o $(BUILD)/libfpmatrix.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ -Wl,--as-needed $(shell pkg-config --libs libsodium) -lm

$(BUILD)/tests/%: $(BUILD)/obj/tests/unit/%.o $(LIB_ARS)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/tools/%: $(BUILD)/obj/tests/tools/%.o $(LIB_ARS)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/bench/%: $(BUILD)/obj/bench/%.o $(LIB_ARS)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# The test run: every unit program, then every integration script.
# TESTS="pattern ..." runs the subset whose file name contains any of the patterns.
test: deps
	@$(MAKE) --no-print-directory all
	@$(MAKE) --no-print-directory fuzz-smoke >$(BUILD)/fuzz-build.log 2>&1 || echo "fuzz harness build failed: see $(BUILD)/fuzz-build.log"
	@sh tests/run.sh $(TESTS)

run: deps
	@$(MAKE) --no-print-directory $(PROG_BINS)
	@sh scripts/run-demo.sh

bench: deps
	@$(MAKE) --no-print-directory all
	@sh bench/run.sh $(BENCH)

# The scale curve of one node at 10^5, 10^6, 10^7 stored events (SCALE_MAX
# stops earlier; minutes to an hour and tens of GB): not part of make bench.
bench-scale: deps
	@$(MAKE) --no-print-directory all
	@FP_ROOT=$(CURDIR) FP_BIN=$(CURDIR)/$(BIN) FP_BUILD=$(CURDIR)/$(BUILD) sh bench/scale/run.sh

asan:
	@$(MAKE) --no-print-directory BUILD=build-asan BIN=build-asan/bin CC=clang OPT=-O1 \
	  SAN="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined" all
	@$(MAKE) --no-print-directory fuzz-smoke >/dev/null 2>&1 || true
	@FP_BUILD=build-asan FP_BIN=build-asan/bin ASAN_OPTIONS=detect_leaks=1 LSAN_OPTIONS=suppressions=$(CURDIR)/tests/lsan.supp:print_suppressions=0 sh tests/run.sh $(TESTS)

$(BUILD)/fuzz/%: tests/fuzz/%.c $(COMMON_SRC) $(COMMON_HDR)
	@mkdir -p $(dir $@)
	clang -std=c11 -D_GNU_SOURCE -DFP_VERSION='"$(VERSION)"' -g -O1 -Icommon \
	  -fsanitize=fuzzer,address,undefined $(shell pkg-config --cflags $(PKGS)) \
	  -o $@ $< $(COMMON_SRC) $(shell pkg-config --libs $(PKGS)) -lpthread -lm

fuzz: $(FUZZ_BINS)
	@for f in $(FUZZ_BINS); do n=$$(basename $$f); mkdir -p build/fuzz/corpus-$$n; \
	  echo "fuzzing $$n for $${FUZZ_SECONDS:-60}s"; \
	  $$f -max_total_time=$${FUZZ_SECONDS:-60} -max_len=70000 build/fuzz/corpus-$$n tests/fuzz/seeds || exit 1; done

fuzz-smoke: $(FUZZ_BINS)

soak: all
	@FP_SOAK=1 FP_TEST_TIMEOUT=3600 sh tests/run.sh chaos

install: $(PROG_BINS)
	@sh scripts/install.sh "$(DESTDIR)" "$(PREFIX)" "$(BIN)"

# The Debian package: a hardened build (dpkg-buildflags) in its own tree,
# installed with PREFIX=/usr into a staging tree and packed by
# scripts/mkdeb.sh (dpkg-deb; fails if lintian reports an error). The flags
# go through env: a command-line CFLAGS= would replace the Makefile's own.
DEB_ENV := DEB_BUILD_MAINT_OPTIONS=hardening=+all
deb:
	@rm -rf $(BUILD)/deb/root
	@env CFLAGS="$$($(DEB_ENV) dpkg-buildflags --get CFLAGS) $$($(DEB_ENV) dpkg-buildflags --get CPPFLAGS)" \
	  LDFLAGS="$$($(DEB_ENV) dpkg-buildflags --get LDFLAGS)" \
	  $(MAKE) --no-print-directory BUILD=$(BUILD)/deb BIN=$(BUILD)/deb/bin \
	  install DESTDIR=$(CURDIR)/$(BUILD)/deb/root PREFIX=/usr
	@sh scripts/mkdeb.sh $(BUILD)/deb/root $(BUILD)

clean:
	rm -rf build build-asan bin

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
