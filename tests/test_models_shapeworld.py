"Integration tests of the shipped ShapeWorld model (datasetdm_nb/weights/shapeworld)."
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

from datasetdm_nb.models import load_pipeline, shapeworld_model_path


def test_shipped_model_is_small_and_loads_with_diffusers():
    from diffusers import StableDiffusionPipeline
    folder = shapeworld_model_path()
    size = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
    assert size <= 25 * 2**20, f"{size / 2**20:.1f} MB"
    pipe = StableDiffusionPipeline.from_pretrained(folder)
    assert pipe.unet.config.sample_size * pipe.vae_scale_factor == 64


def test_shipped_model_generates_fp32_on_cpu():
    pipe = load_pipeline("shapeworld")
    assert pipe.unet.dtype == torch.float32 and pipe.device.type == "cpu"
    img = pipe("a red circle", num_inference_steps=10, guidance_scale=4.0, output_type="np",
               generator=torch.Generator().manual_seed(0)).images[0]
    assert img.shape == (64, 64, 3)
    sky = img[:8].reshape(-1, 3).mean(0)     # a ShapeWorld scene: sky on top (blue-ish), not noise
    assert sky[2] > sky[0] and img[:8].std((0, 1)).max() < 0.12


def test_loading_shows_no_library_notices():
    "Loading pipelines prints nothing: no transformers notice about torchvision, no loading bars, no dtype notice."
    code = "from datasetdm_nb.models import load_pipeline; load_pipeline('shapeworld'); load_pipeline('tiny')"
    root = str(Path(__file__).resolve().parents[1])   # a fresh process: the libraries' notices come once per process
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert run.returncode == 0 and (run.stdout, run.stderr) == ("", ""), run.stderr[-2000:]
