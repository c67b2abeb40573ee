"""Die with your parent: no pool process may outlive a killed worker.

A worker killed with SIGKILL (the OOM killer, `kill -9`) gets no chance to
stop its process pool; its forkserver and pool children would live on for
ever, holding memory. Linux's parent-death signal fixes that: the forkserver
arms it by preloading ``workers.forkserver_guard``, and every pool child arms
it again in its initializer, because the setting is cleared on fork. The
worker itself never arms it (a `nohup pipeline worker` must outlive its shell).
"""

from __future__ import annotations

import ctypes
import os
import signal

_PR_SET_PDEATHSIG = 1


def die_with_parent(sig: int = signal.SIGKILL) -> None:
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, sig)
    except (OSError, AttributeError):  # not Linux/glibc: nothing we can do cheaply
        return
    if os.getppid() == 1:  # the parent died before we asked: go now
        os._exit(1)
