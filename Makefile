# onehop — the only build system.
#
#   make                 build every program into bin/
#   make check           install missing test dependencies, then run unit and
#                        integration tests, then the same again under ASan+UBSan
#   make run             start a ready instance in run/ (see README)
#   make install         PREFIX=/usr/local DESTDIR= (see INSTALL)
#   make fuzz            run every libFuzzer target for FUZZ_SECONDS each
#   make unit | integration | san-check | fuzz-build | format | clean
#
# Each source folder contributes a module.mk fragment that adds to:
#   LIB_SRCS   library sources (no main), archived into libonehop.a
#   PROGRAMS   program names; each has NAME_SRCS (its main and private files)
#   LINKS      extra names in bin/ that are hard links: "link=target"
# Unit tests are tests/unit/test_*.c (one per module, cmocka), fuzz targets
# tests/fuzz/fuzz_*.c (libFuzzer); both are found by wildcard.

PREFIX   ?= /usr/local
DESTDIR  ?=
SBINDIR  ?= $(PREFIX)/sbin
LIBEXECDIR ?= $(PREFIX)/libexec/onehop
MANDIR   ?= $(PREFIX)/share/man
SYSCONFDIR ?= /etc/onehop
FUZZ_SECONDS ?= 60
PYTHON   ?= /usr/bin/python3

CC       ?= cc
FUZZ_CC  ?= clang
PKGS     := libuv libcares openssl
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
ifeq ($(strip $(PKG_LIBS)),)
PKG_LIBS   := -luv -lcares -lssl -lcrypto
endif

WARN     := -Wall -Wextra -Werror -Wshadow -Wpointer-arith -Wstrict-prototypes -Wmissing-prototypes \
            -Wno-unused-parameter
DEFS     := -D_GNU_SOURCE -DONEHOP_SYSCONFDIR='"$(SYSCONFDIR)"'
CFLAGS   ?= -O2 -g
ALL_CFLAGS = -std=c11 $(CFLAGS) $(WARN) $(DEFS) -Icommon -Iqueue -Idaemons $(PKG_CFLAGS) -MMD -MP

# SAN=1: the same tree built with AddressSanitizer + UndefinedBehaviorSanitizer.
ifeq ($(SAN),1)
BUILD    ?= build/san
BIN      ?= build/san/bin
CFLAGS   += -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
LDFLAGS  += -fsanitize=address,undefined
else
BUILD    ?= build/normal
BIN      ?= bin
endif

LIB_SRCS :=
PROGRAMS :=
LINKS    :=
TOOLS    :=
include common/module.mk
-include queue/module.mk
-include daemons/module.mk
-include tests/tools/module.mk

LIB      := $(BUILD)/libonehop.a
LIB_OBJS := $(LIB_SRCS:%.c=$(BUILD)/%.o)

# Static injection programs (INSTALL "Static injection programs"): sendmail
# and onehop-queue start once per message, so their start-up is per-message
# cost. When musl-gcc is there they are linked statically against musl, which
# starts in about 0.1 ms where glibc's start-up takes about 1 ms on a VM
# (docs/INTERNALS.md "Injection cost"). INJECT_CC= (empty) builds them like
# every other program; the sanitizer build always does.
INJECT_PROGRAMS := sendmail onehop-queue
ifeq ($(SAN),1)
INJECT_CC :=
else
INJECT_CC ?= $(shell command -v musl-gcc 2>/dev/null)
endif
# The compiler the two were last linked with: a change (make INJECT_CC=
# after a musl build, or back) relinks them.
INJECT_STAMP := $(BUILD)/inject-cc.stamp
$(shell mkdir -p $(BUILD) && { [ "$$(cat $(INJECT_STAMP) 2>/dev/null)" = "cc=$(strip $(INJECT_CC))" ] || \
    echo "cc=$(strip $(INJECT_CC))" > $(INJECT_STAMP); })
ifneq ($(strip $(INJECT_CC)),)
INJECT_BUILD    := $(BUILD)/inject
INJECT_LIB_SRCS := $(filter-out common/dnsclient.c,$(filter common/% queue/%,$(LIB_SRCS)))
INJECT_LIB_OBJS := $(INJECT_LIB_SRCS:%.c=$(INJECT_BUILD)/%.o)
INJECT_LIB      := $(INJECT_BUILD)/libonehop-inject.a
INJECT_CFLAGS    = -std=c11 $(CFLAGS) $(WARN) $(DEFS) -Icommon -Iqueue -MMD -MP
STATIC_PROGRAMS := $(INJECT_PROGRAMS)
else
STATIC_PROGRAMS :=
endif

.PHONY: all clean check unit integration tools san-check fuzz fuzz-build fuzz-smoke run install deps format

all: $(PROGRAMS:%=$(BIN)/%) $(foreach l,$(LINKS),$(BIN)/$(word 1,$(subst =, ,$l)))

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(LIB): $(LIB_OBJS)
	@mkdir -p $(dir $@)
	rm -f $@
	ar rcs $@ $^

define program_rule
$(BIN)/$(1): $$($(1)_SRCS:%.c=$$(BUILD)/%.o) $$(LIB)
	@mkdir -p $$(dir $$@)
	$$(CC) $$(LDFLAGS) -o $$@ $$(filter-out %.stamp,$$^) $$(PKG_LIBS) -lm
