# daemons/dnscache: onehop-dnscache, the DNS cache daemon (c-ares in a libuv
# loop), and the pieces of it that tests and fuzz targets link directly.
#
# The client side of its protocol lives in common/ (remote, router and the
# `onehop dns` command link it) but is listed here so that one fragment owns
# every file of the DNS cache.
LIB_SRCS += \
	common/siphash.c \
	common/dnsproto.c \
	daemons/dnscache/dns_msg.c \
	daemons/dnscache/dns_answer.c \
	daemons/dnscache/dns_cache.c
