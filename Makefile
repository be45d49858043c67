# pgwake — GNU make build. `make` builds build/pgwake and the worker library;
# `make test` runs unit, SQL and integration tests; `make asan` the same under
# AddressSanitizer + UndefinedBehaviorSanitizer.

CC       ?= cc
BUILD    ?= build
PREFIX   ?= /usr/local
PKGS     := libpq libevent libevent_pthreads libcurl inih jansson
TESTPKGS := cmocka

# Missing packages are installed (as root) or named (otherwise) before anything
# is compiled, so a fresh Debian machine goes from nothing to a build.
DEPS_OK := $(shell pkg-config --exists $(PKGS) $(TESTPKGS) && echo yes)
ifneq ($(DEPS_OK),yes)
  ifeq ($(filter help clean format,$(MAKECMDGOALS)),)
    $(info pgwake: build dependencies missing; running scripts/install-deps)
    DEPS_RC := $(shell sh scripts/install-deps >&2; echo $$?)
    ifneq ($(DEPS_RC),0)
      $(error install the packages above, then run make again)
    endif
  endif
endif

WARN     := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
            -Wno-unused-parameter -Wformat=2 -Wno-format-nonliteral -Wno-format-truncation
# clang knows no -Wformat-truncation; tell it not to mind.
ifneq ($(findstring clang,$(shell $(CC) --version 2>/dev/null)),)
  WARN += -Wno-unknown-warning-option
endif
CFLAGS   ?= -O2 -g
ALL_CFLAGS = -std=c11 -D_GNU_SOURCE $(WARN) $(CFLAGS) -Iinclude -Isrc -I$(BUILD) \
             $(shell pkg-config --cflags $(PKGS)) $(SAN)
LDLIBS_ALL = $(shell pkg-config --libs $(PKGS)) -lpthread -lm
LDFLAGS  ?=

