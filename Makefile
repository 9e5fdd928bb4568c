# onehop — the only build system.
#
#   make                 build every program into bin/
#   make check           install missing test dependencies, then run unit and
#                        integration tests, then the same again under ASan+UBSan
#   make run             start a ready instance in run/ (see README)
#   make install         PREFIX=/usr/local DESTDIR= (see INSTALL)
#   make fuzz            run every libFuzzer target for FUZZ_SECONDS each
#   make soak            root: the fault-injection soak (scripts/soak.sh; SOAK_SECONDS,
#                        default 1200; SOAK_BIN, or SAN=1 for build/san/bin); not in check
#   make fuzz-long       FUZZ_LONG_SECONDS (1800) each, niced, recorded (docs/fuzzing.md)
#   make unit | integration | san-check | fuzz-build | format | clean
#
# Each source folder contributes a module.mk fragment that adds to:
#   LIB_SRCS   library sources (no main), archived into libonehop.a: files of
#              common/ and queue/ only
#   PROGRAMS   program names; each has NAME_SRCS (its main and private files)
#   LINKS      extra names in bin/ that are hard links: "link=target"
# and, for a daemon folder daemons/D/ whose private modules are tested:
#   D_PRIVATE  those modules' sources (also listed in the program's NAME_SRCS)
#   D_TESTS    the unit tests (test_*) and fuzz targets (fuzz_*) that link them
# Unit tests are tests/unit/test_*.c (one per module, cmocka), fuzz targets
# tests/fuzz/fuzz_*.c (libFuzzer); both are found by wildcard.
#
# Build boundaries (issue 9 item 3):
#   - common/ sees only common/, queue/ sees common/ and queue/, a daemon sees
#     common/, queue/ and its own folder (include paths per folder, below);
#   - a daemon's files are compiled into that daemon only (never libonehop.a);
#     the tests of its private modules link them through D_OBJS;
#   - `make check-includes` (a stage of `make check`) checks the include
#     lines themselves (scripts/check-includes.py), so that a relative path
#     cannot step around the include paths;
#   - every folder under daemons/ must have its module.mk: the fragments are
#     found by wildcard (a new daemon needs no edit here) and a folder
#     without one stops the build.

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
ALL_CFLAGS = -std=c11 $(CFLAGS) $(WARN) $(DEFS) $(PKG_CFLAGS) -MMD -MP

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
# the libFuzzer build (make fuzz-build) has a tree of its own
FUZZ_BUILD ?= build/fuzz

