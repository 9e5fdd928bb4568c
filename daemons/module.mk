# daemons/: one folder per daemon plus the `onehop` admin command; each folder
# has its own module.mk fragment.
-include daemons/admin/module.mk
-include daemons/dnscache/module.mk
-include daemons/router/module.mk
-include daemons/remote/module.mk
-include daemons/smtpd/module.mk
-include daemons/local/module.mk
-include daemons/master/module.mk
