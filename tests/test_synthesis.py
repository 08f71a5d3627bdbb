"Synthesis across processes and interruptions: the dataset on disk is the same file for file."
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from datasetdm_nb.testing import dataset_files, differing_files

ARGS = ["--n", 12, "--batch-size", 2, "--steps", 3, "--seed", 5]


@pytest.fixture(scope="module")
def tiny_parts(tmp_path_factory):
    "A tiny random pipeline and a random decoder made for it, saved as a user would have them."
    from datasetdm_nb.testing import random_decoder, tiny_random_pipeline
    root = tmp_path_factory.mktemp("parts")
    pipe = tiny_random_pipeline()
    dec = random_decoder(pipe)
    pipe.save_pretrained(root / "model")
    dec.save_pretrained(root / "decoder")
    prompts = root / "prompts.jsonl"
    prompts.write_text("".join(json.dumps({"prompt": p}) + "\n" for p in
                               ["a red star", "a person in blue", "a white circle and a yellow square"]))
    return root


def _generate(tiny_parts, out, *extra, launcher=()):
    exe = Path(sys.executable).parent / "datasetdm"
    cmd = [*launcher, str(exe), "generate", "--model", tiny_parts / "model", "--decoder", tiny_parts / "decoder",
           "--prompts", tiny_parts / "prompts.jsonl", "--out", out, *ARGS, *extra]
    return [str(c) for c in cmd]


def test_two_processes_write_the_same_dataset_as_one(tiny_parts, tmp_path):
    """The thread count changes the order of float sums, so `generate` fixes its own (one per process): one process,
    with the environment as it is, writes what two processes under `accelerate launch` write, and what two worker
    processes started by a caller that asks OpenMP for two threads write, file for file."""
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    one = subprocess.run(_generate(tiny_parts, tmp_path / "one", "--workers", 1), capture_output=True, text=True,
                         timeout=600, env=env)
    assert one.returncode == 0, one.stderr
    accelerate = [str(Path(sys.executable).parent / "accelerate"), "launch", "--cpu", "--num_processes", "2",
                  "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no"]
    two = subprocess.run(_generate(tiny_parts, tmp_path / "two", launcher=accelerate), capture_output=True, text=True,
                         timeout=900, env=env)
    assert two.returncode == 0, two.stderr[-3000:]
    a = dataset_files(tmp_path / "one")
    assert sum(k.startswith("images/0") for k in a) == 12
    assert differing_files(tmp_path / "one", tmp_path / "two") == []
    pool = subprocess.run(_generate(tiny_parts, tmp_path / "pool", "--workers", 2), capture_output=True, text=True,
                          timeout=600, env={**env, "OMP_NUM_THREADS": "2"})
    assert pool.returncode == 0, pool.stderr[-3000:]
    assert differing_files(tmp_path / "one", tmp_path / "pool") == []


def test_sigkill_then_rerun_equals_an_uninterrupted_run(tiny_parts, tmp_path):
    ref = subprocess.run(_generate(tiny_parts, tmp_path / "ref"), capture_output=True, text=True, timeout=600)
    assert ref.returncode == 0, ref.stderr
    out = tmp_path / "killed"
    proc = subprocess.Popen(_generate(tiny_parts, out), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while time.time() < deadline and len(list((out / "labels").glob("*.json"))) < 3 and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL); proc.wait()
    done = len(list((out / "labels").glob("*.json")))
    assert 0 < done < 12, f"the kill should land mid-run ({done} samples written)"
    assert not (out / "annotations.json").exists()
    again = subprocess.run(_generate(tiny_parts, out), capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr
    assert differing_files(out, tmp_path / "ref") == []


def test_resume_with_other_settings_is_refused(tiny_parts, tmp_path):
    ok = subprocess.run(_generate(tiny_parts, tmp_path / "d"), capture_output=True, text=True, timeout=600)
    assert ok.returncode == 0, ok.stderr
    cmd = _generate(tiny_parts, tmp_path / "d")
    cmd[cmd.index("--seed") + 1] = "6"
    bad = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert bad.returncode == 2 and bad.stderr.strip().splitlines()[-1].startswith("datasetdm: error:")
    assert "seed" in bad.stderr and "Traceback" not in bad.stderr
