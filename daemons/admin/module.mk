# daemons/admin: the `onehop` command. One file per subcommand.
#
# admin_PRIVATE: the modules the unit tests link as well.
admin_PRIVATE = daemons/admin/qshape.c
admin_TESTS = test_qshape

PROGRAMS += onehop
onehop_SRCS = \
	daemons/admin/onehop.c \
	daemons/admin/cmd_check.c \
	daemons/admin/cmd_queue.c \
	daemons/admin/cmd_qstat.c \
	daemons/admin/cmd_manage.c \
	daemons/admin/cmd_qshape.c \
	daemons/admin/queue_access.c \
	daemons/admin/cmd_dns.c \
	daemons/admin/cmd_master.c \
	daemons/admin/cmd_route.c \
	$(admin_PRIVATE)
