# daemons/admin: the `onehop` command. One file per subcommand.
PROGRAMS += onehop
onehop_SRCS = \
	daemons/admin/onehop.c \
	daemons/admin/cmd_check.c
