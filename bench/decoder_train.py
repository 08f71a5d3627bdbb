"""Train a decoder on ShapeWorld's train split and evaluate it on the test split; prints one JSON line.

    python bench/decoder_train.py --task semantic --n 100 --epochs 60 --test-n 200 [--out DIR] [--model shapeworld]

Options for the ablations: --no-attention (features alone), --attention caption class (which maps), --resolutions 16 8 (UNet
feature grids used), --vae-features [32 64] (VAE-decoder feature grids; none: UNet features only), --timestep T (inversion timestep). Run each configuration in its own process (timings are per process)."""
import argparse, json, os, time

import torch

p = argparse.ArgumentParser()
p.add_argument("--task", default="semantic")
p.add_argument("--model", default="shapeworld", help="'shapeworld', 'tiny', 'random' (ShapeWorld architecture, random weights) or a folder")
p.add_argument("--n", type=int, default=100)
p.add_argument("--epochs", type=int, default=None)
p.add_argument("--test-n", type=int, default=200)
p.add_argument("--width", type=int, default=64)
p.add_argument("--upsample-layers", type=int, default=None, help="default: 1 without VAE features, else 0")
p.add_argument("--batch-size", type=int, default=8)
p.add_argument("--lr", type=float, default=2e-3)
p.add_argument("--timestep", type=int, default=None)
p.add_argument("--method", default="noise")
p.add_argument("--no-attention", action="store_true")
p.add_argument("--attention", nargs="+", default=["caption"], help="attention sources: caption and/or class")
p.add_argument("--augment", action="store_true")
p.add_argument("--resolutions", type=int, nargs="*", default=None)
p.add_argument("--vae-features", type=int, nargs="*", default=None, help="VAE-decoder feature heights (none given: none; default: the decoder's)")
p.add_argument("--threads", type=int, default=2)
p.add_argument("--cache", default=None, help="feature cache folder")
p.add_argument("--out", default=None)
p.add_argument("--tag", default="")
a = p.parse_args()
torch.set_num_threads(a.threads)

from datasetdm_nb.decoder_training import evaluate_decoder, train_decoder
from datasetdm_nb.models import build_pipeline, load_pipeline
from datasetdm_nb.shapeworld import shapeworld

pipe = build_pipeline() if a.model == "random" else load_pipeline(a.model)
t0 = time.perf_counter()
dec, log = train_decoder(a.task, n=a.n, epochs=a.epochs, out=a.out, pipe=pipe, batch_size=a.batch_size, lr=a.lr,
                         timestep=a.timestep, method=a.method, width=a.width, upsample_layers=a.upsample_layers, attention=() if a.no_attention else a.attention,
                         resolutions=a.resolutions, vae_features=a.vae_features, augment=a.augment, val_n=0, cache_dir=a.cache, progress=False)
total = time.perf_counter() - t0
t1 = time.perf_counter()
metrics = evaluate_decoder(dec, pipe, shapeworld("test", a.test_n), cache_dir=a.cache, progress=False)
metrics.pop("IoU", None)
from pathlib import Path
from datasetdm_nb.models import shapeworld_model_path
info = Path(shapeworld_model_path() if a.model == "shapeworld" else a.model) / "training.json"
step = json.loads(info.read_text()).get("step") if info.exists() else None
print(json.dumps(dict(tag=a.tag, task=a.task, model=a.model, model_step=step, model_hash=dec.config.provenance["model_hash"], n=a.n, epochs=log["epochs"], width=a.width, upsample_layers=dec.config.upsample_layers,
                      vae_features=dec.config.provenance.get("vae_features", []), attention=[] if a.no_attention else a.attention, resolutions=a.resolutions, timestep=dec.config.provenance["timestep"],
                      method=a.method, augment=a.augment, fit_seconds=log["train_seconds"], total_train_seconds=round(total, 1),
                      eval_seconds=round(time.perf_counter() - t1, 1), test_n=a.test_n,
                      final_loss={k: round(v, 4) for k, v in log["history"][-1].items() if k != "epoch"},
                      **{k: round(v, 4) for k, v in metrics.items()})))
