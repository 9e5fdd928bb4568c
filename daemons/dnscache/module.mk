# daemons/dnscache: onehop-dnscache, the DNS cache daemon (c-ares in a libuv
# loop), and the pieces of it that tests and fuzz targets link directly.
#
# The client side of its protocol lives in common/ (remote, router and the
# `onehop dns` command link it) but is listed here so that one fragment owns
# every file of the DNS cache.
LIB_SRCS += \
	common/siphash.c \
	common/dnsproto.c \
	common/dnsclient.c \
	daemons/dnscache/dns_msg.c \
	daemons/dnscache/dns_answer.c \
	daemons/dnscache/dns_cache.c

PROGRAMS += onehop-dnscache
onehop-dnscache_SRCS = \
	daemons/dnscache/main.c \
	daemons/dnscache/upstream.c \
	daemons/dnscache/lookup.c \
	daemons/dnscache/server.c

# bench/dns: the load generator of bench/dns/run.sh, built into
# $(BUILD)/bench/ (never installed). A pattern rule, so that it never
# becomes the Makefile's default goal.
$(BUILD)/bench/dns%: bench/dns/dns%.c $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $< $(LIB) $(PKG_LIBS) -lm
