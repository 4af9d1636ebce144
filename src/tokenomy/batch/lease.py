"""Who holds a batch job's lease: ``host:pid:nonce``, and whether that process is gone.

The job store (:class:`tokenomy.batch.store.JobStore`) keeps the lease in the job row; a holder
that died on this host is taken over at once, any other after its lease expires.
"""

from __future__ import annotations

import os
import secrets
import socket
from pathlib import Path

__all__ = ["lease_owner_id", "owner_is_dead"]


def _this_host() -> str:
    return socket.gethostname()


def lease_owner_id() -> str:
    """``host:pid:nonce`` — who runs a job; the pid lets a successor see that it died."""
    return f"{_this_host()}:{os.getpid()}:{secrets.token_hex(4)}"


def _pid_alive(pid: int) -> bool:
    if Path("/proc/self/stat").exists():
        # A SIGKILLed process stays a zombie until its parent reaps it: dead all the same.
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except FileNotFoundError:
            return False
        except OSError:
            pass
        else:
            return stat.rpartition(")")[2].split()[:1] != ["Z"]
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def owner_is_dead(owner: str) -> bool:
    """Whether ``owner`` (see :func:`lease_owner_id`) is a process on this host that is gone."""
    host, _, rest = owner.partition(":")
    pid_text = rest.partition(":")[0]
    if host != _this_host() or not pid_text.isdigit():
        return False
    return not _pid_alive(int(pid_text))
