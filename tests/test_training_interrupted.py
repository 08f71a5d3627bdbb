"""Training stopped by real signals (Ctrl-C, SIGTERM, SIGKILL) at several points, then the same command again: it ends
with exactly the weights of a run that never stopped, and no stop leaves a model that loads as if it were finished."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

EXE = str(Path(sys.executable).parent / "datasetdm")
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}   # one thread: the same sums in every run


def _start(args, cwd):
    # Ctrl-C as at a terminal: a shell starts background jobs with SIGINT ignored, which the child would inherit
    return subprocess.Popen([EXE, *map(str, args)], cwd=cwd, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def _run(args, cwd):
    proc = subprocess.run([EXE, *map(str, args)], cwd=cwd, env=ENV, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]


def _wait_for(proc, ready, timeout=300):
    deadline = time.time() + timeout
    while not ready():
        assert proc.poll() is None, proc.communicate()[1][-2000:]
        assert time.time() < deadline, "timed out"
        time.sleep(0.05)


def _interrupted(proc):
    "Ctrl-C or SIGTERM: 'interrupted' as the last line, status 130, no traceback."
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 130 and "Traceback" not in err, err[-2000:]
    assert err.strip().splitlines()[-1].startswith("datasetdm: interrupted"), err[-2000:]


def _same_weights(a, b) -> bool:
    x, y = load_file(a), load_file(b)
    return x.keys() == y.keys() and all(torch.equal(x[k], y[k]) for k in x)


def _progress(path, key):
    return lambda: json.loads(path.read_text())[key] if path.exists() else 0


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    from datasetdm_nb.testing import tiny_random_pipeline
    folder = tmp_path_factory.mktemp("tiny") / "model"
    tiny_random_pipeline().save_pretrained(folder)
    return folder


def test_train_decoder_resumes_after_signals(tiny_model, tmp_path):
    """Ctrl-C while the model loads, SIGKILL after a periodic checkpoint (every 10 epochs), SIGTERM after the resumed
    run's next one (it saves at the end of the epoch it is in): the decoder folder holds only the checkpoint until the
    last run publishes the decoder, whose weights and config are those of an uninterrupted run. 40 epochs: on a busy
    machine the poll may miss a checkpoint, and the windows stay seconds wide."""
    args = lambda out: ["train-decoder", "--model", tiny_model, "--out", out, "--n", 4, "--epochs", 40, "--val-n", 0,
                        "--train-batch-size", 4]
    _run(args("ref"), tmp_path)
    out = tmp_path / "decoder"
    epoch = _progress(out / "checkpoint" / "progress.json", "epoch")
    proc = _start(args(out), tmp_path); time.sleep(3); proc.send_signal(signal.SIGINT); _interrupted(proc)
    assert not (out / "config.json").exists()
    proc = _start(args(out), tmp_path); _wait_for(proc, lambda: epoch() >= 10); proc.kill(); proc.wait()
    killed = epoch()
    assert killed in (10, 20) and not (out / "config.json").exists()
    proc = _start(args(out), tmp_path); _wait_for(proc, lambda: epoch() > killed); proc.send_signal(signal.SIGTERM); _interrupted(proc)
    assert killed < epoch() < 40 and not (out / "config.json").exists()
    _run(args(out), tmp_path)
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "diffusion_pytorch_model.safetensors", "training_log.json"]
    assert _same_weights(out / "diffusion_pytorch_model.safetensors", tmp_path / "ref" / "diffusion_pytorch_model.safetensors")
    config = lambda d: {k: v for k, v in json.loads((d / "config.json").read_text()).items() if k != "_name_or_path"}
    assert config(out) == config(tmp_path / "ref")                   # diffusers records the folder it loaded from


def test_train_downstream_resumes_after_signals(tmp_path):
    """SIGTERM a second into training (a checkpoint at that step), then SIGKILL after the periodic checkpoint of step
    250: no model/ or training.json until the last run, whose weights and loss history are an uninterrupted run's."""
    args = lambda out: ["train-downstream", "--out", out, "--data", "shapeworld:8", "--steps", 300, "--train-batch-size", 2]
    _run(args("ref"), tmp_path)
    out = tmp_path / "run"
    step = _progress(out / "checkpoint" / "progress.json", "step")
    proc = _start(args(out), tmp_path); _wait_for(proc, out.exists); time.sleep(1); proc.send_signal(signal.SIGTERM)
    _interrupted(proc)
    assert 0 < step() < 250 and not (out / "model").exists() and not (out / "training.json").exists()
    proc = _start(args(out), tmp_path); _wait_for(proc, lambda: step() >= 250); proc.kill(); proc.wait()
    assert step() == 250 and not (out / "model").exists() and not (out / "training.json").exists()
    _run(args(out), tmp_path)
    assert _same_weights(out / "model" / "model.safetensors", tmp_path / "ref" / "model" / "model.safetensors")
    history = lambda run: json.loads((run / "training.json").read_text())["history"]
    assert history(out) == history(tmp_path / "ref") and not (out / "checkpoint").exists()