# ------------------------------------------------------------ modules ----
LIB_SRCS :=
PROGRAMS :=
LINKS    :=
TOOLS    :=
DAEMON_DIRS := $(patsubst %/,%,$(sort $(wildcard daemons/*/)))
DAEMONS     := $(notdir $(DAEMON_DIRS))
MISSING_MK  := $(filter-out $(wildcard $(DAEMON_DIRS:%=%/module.mk)),$(DAEMON_DIRS:%=%/module.mk))
ifneq ($(MISSING_MK),)
$(error $(MISSING_MK): missing; every folder under daemons/ needs its module.mk fragment)
endif
include common/module.mk queue/module.mk $(DAEMON_DIRS:%=%/module.mk) tests/tools/module.mk

ifneq ($(filter-out common/% queue/%,$(LIB_SRCS)),)
$(error LIB_SRCS takes files of common/ and queue/ only, not $(filter-out common/% queue/%,$(LIB_SRCS)): a daemon's files go into its program's NAME_SRCS)
endif

LIB      := $(BUILD)/libonehop.a
LIB_OBJS := $(LIB_SRCS:%.c=$(BUILD)/%.o)

# Include paths per folder: $(call folder_includes,SOURCE,ROOT) for a source
# compiled under the build tree ROOT. A daemon's headers are named with its
# folder ("dnscache/lookup.h"), found through ROOT/include/D/D, a symbolic
# link to daemons/D, so that no other daemon's folder is on the path. (The
# quoted form also finds a header beside the including file, as C says.)
# Anything else (tests, bench, tools) sees common/ and queue/.
daemon_of       = $(word 2,$(subst /, ,$(1)))
folder_includes = $(if $(filter common/%,$(1)),-Icommon,-Icommon -Iqueue$(if $(filter \
                  daemons/%,$(1)), -I$(2)/include/$(call daemon_of,$(1))))
include_links   = $(foreach d,$(DAEMONS),$(1)/include/$(d)/$(d))

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
INJECT_LIB_SRCS := $(filter-out common/dnsclient.c common/channel.c common/tls_mem.c,$(filter common/% queue/%,$(LIB_SRCS)))
INJECT_LIB_OBJS := $(INJECT_LIB_SRCS:%.c=$(INJECT_BUILD)/%.o)
INJECT_LIB      := $(INJECT_BUILD)/libonehop-inject.a
INJECT_CFLAGS    = -std=c11 $(CFLAGS) $(WARN) $(DEFS) -MMD -MP
STATIC_PROGRAMS := $(INJECT_PROGRAMS)
else
STATIC_PROGRAMS :=
endif

.PHONY: all clean check check-includes acceptance bench unit integration tools san-check fuzz fuzz-build fuzz-smoke fuzz-long \
        run install deps format

all: $(PROGRAMS:%=$(BIN)/%) $(foreach l,$(LINKS),$(BIN)/$(word 1,$(subst =, ,$l)))

$(BUILD)/%.o: %.c | $(call include_links,$(BUILD))
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(call folder_includes,$<,$(BUILD)) -c -o $@ $<

# ROOT/include/D/D -> daemons/D (see folder_includes), for every build tree
INCLUDE_LINKS = $(call include_links,$(BUILD)) $(call include_links,$(FUZZ_BUILD))
$(INCLUDE_LINKS):
	@mkdir -p $(dir $@)
	ln -sfn "$$(realpath -m --relative-to=$(dir $@) daemons/$(notdir $@))" $@

# D_OBJS: the private objects of daemon D that its tests link (D_PRIVATE)
$(foreach d,$(DAEMONS),$(eval $(d)_OBJS = $$($(d)_PRIVATE:%.c=$$(BUILD)/%.o)))
$(foreach d,$(DAEMONS),$(eval $(d)_FUZZ_OBJS = $$($(d)_PRIVATE:%.c=$$(FUZZ_BUILD)/%.o)))

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
	$(INJECT_CC) $(INJECT_CFLAGS) $(call folder_includes,$<,$(INJECT_BUILD)) -c -o $@ $<

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

$(BUILD)/tests/%: tests/unit/%.c $(LIB) | $(call include_links,$(BUILD))
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Icommon -Iqueue $(UNIT_DAEMON_INCLUDES) -Itests/unit $(LDFLAGS) -o $@ $< \
	    $(UNIT_DAEMON_OBJS) $(LIB) $(PKG_LIBS) -lcmocka -lm

# A daemon's unit tests (D_TESTS) see its folder and link D_OBJS.
define daemon_unit_rule
$$(BUILD)/tests/$(2): $$($(1)_OBJS)
$$(BUILD)/tests/$(2): UNIT_DAEMON_OBJS = $$($(1)_OBJS)
$$(BUILD)/tests/$(2): UNIT_DAEMON_INCLUDES = -I$$(BUILD)/include/$(1)
endef
$(foreach d,$(DAEMONS),$(foreach t,$(filter test_%,$($(d)_TESTS)),\
    $(eval $(call daemon_unit_rule,$(d),$(t)))))

deps:
	@scripts/deps.sh test

# unit: every cmocka binary; counts go to $(BUILD)/results/unit.counts
unit: $(UNIT_BINS) all
	@scripts/run-unit.sh $(BUILD) $(UNIT_BINS)

# integration: the black-box pytest suite against the programs in $(BIN)
# (and the test tools of tests/tools/module.mk in $(BUILD)/tools)
integration: all $(TOOLS)
	@scripts/run-integration.sh $(BUILD) $(BIN)

# acceptance: the outside black-box suite ../shared/acceptance (when it is
# there) against the programs in $(BIN); counts in $(BUILD)/results
acceptance: all
	@scripts/run-acceptance.sh $(BUILD) $(BIN)

# soak: the fault-injection soak (tests/soak/, issue 14) on $(SOAK_BIN), by
# default this build's $(BIN) (SAN=1: build/san/bin); not part of check
.PHONY: soak
soak: all
	scripts/soak.sh $(or $(SOAK_BIN),$(BIN))

# bench: every benchmark side by side with Postfix/unbound in one run, then
# bench/RESULTS.md's generated sections (bench/all.sh; root; RUNS=3,
# QUICK=1 for a fast check that leaves RESULTS.md alone)
bench: all
	@bench/all.sh $(BIN)

# tools: only the test tools (tests/tools/module.mk)
tools: $(TOOLS)

san-check:
	$(MAKE) SAN=1 all
	$(MAKE) SAN=1 unit
	$(MAKE) SAN=1 integration

# check-includes: the include lines of common/, queue/ and daemons/ keep to
# the build boundaries; counts go to $(BUILD)/results/includes.counts
check-includes:
	@$(PYTHON) scripts/check-includes.py $(BUILD)/results

# check: every stage (see scripts/check.sh), closing with "N passed, N failed, N skipped"
check:
	@MAKE="$(MAKE)" scripts/check.sh

# ----------------------------------------------------------------- fuzz ----
FUZZ_SRCS := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BINS := $(FUZZ_SRCS:tests/fuzz/%.c=$(FUZZ_BUILD)/%)
FUZZ_CFLAGS = -std=c11 -O1 -g $(WARN) $(DEFS) $(PKG_CFLAGS) \
              -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all -DONEHOP_FUZZING \
              -MMD -MP
FUZZ_LIB_OBJS := $(LIB_SRCS:%.c=$(FUZZ_BUILD)/%.o)

$(FUZZ_BUILD)/%.o: %.c | $(call include_links,$(FUZZ_BUILD))
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) $(call folder_includes,$<,$(FUZZ_BUILD)) -c -o $@ $<

$(FUZZ_BUILD)/libonehop.a: $(FUZZ_LIB_OBJS)
	rm -f $@
	ar rcs $@ $^

$(FUZZ_BUILD)/fuzz_%: tests/fuzz/fuzz_%.c $(FUZZ_BUILD)/libonehop.a | $(call include_links,$(FUZZ_BUILD))
	$(FUZZ_CC) $(FUZZ_CFLAGS) -Icommon -Iqueue $(FUZZ_DAEMON_INCLUDES) -fsanitize=fuzzer -o $@ $< \
	    $(FUZZ_DAEMON_OBJS) $(FUZZ_BUILD)/libonehop.a $(PKG_LIBS) -lm

# A daemon's fuzz targets (D_TESTS) see its folder and link its private objects.
define daemon_fuzz_rule
$$(FUZZ_BUILD)/$(2): $$($(1)_FUZZ_OBJS)
$$(FUZZ_BUILD)/$(2): FUZZ_DAEMON_OBJS = $$($(1)_FUZZ_OBJS)
$$(FUZZ_BUILD)/$(2): FUZZ_DAEMON_INCLUDES = -I$$(FUZZ_BUILD)/include/$(1)
endef
$(foreach d,$(DAEMONS),$(foreach t,$(filter fuzz_%,$($(d)_TESTS)),\
    $(eval $(call daemon_fuzz_rule,$(d),$(t)))))

fuzz-build: $(FUZZ_BINS)

# fuzz-smoke: every target replays its seed corpus (part of make check)
fuzz-smoke: fuzz-build
	@scripts/run-fuzz.sh smoke $(FUZZ_BUILD) build/normal/results $(FUZZ_BINS)

fuzz: fuzz-build
	@scripts/run-fuzz.sh $(FUZZ_SECONDS) $(FUZZ_BUILD) build/fuzz/results $(FUZZ_BINS)

# fuzz-long: each target (FUZZ_TARGETS, default all) for FUZZ_LONG_SECONDS, FUZZ_JOBS at a
# time under nice, with per-target figures and the corpus minimised into tests/fuzz/corpus
FUZZ_LONG_SECONDS ?= 1800
fuzz-long: fuzz-build
	@FUZZ_SECONDS=$(FUZZ_LONG_SECONDS) FUZZ_BUILD=$(FUZZ_BUILD) scripts/fuzz-long.sh $(FUZZ_TARGETS)

# ------------------------------------------------------------------ run ----
# RUN_DIR: the instance's directory; RUN_SMTP: its smtp_listen (both only
# for the configuration of the first run: later runs keep run/onehop.conf)
RUN_DIR  ?= run
RUN_SMTP ?= 127.0.0.1:2525
run: all
	@scripts/deps.sh run
	@scripts/make-run.sh $(BIN) $(RUN_DIR) $(RUN_SMTP)

# -------------------------------------------------------------- install ----
# INSTALL has the whole story. Commands into SBINDIR, daemons into
# LIBEXECDIR (the installed onehop.conf's daemon_dir), man pages, the
# systemd unit into UNITDIR, a configuration in SYSCONFDIR (never
# overwritten); as root with DESTDIR empty also the SPEC 7 accounts, the
# queue and run directories, and onehop-queue set-uid (install-config.sh).
UNITDIR  ?= $(PREFIX)/lib/systemd/system
MAN_PAGES := $(wildcard docs/man/*.[1-8])
INSTALL_DAEMONS  = $(filter onehop-%,$(PROGRAMS))
INSTALL_COMMANDS = $(filter-out onehop-%,$(PROGRAMS)) $(foreach l,$(LINKS),$(word 1,$(subst =, ,$l)))

.PHONY: uninstall install-sendmail
install: all
	@scripts/install-sendmail.sh guard "$(DESTDIR)" "$(SBINDIR)"
	@grep -qaP '\Q$(SYSCONFDIR)\E\x00' $(BIN)/onehop-queue || echo "make install: warning:" \
	    "$(BIN) was built for another SYSCONFDIR than $(SYSCONFDIR): the programs' default" \
	    "configuration (and onehop-queue's set-uid privilege) stays the old one;" \
	    "make clean && make SYSCONFDIR=$(SYSCONFDIR) first (INSTALL)" >&2
	install -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(LIBEXECDIR) $(DESTDIR)$(SYSCONFDIR)
	for p in $(filter-out onehop-%,$(PROGRAMS)); do install -m 755 $(BIN)/$$p $(DESTDIR)$(SBINDIR)/$$p; done
	for l in $(LINKS); do ln -f $(DESTDIR)$(SBINDIR)/$${l#*=} $(DESTDIR)$(SBINDIR)/$${l%%=*}; done
	for p in $(INSTALL_DAEMONS); do install -m 755 $(BIN)/$$p $(DESTDIR)$(LIBEXECDIR)/$$p; done
	for m in $(MAN_PAGES); do s=$${m##*.}; install -d $(DESTDIR)$(MANDIR)/man$$s; \
	    install -m 644 $$m $(DESTDIR)$(MANDIR)/man$$s/; done
	@scripts/install-config.sh "$(DESTDIR)" "$(SYSCONFDIR)" "$(LIBEXECDIR)"
	@scripts/install-unit.sh install "$(DESTDIR)" "$(UNITDIR)" "$(SBINDIR)" "$(SYSCONFDIR)"
	$(DESTDIR)$(SBINDIR)/onehop -C $(DESTDIR)$(SYSCONFDIR) check
	@echo "make install: done; next: INSTALL \"Replacing Postfix on Debian\" (make install-sendmail, systemctl enable --now onehop)"

# /usr/sbin/sendmail, /usr/lib/sendmail, /usr/bin/mailq, /usr/bin/newaliases
# -> the installed commands; what was there kept as NAME.pre-onehop
install-sendmail:
	@test -x $(DESTDIR)$(SBINDIR)/sendmail || { echo "make install-sendmail: no $(DESTDIR)$(SBINDIR)/sendmail: run make install first" >&2; exit 1; }
	@scripts/install-sendmail.sh install "$(DESTDIR)" "$(SBINDIR)"

# removes what install and install-sendmail put in place; keeps SYSCONFDIR,
# the queue and the accounts (INSTALL "Going back")
uninstall:
	@scripts/install-unit.sh uninstall "$(DESTDIR)" "$(UNITDIR)" "$(SBINDIR)" "$(SYSCONFDIR)"
	@scripts/install-sendmail.sh uninstall "$(DESTDIR)" "$(SBINDIR)"
	for p in $(INSTALL_COMMANDS); do rm -f $(DESTDIR)$(SBINDIR)/$$p; done
	for p in $(INSTALL_DAEMONS); do rm -f $(DESTDIR)$(LIBEXECDIR)/$$p; done
	-rmdir $(DESTDIR)$(LIBEXECDIR) 2>/dev/null
	for m in $(MAN_PAGES); do rm -f $(DESTDIR)$(MANDIR)/man$${m##*.}/$${m##*/}; done
	@echo "make uninstall: kept $(DESTDIR)$(SYSCONFDIR), the queue and the accounts (INSTALL \"Going back\")"

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf build bin

-include $(LIB_OBJS:.o=.d) $(foreach p,$(PROGRAMS),$($(p)_SRCS:%.c=$(BUILD)/%.d)) $(UNIT_BINS:=.d)
-include $(FUZZ_LIB_OBJS:.o=.d) $(foreach d,$(DAEMONS),$($(d)_FUZZ_OBJS:.o=.d)) $(FUZZ_BINS:=.d)
ifneq ($(strip $(INJECT_CC)),)
-include $(INJECT_LIB_OBJS:.o=.d) $(foreach p,$(INJECT_PROGRAMS),$($(p)_SRCS:%.c=$(INJECT_BUILD)/%.d))
endif
