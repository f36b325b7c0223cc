"""Lava can be imported through lava-gle after the start method was fixed (tqdm does that)."""
from __future__ import annotations

import subprocess
import sys

from conftest import REPO


def _python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                          text=True, timeout=120)


def test_lava_imports_after_tqdm_fixed_the_start_method():
    done = _python("from tqdm.auto import tqdm; tqdm(range(1), disable=True)\n"
                   "import multiprocessing as mp; assert mp.get_start_method(allow_none=True)\n"
                   "import lava_gle.mappings.runtime; print(mp.get_start_method())")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "fork"


def test_other_start_method_is_a_clear_error():
    done = _python("import multiprocessing as mp; mp.set_start_method('spawn')\n"
                   "from lava_gle.errors import LavaGleError\n"
                   "try:\n    import lava_gle.mappings.runtime\n"
                   "except LavaGleError as exc:\n    print(exc)")
    assert done.returncode == 0, done.stderr
    assert "needs the 'fork' multiprocessing start method" in done.stdout
