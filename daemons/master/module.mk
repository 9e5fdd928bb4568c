# daemons/master: onehop-master, which starts, supervises and stops the
# daemons (daemons/master/table.c lists them), and the master link every
# daemon speaks: common/daemon_link.c (plain, musl too: in the library),
# common/daemon_link_uv.c (libuv: linked into each libuv daemon the master
# starts; a new daemon adds $(DAEMON_LINK_UV) to its NAME_SRCS), and the
# control socket's records (common/master_proto.c, for `onehop`).
LIB_SRCS += common/daemon_link.c common/master_proto.c common/confcheck.c
DAEMON_LINK_UV = common/daemon_link_uv.c
onehop-dnscache_SRCS += $(DAEMON_LINK_UV)

PROGRAMS += onehop-master
onehop-master_SRCS = \
	daemons/master/main.c \
	daemons/master/table.c \
	daemons/master/account.c \
	daemons/master/spawn.c \
	daemons/master/listen.c \
	daemons/master/supervise.c \
	daemons/master/control.c \
	daemons/master/scrape.c \
	daemons/master/pidfile.c
