# tests/tools: small C programs the integration tests run (never installed).
# They are built into $(BUILD)/tools/ (run-integration.sh exports that
# directory as ONEHOP_TOOLS), not bin/, and link only against the system
# libraries (c-ares), so they check c-ares' behaviour against our fixtures
# independently of onehop's own code. Only variables and a pattern rule
# here: an explicit target would become the Makefile's default goal.
#   dnsq   c-ares query tool: dnsq -s IP:PORT MX|A|AAAA NAME...

TOOL_NAMES := dnsq
TOOLS      += $(TOOL_NAMES:%=$(BUILD)/tools/%)

$(BUILD)/tools/%: tests/tools/%.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $< $(PKG_LIBS)

# statetool  drives the state side's journal for the crash tests
#            (test_state_crash.py); unlike dnsq it links libonehop.a.
#            statetool append DIR COUNT GROUP CHECKPOINT_EVERY [STEP:N] | dump DIR
# statebench the state side's benchmarks (bench/state_bench.sh), same linking
TOOLS += $(BUILD)/tools/statetool $(BUILD)/tools/statebench

$(BUILD)/tools/state%: tests/tools/state%.c $(BUILD)/libonehop.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Icommon -Iqueue $(LDFLAGS) -o $@ $< $(BUILD)/libonehop.a $(PKG_LIBS) -lm

# remotedrive plays the router towards onehop-remote (remote_proto.h) for
#            test_remote.py: remotedrive CONFDIR ONEHOP_REMOTE [TIMEOUT_S],
#            jobs "MSGID HOPS [RCPT...]" on stdin, results as JSON lines
TOOLS += $(BUILD)/tools/remotedrive
# localdrive and remotedrive share chandrive.c (the router's side of a channel)
CHANDRIVE := tests/tools/chandrive.c tests/tools/chandrive.h

$(BUILD)/tools/remote%: tests/tools/remote%.c $(CHANDRIVE) $(BUILD)/libonehop.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Icommon -Iqueue $(LDFLAGS) -o $@ $< tests/tools/chandrive.c $(BUILD)/libonehop.a $(PKG_LIBS) -lm

# localdrive plays the router towards onehop-local (local_proto.h) for
#            test_local.py: localdrive CONFDIR ONEHOP_LOCAL [TIMEOUT_S],
#            jobs "job MSGID / rcpt ORIGIN ORIGINAL RECIPIENT / end" on stdin,
#            results as JSON lines
TOOLS += $(BUILD)/tools/localdrive

$(BUILD)/tools/local%: tests/tools/local%.c $(CHANDRIVE) $(BUILD)/libonehop.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Icommon -Iqueue $(LDFLAGS) -o $@ $< tests/tools/chandrive.c $(BUILD)/libonehop.a $(PKG_LIBS) -lm
