# daemons/remote: onehop-remote, the SMTP client daemon (issue 10). Every
# file of this folder is compiled into onehop-remote only; its protocol with
# the router is common/remote_proto.c.
#
# remote_PRIVATE: the modules the unit tests link as well (remote_OBJS).
remote_PRIVATE = \
	daemons/remote/classify.c \
	daemons/remote/smtp_wire.c \
	daemons/remote/mxorder.c
remote_TESTS = test_remote_classify test_smtp_wire test_mxorder fuzz_remote fuzz_mxorder

PROGRAMS += onehop-remote
onehop-remote_SRCS = \
	daemons/remote/main.c \
	daemons/remote/delivery.c \
	daemons/remote/session.c \
	daemons/remote/tls.c \
	daemons/remote/xmetrics.c \
	$(remote_PRIVATE) \
	$(DAEMON_LINK_UV)
