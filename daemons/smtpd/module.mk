# daemons/smtpd: onehop-smtpd, the ESMTP server (issue 13), and its
# `--bs` mode for sendmail -bs. Every file of this folder is compiled into
# onehop-smtpd only; it talks to `onehop-queue --server` by
# queue/inject_proto.h.
#
# smtpd_PRIVATE: the modules unit tests and fuzz targets link as well.
smtpd_PRIVATE = \
	daemons/smtpd/smtp_proto.c \
	daemons/smtpd/relay.c \
	daemons/smtpd/received.c
smtpd_TESTS = test_smtp_proto fuzz_smtpd fuzz_relay

PROGRAMS += onehop-smtpd
onehop-smtpd_SRCS = \
	daemons/smtpd/main.c \
	daemons/smtpd/session.c \
	daemons/smtpd/clientname.c \
	daemons/smtpd/qclient.c \
	daemons/smtpd/bs.c \
	daemons/smtpd/smetrics.c \
	$(smtpd_PRIVATE) \
	$(DAEMON_LINK_UV)
