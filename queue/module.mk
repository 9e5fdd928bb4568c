# queue/: the queue library, onehop-queue, the sendmail front end and the
# queue inspection code (see ../Makefile). Library files only once they
# compile cleanly.
LIB_SRCS += \
	queue/addrlist.c \
	queue/header.c \
	queue/msgprep.c
