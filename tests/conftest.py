import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _datasetdm():
    "The installed console command (next to this interpreter), as a user runs it."
    exe = Path(sys.executable).parent / "datasetdm"
    return str(exe) if exe.exists() else shutil.which("datasetdm")


@pytest.fixture
def cli(tmp_path):
    "Run `datasetdm ARGS...` in a subprocess from `tmp_path`; returns the CompletedProcess."
    def run(*args, timeout=600):
        env = {**os.environ, "MPLBACKEND": "Agg"}
        return subprocess.run([_datasetdm(), *map(str, args)], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=timeout)
    return run


@pytest.fixture(scope="session")
def docs_site(tmp_path_factory):
    "The docs site built from nbs/ as `make docs` builds it (tools/docs.py), in a temporary folder."
    out = tmp_path_factory.mktemp("docs") / "site"
    run = subprocess.run([sys.executable, str(ROOT / "tools" / "docs.py"), "--out", str(out)],
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    return out
