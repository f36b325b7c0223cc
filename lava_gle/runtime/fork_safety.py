"""How lava-gle forks Lava's OS processes: start method and parent-death signal.

Lava's runtime module calls ``multiprocessing.set_start_method('fork')`` (without
``force``) when it is imported, which raises ``RuntimeError: context has already been
set`` if anything fixed the start method first, even to ``fork``. tqdm does, by
creating its multiprocessing lock on the first progress bar. The Lava-facing packages
of lava-gle call :func:`prepare_for_lava` before importing Lava.

Lava's forked processes (runtime service, ProcessModels, shared-memory manager) do not
notice when the host dies: after a SIGKILL of the host they would wait forever, each
holding its memory and the shared-memory segments. :func:`children_die_with_this_thread`
makes the kernel kill them instead (Linux ``PR_SET_PDEATHSIG``).
"""
from __future__ import annotations

import ctypes
import multiprocessing
import multiprocessing.context
import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from lava_gle.errors import LavaGleError


def prepare_for_lava() -> None:
    """Let Lava's import set the ``fork`` start method; refuse any other method clearly.

    Idempotent. If the method is already ``fork`` it is un-set, so Lava's own call sets
    the same method again; ``spawn``/``forkserver`` raise :class:`LavaGleError`.
    """
    if "lava.magma.runtime.message_infrastructure.multiprocessing" in sys.modules:
        return  # Lava is imported already: it set 'fork' itself
    method = multiprocessing.get_start_method(allow_none=True)
    if method is None:
        return
    if method != "fork":
        raise LavaGleError(
            f"Lava needs the 'fork' multiprocessing start method, but this program already "
            f"set {method!r}; call multiprocessing.set_start_method('fork', force=True) "
            f"before using lava-gle's Lava backends")
    multiprocessing.context._default_context._actual_context = None


_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
#: forking thread's ident -> pid of the process that armed it (see children_die_with_this_thread)
_armed: dict[int, int] = {}
_prctl = None  # libc's prctl, looked up on first use; False where there is none


def _libc_prctl():
    """libc's ``prctl`` (False off Linux); installs the fork hook on the first call."""
    global _prctl
    if _prctl is None:
        _prctl = False
        if sys.platform.startswith("linux"):
            try:
                _prctl = ctypes.CDLL(None, use_errno=True).prctl  # libc, linked into Python
                os.register_at_fork(after_in_child=_die_with_parent)
            except (OSError, AttributeError):
                _prctl = False
    return _prctl


def _die_with_parent() -> None:
    """In a freshly forked child: ask for SIGKILL when the forking thread ends, if armed."""
    parent = _armed.get(threading.get_ident())  # the child's thread has the forker's ident
    _armed.clear()  # the child's own forks are not armed
    if parent is None:
        return
    _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)  # if it fails, the child just lives on
    if os.getppid() != parent:  # the parent died before prctl: no signal will come
        os._exit(1)


@contextmanager
def children_die_with_this_thread() -> Iterator[None]:
    """Processes that this thread forks inside the block are killed (SIGKILL) by the kernel
    when this thread ends, normally or not (e.g. the host gets SIGKILL or runs out of memory).

    Linux only (``prctl(PR_SET_PDEATHSIG)``, set in each child right after the fork); a
    no-op elsewhere. The signal follows the forking *thread*: the children must not be
    needed after the thread that created them finishes. Forks that skip Python's fork
    hooks (``subprocess`` without ``preexec_fn``, e.g. multiprocessing's resource tracker)
    are not affected, nor are other threads' forks.
    """
    if not _libc_prctl():
        yield
        return
    me = threading.get_ident()
    _armed[me] = os.getpid()
    try:
        yield
    finally:
        _armed.pop(me, None)