SRC_MAIN   := src/main.c
SRC_CORE   := $(filter-out $(SRC_MAIN),$(wildcard src/*.c))
SRC_LIBWK  := $(wildcard src/libworker/*.c)
SQL_FILES  := $(sort $(wildcard sql/[0-9]*.sql))
OBJ_CORE   := $(SRC_CORE:src/%.c=$(BUILD)/obj/%.o) $(BUILD)/obj/sql_embed.o
OBJ_LIBWK  := $(SRC_LIBWK:src/libworker/%.c=$(BUILD)/obj/libworker/%.o)
UNIT_SRC   := $(wildcard tests/unit/test_*.c)
UNIT_BIN   := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
WORKER_SRC := $(wildcard tests/workers/*.c)
WORKER_BIN := $(WORKER_SRC:tests/workers/%.c=$(BUILD)/workers/%)
EXAMPLE_SRC:= $(wildcard examples/*.c)
EXAMPLE_BIN:= $(EXAMPLE_SRC:examples/%.c=$(BUILD)/examples/%)
BENCH_SRC  := $(wildcard bench/*.c)
BENCH_BIN  := $(BENCH_SRC:bench/%.c=$(BUILD)/bench/%)

.PHONY: all test unit sqltest itest pytest test-ha asan asan-smoke valgrind bench demo demo-existing clean install format deps
all: $(BUILD)/pgwake $(BUILD)/libpgwake-worker.a $(WORKER_BIN) $(EXAMPLE_BIN)

$(BUILD)/obj/%.o: src/%.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -MMD -MP -c -o $@ $<

$(BUILD)/obj/libworker/%.o: src/libworker/%.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -MMD -MP -c -o $@ $<

# Migrations are compiled into the binary so `pgwake migrate` works from any folder.
$(BUILD)/sql_embed.c: $(SQL_FILES) scripts/embed-sql
	@mkdir -p $(BUILD)
	sh scripts/embed-sql $(SQL_FILES) > $@.tmp && mv $@.tmp $@

$(BUILD)/obj/sql_embed.o: $(BUILD)/sql_embed.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(BUILD)/libpgwake-core.a: $(OBJ_CORE)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/libpgwake-worker.a: $(OBJ_LIBWK)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/pgwake: $(BUILD)/obj/main.o $(BUILD)/libpgwake-core.a
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS_ALL)

$(BUILD)/tests/%: tests/unit/%.c $(BUILD)/libpgwake-core.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(shell pkg-config --cflags cmocka) $(LDFLAGS) -o $@ $< \
	  $(BUILD)/libpgwake-core.a $(LDLIBS_ALL) $(shell pkg-config --libs cmocka)

$(BUILD)/workers/%: tests/workers/%.c $(BUILD)/libpgwake-worker.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $< $(BUILD)/libpgwake-worker.a $(LDLIBS_ALL)

$(BUILD)/examples/%: examples/%.c $(BUILD)/libpgwake-worker.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $< $(BUILD)/libpgwake-worker.a $(LDLIBS_ALL)

$(BUILD)/bench/%: bench/%.c bench/lib/benchlib.c bench/lib/benchlib.h $(BUILD)/libpgwake-worker.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Ibench/lib $(LDFLAGS) -o $@ $< bench/lib/benchlib.c \
	  $(BUILD)/libpgwake-worker.a $(LDLIBS_ALL)

# The fuzz smoke (each libFuzzer target ~5 s) runs first, unless SKIP_FUZZ=1.
test: all $(UNIT_BIN)
	@if [ "$(SKIP_FUZZ)" != 1 ]; then $(MAKE) --no-print-directory fuzz-smoke; fi
	BUILD=$(BUILD) sh tests/run.sh all

unit: $(UNIT_BIN)
	BUILD=$(BUILD) sh tests/run.sh unit

sqltest: all
	BUILD=$(BUILD) sh tests/run.sh sql

itest: all
	BUILD=$(BUILD) sh tests/run.sh integration

pytest: all
	BUILD=$(BUILD) sh tests/run.sh python

# Patroni switchover and failover under load (tests/ha; about a minute; also in make test).
test-ha: all
	ROOT=$(CURDIR) BUILD=$(CURDIR)/$(BUILD) sh tests/ha/patroni_failover.sh

ASAN_MAKE = $(MAKE) BUILD=build-asan CC=clang SKIP_FUZZ=1 \
	  SAN="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all" \
	  CFLAGS="-O1 -g" LDFLAGS="-fsanitize=address,undefined"

asan:
	$(ASAN_MAKE) test

# CI's sanitizer pass: the unit tests and two daemon scenarios under ASan+UBSan.
asan-smoke:
	$(ASAN_MAKE) all $(UNIT_BIN:$(BUILD)/%=build-asan/%)
	BUILD=build-asan sh tests/run.sh all unit/ daemon_pipeline health_hung

valgrind: all $(UNIT_BIN)
	BUILD=$(BUILD) VALGRIND=1 sh tests/run.sh all

bench: all $(BENCH_BIN)
	BUILD=$(BUILD) sh bench/run.sh

demo: all
	BUILD=$(BUILD) sh scripts/demo

# The existing-pipeline example (Python workers over their own tables) under the daemon.
demo-existing: all
	BUILD=$(BUILD) sh scripts/demo-existing

deps:
	sh scripts/install-deps

# install: the binary, its man page, the SQL migrations, the example, demo and
# systemd files (the unit's ExecStart pointed at this PREFIX), and the worker
# library with its header and a pgwake-worker.pc for pkg-config. DESTDIR stages
# the files for a package: `make install DESTDIR=/tmp/x PREFIX=/usr`.
# The Python package goes where Debian's /usr/bin/python3 looks: the shared
# dist-packages under /usr, the versioned one under any other prefix.
PY_FILES := $(wildcard python/pgwake/*.py) python/pgwake/py.typed
ifeq ($(PREFIX),/usr)
  PYTHON_DIR ?= $(PREFIX)/lib/python3/dist-packages
else
  PYTHON_DIR ?= $(PREFIX)/lib/python$(shell /usr/bin/python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null || echo 3)/dist-packages
endif
install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib/pkgconfig \
	  $(DESTDIR)$(PREFIX)/include/pgwake $(DESTDIR)$(PREFIX)/share/man/man1 \
	  $(DESTDIR)$(PREFIX)/share/pgwake/sql $(DESTDIR)$(PREFIX)/share/pgwake/conf
	install -m 755 $(BUILD)/pgwake $(DESTDIR)$(PREFIX)/bin/pgwake
	install -m 644 docs/pgwake.1 $(DESTDIR)$(PREFIX)/share/man/man1/pgwake.1
	install -m 644 $(BUILD)/libpgwake-worker.a $(DESTDIR)$(PREFIX)/lib/
	install -m 644 include/pgwake/worker.h $(DESTDIR)$(PREFIX)/include/pgwake/
	install -m 644 $(SQL_FILES) $(DESTDIR)$(PREFIX)/share/pgwake/sql/
	install -m 644 conf/pgwake.conf conf/demo.conf conf/pg_cron.sql $(DESTDIR)$(PREFIX)/share/pgwake/conf/
	sed 's|/usr/local/bin/pgwake|$(PREFIX)/bin/pgwake|g' conf/pgwake.service \
	  > $(DESTDIR)$(PREFIX)/share/pgwake/conf/pgwake.service
	chmod 644 $(DESTDIR)$(PREFIX)/share/pgwake/conf/pgwake.service
	v=$$(sed -n 's/^#define PGWAKE_VERSION "\(.*\)"/\1/p' src/main.c) && \
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e "s|@VERSION@|$$v|g" pgwake-worker.pc.in \
	  > $(DESTDIR)$(PREFIX)/lib/pkgconfig/pgwake-worker.pc
	chmod 644 $(DESTDIR)$(PREFIX)/lib/pkgconfig/pgwake-worker.pc
	install -d $(DESTDIR)$(PYTHON_DIR)/pgwake
	install -m 644 $(PY_FILES) $(DESTDIR)$(PYTHON_DIR)/pgwake/

# deb: Debian packages (debian/) into $(BUILD)/, built from a copy of the tree
# by scripts/build-deb; a lintian error fails it. test-pkg installs, upgrades,
# removes and purges them in a booted fresh bookworm container; test-systemd
# runs the service there under a real systemd (tests/pkg/; root, nspawn).
.PHONY: deb test-pkg test-systemd
deb:
	sh scripts/build-deb $(BUILD)

test-pkg: deb
	sh tests/pkg/install.sh $(BUILD)

test-systemd: deb
	sh tests/pkg/systemd.sh $(BUILD)

# fuzz: libFuzzer targets (fuzz/fuzz.mk: clang, ASan+UBSan, objects in
# build-fuzz/), each run FUZZ_SECONDS (default 60); fuzz-smoke runs each ~5 s,
# prints one line per target and fails on a crash (inputs kept in fuzz/crashes/).
.PHONY: fuzz fuzz-smoke
fuzz:
	$(MAKE) --no-print-directory -f fuzz/fuzz.mk run

fuzz-smoke:
	$(MAKE) --no-print-directory -f fuzz/fuzz.mk run FUZZ_SECONDS=5

# chaos: 5,000 tasks over three chained stages on a private PostgreSQL while
# workers are SIGKILLed and SIGSTOPped, PostgreSQL restarted and the daemon
# SIGKILLed; asserts and reports (tests/chaos/chaos.sh; the short form,
# integration/chaos_short, runs in `make test`).
.PHONY: chaos
chaos: all
	BUILD=$(BUILD) sh tests/chaos/chaos.sh

format:
	sh scripts/format

clean:
	rm -rf build build-asan

-include $(shell find $(BUILD) build-asan -name '*.d' 2>/dev/null)
