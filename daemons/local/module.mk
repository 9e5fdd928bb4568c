# daemons/local: onehop-local, the local delivery daemon and its delivery
# agent (issue 12). Every file of this folder is compiled into onehop-local
# only; its protocol with the router is common/local_proto.c.
#
# local_PRIVATE: the modules the unit tests and the fuzz target link as well.
local_PRIVATE = \
	daemons/local/outcome.c \
	daemons/local/msgcopy.c \
	daemons/local/command.c \
	daemons/local/forward.c \
	daemons/local/mailbox.c
local_TESTS = test_local_msgcopy test_local_command test_local_forward test_local_mailbox \
	fuzz_local_forward fuzz_maildirsize

PROGRAMS += onehop-local
onehop-local_SRCS = \
	daemons/local/main.c \
	daemons/local/agent.c \
	$(local_PRIVATE) \
	$(DAEMON_LINK_UV)
