# daemons/router: onehop-router, the queue manager (issue 11): learns new
# mail, routes each recipient (common/routing), hands jobs to onehop-remote,
# records every outcome in the state journal (queue/state.h) and asks the
# cleaner to take and remove files. Every file of this folder is compiled
# into onehop-router only.
#
# router_PRIVATE: the modules the unit tests link as well.
router_PRIVATE = \
	daemons/router/retry.c \
	daemons/router/bounce.c \
	daemons/router/memo.c \
	daemons/router/destination.c \
	daemons/router/incoming_watch.c
router_TESTS = test_router_retry test_router_bounce test_router_memo test_router_destination \
	test_router_watch fuzz_bounce

PROGRAMS += onehop-router
onehop-router_SRCS = \
	daemons/router/main.c \
	daemons/router/cleaner_link.c \
	daemons/router/dispatch.c \
	daemons/router/control.c \
	daemons/router/rmetrics.c \
	$(router_PRIVATE) \
	$(DAEMON_LINK_UV)
