"""Lava can be imported through lava-gle after the start method was fixed (tqdm does that);
the Lava processes it forks die with their parent."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from conftest import REPO


def _python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                          text=True, timeout=120)


def test_lava_imports_after_tqdm_fixed_the_start_method():
    done = _python("from tqdm.auto import tqdm; tqdm(range(1), disable=True)\n"
                   "import multiprocessing as mp; assert mp.get_start_method(allow_none=True)\n"
                   "import lava_gle.runtime.control; print(mp.get_start_method())")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "fork"


def test_other_start_method_is_a_clear_error():
    done = _python("import multiprocessing as mp; mp.set_start_method('spawn')\n"
                   "from lava_gle.errors import LavaGleError\n"
                   "try:\n    import lava_gle.runtime.control\n"
                   "except LavaGleError as exc:\n    print(exc)")
    assert done.returncode == 0, done.stderr
    assert "needs the 'fork' multiprocessing start method" in done.stdout


def _alive(pid: int) -> bool:
    """The process exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_only_children_forked_inside_the_block_die_with_their_parent():
    done = _python("import multiprocessing as mp, os, signal, time\n"
                   "from lava_gle.runtime.fork_safety import children_die_with_this_thread\n"
                   "def nap():  # without our output pipes, which the test reads to EOF\n"
                   "    os.close(1); os.close(2); time.sleep(60)\n"
                   "ctx = mp.get_context('fork')\n"
                   "with children_die_with_this_thread():\n"
                   "    armed = ctx.Process(target=nap); armed.start()\n"
                   "free = ctx.Process(target=nap); free.start()\n"
                   "print(armed.pid, free.pid, flush=True)\n"
                   "os.kill(os.getpid(), signal.SIGKILL)")
    armed, free = (int(p) for p in done.stdout.split())
    try:
        assert done.returncode == -signal.SIGKILL
        deadline = time.monotonic() + 30
        while _alive(armed) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _alive(armed)
        assert _alive(free)  # forks outside the block are left alone
    finally:
        for pid in (armed, free):
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
