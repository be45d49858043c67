# fuzz.mk: builds pgwake's libFuzzer targets and runs them; called by the
# Makefile's `fuzz` and `fuzz-smoke` rules (`make -f fuzz/fuzz.mk run` works too).
#
# The core (src/*.c but main.c) and the worker library (src/libworker/*.c) are
# compiled again with clang under AddressSanitizer + UndefinedBehaviorSanitizer
# and libFuzzer's coverage instrumentation into $(FUZZ_BUILD), never into the
# normal build/; each fuzz/fuzz_NAME.c is linked against those archives (the
# linker takes only the objects a target needs). fuzz/run.sh runs every target
# for FUZZ_SECONDS with fuzz/corpus/NAME as seeds and keeps crashing inputs in
# fuzz/crashes/.

FUZZ_CC      ?= clang
FUZZ_BUILD   ?= build-fuzz
FUZZ_SECONDS ?= 60
PKGS         := libpq libevent libevent_pthreads libcurl inih jansson

SAN       := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
# -Werror is left out for src/: a new clang warning in code this build does not
# own must not stop the fuzzing; fuzz/*.c itself is held to -Werror.
WARN      := -Wall -Wextra -Wshadow -Wno-unused-parameter -Wno-unknown-warning-option
BASEFLAGS := -std=c11 -D_GNU_SOURCE -O1 -g $(WARN) -Iinclude -Isrc -I$(FUZZ_BUILD) \
             $(shell pkg-config --cflags $(PKGS))
LIBFLAGS  := $(BASEFLAGS) $(SAN) -fsanitize=fuzzer-no-link
TGTFLAGS  := $(BASEFLAGS) -Werror $(SAN) -fsanitize=fuzzer
LDLIBS    := $(shell pkg-config --libs $(PKGS)) -lpthread -lm

SRC_CORE  := $(filter-out src/main.c,$(wildcard src/*.c))
SRC_LIBWK := $(wildcard src/libworker/*.c)
SQL_FILES := $(sort $(wildcard sql/[0-9]*.sql))
OBJ_CORE  := $(SRC_CORE:src/%.c=$(FUZZ_BUILD)/obj/%.o) $(FUZZ_BUILD)/obj/sql_embed.o
OBJ_LIBWK := $(SRC_LIBWK:src/libworker/%.c=$(FUZZ_BUILD)/obj/libworker/%.o)

# Targets of the daemon's core, and those of the worker library.
CORE_TARGETS  := fuzz_config fuzz_notify fuzz_argv fuzz_units fuzz_import_supervisord fuzz_import_pm2
LIBWK_TARGETS := fuzz_wake
TARGETS       := $(CORE_TARGETS) $(LIBWK_TARGETS)
BINS          := $(TARGETS:%=$(FUZZ_BUILD)/%)

.PHONY: build run clean
build: $(BINS)

run: $(BINS)
	@FUZZ_BUILD=$(FUZZ_BUILD) FUZZ_SECONDS=$(FUZZ_SECONDS) sh fuzz/run.sh $(TARGETS)

$(FUZZ_BUILD)/obj/%.o: src/%.c
	@mkdir -p $(dir $@)
	@echo "  CC (fuzz) $<"
	@$(FUZZ_CC) $(LIBFLAGS) -MMD -MP -c -o $@ $<

$(FUZZ_BUILD)/obj/libworker/%.o: src/libworker/%.c
	@mkdir -p $(dir $@)
	@echo "  CC (fuzz) $<"
	@$(FUZZ_CC) $(LIBFLAGS) -MMD -MP -c -o $@ $<

$(FUZZ_BUILD)/sql_embed.c: $(SQL_FILES) scripts/embed-sql
	@mkdir -p $(FUZZ_BUILD)
	@sh scripts/embed-sql $(SQL_FILES) > $@.tmp && mv $@.tmp $@

$(FUZZ_BUILD)/obj/sql_embed.o: $(FUZZ_BUILD)/sql_embed.c
	@mkdir -p $(dir $@)
	@$(FUZZ_CC) $(LIBFLAGS) -c -o $@ $<

$(FUZZ_BUILD)/libcore.a: $(OBJ_CORE)
	@rm -f $@ && ar rcs $@ $^

$(FUZZ_BUILD)/libworker.a: $(OBJ_LIBWK)
	@rm -f $@ && ar rcs $@ $^

$(CORE_TARGETS:%=$(FUZZ_BUILD)/%): $(FUZZ_BUILD)/%: fuzz/%.c $(FUZZ_BUILD)/libcore.a
	@echo "  LD (fuzz) $@"
	@$(FUZZ_CC) $(TGTFLAGS) -o $@ $< $(FUZZ_BUILD)/libcore.a $(LDLIBS)

$(LIBWK_TARGETS:%=$(FUZZ_BUILD)/%): $(FUZZ_BUILD)/%: fuzz/%.c $(FUZZ_BUILD)/libworker.a
	@echo "  LD (fuzz) $@"
	@$(FUZZ_CC) $(TGTFLAGS) -o $@ $< $(FUZZ_BUILD)/libworker.a $(LDLIBS)

clean:
	rm -rf $(FUZZ_BUILD)

-include $(shell find $(FUZZ_BUILD) -name '*.d' 2>/dev/null)
