# daemons/dnscache: onehop-dnscache, the DNS cache daemon (c-ares in a libuv
# loop). Every file of this folder is compiled into onehop-dnscache only;
# its protocol and client are in common/ (dnsproto, dnsclient).
#
# dnscache_PRIVATE: the modules that unit tests and fuzz targets link as
# well (through dnscache_OBJS, see ../../Makefile); dnscache_TESTS: those.
dnscache_PRIVATE = \
	daemons/dnscache/dns_msg.c \
	daemons/dnscache/dns_answer.c \
	daemons/dnscache/dns_cache.c
dnscache_TESTS = test_dns_msg test_dns_answer test_dns_cache fuzz_dns_answer

PROGRAMS += onehop-dnscache
onehop-dnscache_SRCS = \
	daemons/dnscache/main.c \
	daemons/dnscache/upstream.c \
	daemons/dnscache/lookup.c \
	daemons/dnscache/server.c \
	daemons/dnscache/dmetrics.c \
	$(dnscache_PRIVATE)

# bench/dns: the load generator of bench/dns/run.sh, built into
# $(BUILD)/bench/ (never installed); it speaks the protocol of common/. A
# pattern rule, so that it never becomes the Makefile's default goal.
$(BUILD)/bench/dns%: bench/dns/dns%.c $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Icommon $(LDFLAGS) -o $@ $< $(LIB) $(PKG_LIBS) -lm
