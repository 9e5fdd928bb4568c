# common/: the library every program links (see ../Makefile). Its files see
# only common/ (the include path of this folder).
# Add a file here only once it compiles cleanly (-Wall -Wextra -Werror).
LIB_SRCS += \
	common/buf.c \
	common/mem.c \
	common/log.c \
	common/diag.c \
	common/safeio.c \
	common/json.c \
	common/strparse.c \
	common/netaddr.c \
	common/nexthop.c \
	common/conf.c

# codec: RFC 5321 addresses and the IPC record codec
LIB_SRCS += common/addr.c common/ipc.c

# metrics: the registry every daemon fills and its Prometheus text (metrics.h)
LIB_SRCS += common/metrics.c

# channel: the framing/descriptor core (musl too) and the libuv channel
LIB_SRCS += common/channel_core.c common/channel.c

# maps: the routes, sites and aliases files (SPEC 3, 4, 5)
LIB_SRCS += common/mapfile.c common/routes.c common/sites.c common/aliases.c

# routing: the site graph (Dijkstra, once per load) and the routing decision
# of issue 11 (the router and `onehop route` link it; see routing.h)
LIB_SRCS += common/sitegraph.c common/routing.c

# the DNS cache's protocol (dnsproto.h) and its client (dnsclient.h), which
# remote, router and the `onehop dns` command link; SipHash for hash tables
LIB_SRCS += common/siphash.c common/dnsproto.c common/dnsclient.c

# the router <-> remote records (remote_proto.h); a daemon's main() start (daemon_args.h)
LIB_SRCS += common/remote_proto.c common/daemon_args.c
# the router -> local job record (local_proto.h; results are remote_proto's)
LIB_SRCS += common/local_proto.c
# the decoding steps both job records share (proto_util.h)
LIB_SRCS += common/proto_util.c

# the router's control socket (router_ctl.h): records and the blocking client
LIB_SRCS += common/router_ctl.c

# tls_mem: a TLS session on memory BIOs and the server/client contexts, for
# smtpd's and remote's STARTTLS (OpenSSL; not in the musl injection build)
LIB_SRCS += common/tls_mem.c
