"""A running router stood in for: the router holds queue_dir/state/lock
(queue/queue.h locking rule 3), and that lock is exactly what tells the queue
commands, `onehop-queue --recover` and newaliases that a router runs. Shared
by the tests that need "a router runs" without starting one.
"""

import fcntl
import os


class OwnerLock:
    """Hold queue_dir/state/lock as a running router would (a context
    manager: taken on entry without waiting, released and closed on exit)."""

    def __init__(self, mta):
        state = mta.path("queue", "state")
        os.makedirs(state, mode=0o700, exist_ok=True)
        self.file = open(os.path.join(state, "lock"), "a+")

    def __enter__(self):
        fcntl.flock(self.file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return self

    def __exit__(self, *exc):
        fcntl.flock(self.file, fcntl.LOCK_UN)
        self.file.close()