endef
$(INJECT_PROGRAMS:%=$(BIN)/%): $(INJECT_STAMP)
$(foreach p,$(filter-out $(STATIC_PROGRAMS),$(PROGRAMS)),$(eval $(call program_rule,$(p))))

$(INJECT_BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(INJECT_CC) $(INJECT_CFLAGS) -c -o $@ $<

$(INJECT_LIB): $(INJECT_LIB_OBJS)
	rm -f $@
	ar rcs $@ $^

define static_program_rule
$(BIN)/$(1): $$($(1)_SRCS:%.c=$$(INJECT_BUILD)/%.o) $$(INJECT_LIB)
	@mkdir -p $$(dir $$@)
	$$(INJECT_CC) -static $$(LDFLAGS) -o $$@ $$(filter-out %.stamp,$$^)
endef
$(foreach p,$(STATIC_PROGRAMS),$(eval $(call static_program_rule,$(p))))

define link_rule
$(BIN)/$(1): $(BIN)/$(2)
	ln -f $$< $$@
endef
$(foreach l,$(LINKS),$(eval $(call link_rule,$(word 1,$(subst =, ,$l)),$(word 2,$(subst =, ,$l)))))

# ---------------------------------------------------------------- tests ----
UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/%)

$(BUILD)/tests/%: tests/unit/%.c $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Itests/unit $(LDFLAGS) -o $@ $< $(LIB) $(PKG_LIBS) -lcmocka -lm

deps:
	@scripts/deps.sh test

# unit: every cmocka binary; counts go to $(BUILD)/results/unit.counts
unit: $(UNIT_BINS) all
	@scripts/run-unit.sh $(BUILD) $(UNIT_BINS)

# integration: the black-box pytest suite against the programs in $(BIN)
# (and the test tools of tests/tools/module.mk in $(BUILD)/tools)
integration: all $(TOOLS)
	@scripts/run-integration.sh $(BUILD) $(BIN)

# tools: only the test tools (tests/tools/module.mk)
tools: $(TOOLS)

san-check:
	$(MAKE) SAN=1 all
	$(MAKE) SAN=1 unit
	$(MAKE) SAN=1 integration

# check: every stage (see scripts/check.sh), closing with "N passed, N failed, N skipped"
check:
	@MAKE="$(MAKE)" scripts/check.sh

# ----------------------------------------------------------------- fuzz ----
FUZZ_SRCS := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BUILD := build/fuzz
FUZZ_BINS := $(FUZZ_SRCS:tests/fuzz/%.c=$(FUZZ_BUILD)/%)
FUZZ_CFLAGS = -std=c11 -O1 -g $(WARN) $(DEFS) -Icommon -Iqueue -Idaemons $(PKG_CFLAGS) \
              -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all -DONEHOP_FUZZING
FUZZ_LIB_OBJS := $(LIB_SRCS:%.c=$(FUZZ_BUILD)/%.o)

$(FUZZ_BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -c -o $@ $<

$(FUZZ_BUILD)/libonehop.a: $(FUZZ_LIB_OBJS)
	rm -f $@
	ar rcs $@ $^

$(FUZZ_BUILD)/fuzz_%: tests/fuzz/fuzz_%.c $(FUZZ_BUILD)/libonehop.a
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $< $(FUZZ_BUILD)/libonehop.a $(PKG_LIBS) -lm

fuzz-build: $(FUZZ_BINS)

# fuzz-smoke: every target replays its seed corpus (part of make check)
fuzz-smoke: fuzz-build
	@scripts/run-fuzz.sh smoke $(FUZZ_BUILD) build/normal/results $(FUZZ_BINS)

fuzz: fuzz-build
	@scripts/run-fuzz.sh $(FUZZ_SECONDS) $(FUZZ_BUILD) build/fuzz/results $(FUZZ_BINS)

# ------------------------------------------------------------------ run ----
run: all
	@scripts/deps.sh run
	@scripts/make-run.sh $(BIN)

# -------------------------------------------------------------- install ----
MAN_PAGES := $(wildcard docs/man/*.[1-8])

install: all
	install -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(LIBEXECDIR) $(DESTDIR)$(SYSCONFDIR)
	for p in $(PROGRAMS); do \
	    case $$p in onehop-*) install -m 755 $(BIN)/$$p $(DESTDIR)$(LIBEXECDIR)/$$p ;; \
	                *) install -m 755 $(BIN)/$$p $(DESTDIR)$(SBINDIR)/$$p ;; esac; done
	for l in $(LINKS); do ln -f $(DESTDIR)$(SBINDIR)/$${l#*=} $(DESTDIR)$(SBINDIR)/$${l%%=*}; done
	for m in $(MAN_PAGES); do s=$${m##*.}; install -d $(DESTDIR)$(MANDIR)/man$$s; \
	    install -m 644 $$m $(DESTDIR)$(MANDIR)/man$$s/; done
	scripts/install-config.sh "$(DESTDIR)" "$(SYSCONFDIR)" "$(LIBEXECDIR)"

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf build bin

-include $(LIB_OBJS:.o=.d) $(foreach p,$(PROGRAMS),$($(p)_SRCS:%.c=$(BUILD)/%.d))
ifneq ($(strip $(INJECT_CC)),)
-include $(INJECT_LIB_OBJS:.o=.d) $(foreach p,$(INJECT_PROGRAMS),$($(p)_SRCS:%.c=$(INJECT_BUILD)/%.d))
endif
