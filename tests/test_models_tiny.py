"Unit tests of datasetdm_nb.models on the tiny architecture (seconds; the tiny pipeline itself: nbs/09_testing.ipynb)."
import json

import pytest
import torch

from datasetdm_nb.models import export_pipeline, load_pipeline, shapeworld_tokenizer, train_model
from datasetdm_nb.shapeworld import shapeworld


def test_tokenizer_one_token_per_word():
    tok = shapeworld_tokenizer()
    for s in shapeworld("pool", 300, start=5000):
        words = s.caption.replace(",", " ,").split()
        assert tok.tokenize(s.caption) == [w + "</w>" for w in words]
    assert tok.model_max_length == 77 and tok.pad_token_id == tok.eos_token_id


def test_load_pipeline_errors():
    with pytest.raises(Exception): load_pipeline("/nonexistent/folder")
    assert load_pipeline("tiny").unet.dtype == torch.float32


def test_train_resume_export_roundtrip(tmp_path):
    from diffusers import StableDiffusionPipeline
    run = tmp_path / "run"
    train_model(run, arch="tiny", n=64, vae_steps=4, vae_batch_size=4, steps=6, batch_size=4, log_every=2,
                workers=1, progress=False)
    with pytest.raises(FileExistsError): train_model(run, arch="tiny")
    train_model(run, resume=True, steps=8, batch_size=4, log_every=2, progress=False)
    assert json.loads((run / "checkpoint" / "state.json").read_text())["step"] == 8
    # killed between a save's two steps: only the complete new checkpoint (checkpoint.tmp) is on disk
    (run / "checkpoint").rename(run / "checkpoint.tmp")
    train_model(run, resume=True, steps=10, batch_size=4, log_every=2, progress=False)
    assert json.loads((run / "checkpoint" / "state.json").read_text())["step"] == 10
    steps = [json.loads(l)["step"] for l in open(run / "log.jsonl") if json.loads(l)["stage"] == "unet"]
    assert steps == [2, 4, 6, 8, 10]
    folder = export_pipeline(run, tmp_path / "pipe")
    from safetensors import safe_open
    with safe_open(folder / "unet" / "diffusion_pytorch_model.safetensors", "pt") as f:
        assert f.get_tensor(next(iter(f.keys()))).dtype == torch.float16    # stored in fp16 ...
    plain = StableDiffusionPipeline.from_pretrained(folder, safety_checker=None)   # no dtype: every model in fp32
    assert plain(["a red circle"], num_inference_steps=2).images[0].size == (64, 64)
    assert load_pipeline(str(folder)).unet.dtype == torch.float32         # ... loaded in fp32
    assert (folder / "training_log.jsonl").exists()


def test_train_from_exported_weights(tmp_path):
    "A run started from an exported pipeline (`init`) takes its weights, step, latent scale and log, then trains on."
    from diffusers import UNet2DConditionModel
    run = tmp_path / "run"
    train_model(run, arch="tiny", n=64, vae_steps=4, vae_batch_size=4, steps=6, batch_size=4, log_every=2,
                workers=1, progress=False)
    folder = export_pipeline(run, tmp_path / "pipe")
    run2 = tmp_path / "run2"
    train_model(run2, init=str(folder), steps=6, batch_size=4, log_every=2, workers=1, progress=False)   # no new step
    exported, started = load_pipeline(str(folder)).unet, UNet2DConditionModel.from_pretrained(run2 / "checkpoint" / "unet")
    assert all(torch.equal(p, q) for p, q in zip(exported.parameters(), started.parameters()))
    assert json.loads((run2 / "settings.json").read_text())["arch"] == "tiny"
    from diffusers import AutoencoderKL
    assert AutoencoderKL.load_config(run2 / "vae")["scaling_factor"] == AutoencoderKL.load_config(run / "vae")["scaling_factor"]
    train_model(run2, resume=True, steps=10, batch_size=4, log_every=2, progress=False)
    trained = UNet2DConditionModel.from_pretrained(run2 / "checkpoint" / "unet")
    assert not all(torch.equal(p, q) for p, q in zip(exported.parameters(), trained.parameters()))
    steps = [json.loads(l)["step"] for l in open(run2 / "log.jsonl") if json.loads(l)["stage"] == "unet"]
    assert steps == [2, 4, 6, 8, 10]
    with pytest.raises(FileNotFoundError, match="model_index.json"): train_model(tmp_path / "run3", init=str(tmp_path))


def test_sigterm_stops_training_with_a_checkpoint(tmp_path):
    "SIGTERM in the UNet stage: the run saves a checkpoint and raises KeyboardInterrupt; `resume` goes on from that step."
    import os, signal, subprocess, sys, time
    run = tmp_path / "run"
    script = ("import sys\nfrom datasetdm_nb.models import train_model\ntry:\n"
              f"    train_model({str(run)!r}, arch='tiny', n=32, vae_steps=2, vae_batch_size=4, steps=10**6, batch_size=2, "
              "log_every=1, checkpoint_minutes=10**6, workers=1, progress=False)\n"
              "except KeyboardInterrupt as e: print(e, file=sys.stderr); sys.exit(130)")
    proc = subprocess.Popen([sys.executable, "-c", script], env={**os.environ, "OMP_NUM_THREADS": "1"},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 300
    while not ((run / "log.jsonl").exists() and '"unet"' in (run / "log.jsonl").read_text()):
        assert proc.poll() is None and time.time() < deadline, proc.communicate()
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130 and "with a checkpoint" in err, err
    step = json.loads((run / "checkpoint" / "state.json").read_text())["step"]
    assert 1 <= step < 10**6
    train_model(run, resume=True, steps=step + 2, batch_size=2, log_every=1, progress=False)
    assert json.loads((run / "checkpoint" / "state.json").read_text())["step"] == step + 2


def test_export_before_the_first_log_line(tmp_path):
    "A run shorter than `log_every` has no loss log yet: it exports all the same, without one."
    run = tmp_path / "run"
    train_model(run, arch="tiny", n=16, vae_steps=2, vae_batch_size=4, steps=2, batch_size=2, log_every=25,
                workers=1, progress=False)
    assert not (run / "log.jsonl").exists()
    folder = export_pipeline(run, tmp_path / "pipe")
    assert (folder / "model_index.json").exists() and not (folder / "training_log.jsonl").exists()
