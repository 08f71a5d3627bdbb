"""Labelled vs plain generation at Stable Diffusion 1.5's own size: time and peak memory per image, and where the
labelled pipeline's extra time goes.

    OMP_NUM_THREADS=1 python bench/labelled_throughput_sd.py --images 1 --out bench/labelled_throughput_sd.json
    python bench/labelled_throughput_sd.py --device cuda --images 8 --out bench/labelled_throughput_sd_cuda.json

Model: SD 1.5's architecture with random weights (speed and memory depend on the architecture only): the UNet from its
published config (`models.sd_unet_config("sd15")`, 860M parameters), an SD-sized AutoencoderKL (SD 1.5's VAE config:
channels 128/256/512/512, two layers per block, 84M parameters), and a CLIP text encoder from SD 1.5's text config
(12 layers of width 768, 123M parameters) over the ShapeWorld tokenizer. 512 x 512 pixels (64 x 64 latents),
`--steps` denoising steps (default 2), guidance 5, one image per call. The labelled pipeline is `DatasetDMPipeline`
with a perception decoder built for these channels (`decoder_training.new_decoder`, width 64, every task head, the
VAE decoder's features at 2x and 4x the latent grid, as the shipped decoder reads them).

Each configuration runs in a process of its own (peak memory cannot be reset inside one), `--pairs` times, the
order within a pair alternating; a process builds the pipeline, makes one warm-up call (the labelled one's builds
its decoder from a captured bundle), then times `--images` calls and writes each image (plain: its PNG; labelled:
`DatasetWriter.add`, every label file). Timers: process CPU time (user + system; on a CPU, robust to a busy
machine) and wall time, with forward hooks around the UNet and the VAE decoder, and around the decoder's labelling
(`label_bundle`). Where the extra time goes:

- capture: the UNet's extra time (attention probabilities and feature copies at the last step) plus the rest of the
  call's (text encoding, scheduler, assembling the bundle), labelled minus plain;
- VAE-decoder features: the VAE decoder's extra time (its hooked up-block outputs);
- decoder forward: `label_bundle` (the decoder's forward and post-processing into a `Sample`);
- writing: `DatasetWriter.add` minus saving the plain PNG.

Targets (issue 27): labelled throughput >= 0.95x plain, peak memory <= 1.10x. On a CPU the ratios use CPU seconds;
on CUDA (fp16, timers synchronised) wall seconds and `torch.cuda.max_memory_allocated`.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROMPT = "a big red star and a small blue circle next to a person in white on the grass"


def build(device: str, size: int):
    "SD 1.5's architecture, random weights, as a StableDiffusionPipeline."
    import torch
    from diffusers import AutoencoderKL, DPMSolverMultistepScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel
    from datasetdm_nb.models import SCHEDULE, sd_unet_config, shipped_tokenizer
    tok = shipped_tokenizer()
    dtype = torch.float16 if device == "cuda" else torch.float32
    torch.manual_seed(0)
    te = CLIPTextModel(CLIPTextConfig(vocab_size=len(tok), hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
                                      num_attention_heads=12, max_position_embeddings=tok.model_max_length,
                                      projection_dim=768, hidden_act="quick_gelu", bos_token_id=0, eos_token_id=1,
                                      pad_token_id=1))
    vae = AutoencoderKL(in_channels=3, out_channels=3, block_out_channels=(128, 256, 512, 512),
                        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
                        layers_per_block=2, latent_channels=4, norm_num_groups=32, sample_size=size,
                        scaling_factor=0.18215)
    unet = UNet2DConditionModel(**{**sd_unet_config("sd15"), "sample_size": size // 8})
    pipe = StableDiffusionPipeline(vae=vae, text_encoder=te, tokenizer=tok, unet=unet,
                                   scheduler=DPMSolverMultistepScheduler(**SCHEDULE), safety_checker=None,
                                   feature_extractor=None, requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    return pipe.to(device, dtype)


class Timer:
    "CPU and wall seconds spent inside a module's forward (or a function), summed over calls."
    def __init__(self, sync):
        self.cpu = self.wall = 0.0; self.sync = sync; self._t = None
    def start(self, *_):
        self.sync(); self._t = (time.process_time(), time.perf_counter())
    def stop(self, *_):
        self.sync(); c, w = self._t
        self.cpu += time.process_time() - c; self.wall += time.perf_counter() - w
    def hook(self, module):
        module.register_forward_pre_hook(self.start); module.register_forward_hook(self.stop)
    def wrap(self, fn):
        def timed(*a, **kw):
            self.start()
            try: return fn(*a, **kw)
            finally: self.stop()
        return timed
    def reset(self): self.cpu = self.wall = 0.0


def measure(config: str, device: str, size: int, steps: int, images: int) -> dict:
    "Run one configuration in this process; returns its per-image seconds by part and its peak memory."
    import numpy as np
    import torch
    from PIL import Image
    import datasetdm_nb.synthesis as synthesis
    from datasetdm_nb.attention import capture, default_vae_features
    from datasetdm_nb.inversion import native_size
    from datasetdm_nb.dataset_io import DatasetWriter
    from datasetdm_nb.decoder_training import new_decoder
    from datasetdm_nb.shapeworld import CLASSES, KEYPOINT_NAMES, PART_NAMES
    from datasetdm_nb.tasks import TASKS
    if device == "cpu": torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    t0 = time.perf_counter()
    pipe = build(device, size)
    build_s = time.perf_counter() - t0
    timers = {k: Timer(sync) for k in ("unet", "vae_decoder", "decoder", "call", "write")}
    timers["unet"].hook(pipe.unet); timers["vae_decoder"].hook(pipe.vae.decoder)
    synthesis.label_bundle = timers["decoder"].wrap(synthesis.label_bundle)
    gen = lambda i: [torch.Generator(device).manual_seed(i)]
    out = Path(tempfile.mkdtemp(prefix=f"bench_{config}_"))
    if config == "labelled":
        vae_levels = default_vae_features(pipe)
        with capture(pipe, steps=-1, classes=CLASSES, vae_features=vae_levels) as cap:     # the warm-up call
            pipe(PROMPT, num_inference_steps=1, output_type="np", generator=gen(99))
        bundle = cap.bundle(); bundle.meta["image_size"] = native_size(pipe)
        decoder = new_decoder(pipe, bundle, CLASSES, KEYPOINT_NAMES, PART_NAMES, timestep_tolerance=1000,
                              vae_features=vae_levels)
        for t in TASKS: decoder.add_head(t)
        labelled = synthesis.DatasetDMPipeline.from_parts(pipe, decoder.to(device, pipe.unet.dtype).eval())
        writer = DatasetWriter(out, classes=CLASSES, keypoint_names=decoder.config.keypoint_names)
        call = lambda i: labelled([PROMPT], generator=gen(i), num_inference_steps=steps, guidance_scale=5.0).samples[0]
        write = lambda i, s: writer.add(s, index=i)
    else:
        pipe(PROMPT, num_inference_steps=1, output_type="np", generator=gen(99))               # the warm-up call
        (out / "images").mkdir()
        def call(i):
            im = pipe([PROMPT], generator=gen(i), num_inference_steps=steps, guidance_scale=5.0, output_type="np").images[0]
            return (np.clip(np.nan_to_num(im), 0, 1) * 255).round().astype(np.uint8)
        write = lambda i, im: Image.fromarray(im).save(out / "images" / f"{i:06d}.png")
    for t in timers.values(): t.reset()
    if device == "cuda": torch.cuda.reset_peak_memory_stats()
    for i in range(images):
        timers["call"].start(); made = call(i); timers["call"].stop()
        timers["write"].start(); write(i, made); timers["write"].stop()
    parts = {k: dict(cpu=t.cpu / images, wall=t.wall / images) for k, t in timers.items()}
    for kind in ("cpu", "wall"):      # the call's time outside the UNet, VAE decoder and labelling
        parts.setdefault("other", {})[kind] = parts["call"][kind] - sum(parts[k][kind] for k in ("unet", "vae_decoder", "decoder"))
        parts.setdefault("total", {})[kind] = parts["call"][kind] + parts["write"][kind]
    peak = (torch.cuda.max_memory_allocated() if device == "cuda"
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
    return dict(config=config, device=device, size=size, steps=steps, images=images, threads=torch.get_num_threads(),
                build_seconds=round(build_s, 1), seconds=parts, peak_bytes=int(peak),
                peak_kind="torch.cuda.max_memory_allocated" if device == "cuda" else "ru_maxrss (process RSS peak)")


def t_interval(xs):
    "Mean and 95% t-interval (None for one value)."
    m = statistics.fmean(xs)
    if len(xs) < 2: return dict(mean=m, low=None, high=None)
    from scipy.stats import t
    half = t.ppf(0.975, len(xs) - 1) * statistics.stdev(xs) / len(xs) ** 0.5
    return dict(mean=m, low=m - half, high=m + half)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--steps", type=int, default=2)
    ap.add_argument("--images", type=int, default=2, help="timed images per process")
    ap.add_argument("--pairs", type=int, default=1, help="plain/labelled process pairs (order alternating)")
    ap.add_argument("--out", type=Path, default=Path("bench/labelled_throughput_sd.json"))
    ap.add_argument("--config", choices=["plain", "labelled"], help=argparse.SUPPRESS)   # a child process's job
    a = ap.parse_args()
    if a.config:
        print(json.dumps(measure(a.config, a.device, a.size, a.steps, a.images))); return
    runs = []
    for p in range(a.pairs):
        for config in (("plain", "labelled") if p % 2 == 0 else ("labelled", "plain")):
            t = time.perf_counter()
            proc = subprocess.run([sys.executable, __file__, "--config", config, "--device", a.device, "--size", str(a.size),
                                   "--steps", str(a.steps), "--images", str(a.images)], capture_output=True, text=True)
            if proc.returncode: sys.exit(f"{config} failed:\n{proc.stderr[-3000:]}")
            runs.append(dict(json.loads(proc.stdout.strip().splitlines()[-1]), pair=p))
            print(f"pair {p}: {config} done in {time.perf_counter() - t:.0f} s", file=sys.stderr)
    kind = "wall" if a.device == "cuda" else "cpu"
    by = lambda c: [r for r in runs if r["config"] == c]
    sec = lambda c, part: statistics.fmean(r["seconds"][part][kind] for r in by(c))
    pairs = [(next(r for r in by("plain") if r["pair"] == p), next(r for r in by("labelled") if r["pair"] == p))
             for p in range(a.pairs)]
    throughput = t_interval([pl["seconds"]["total"][kind] / lb["seconds"]["total"][kind] for pl, lb in pairs])
    memory = t_interval([lb["peak_bytes"] / pl["peak_bytes"] for pl, lb in pairs])
    extra = {"capture": sec("labelled", "unet") - sec("plain", "unet") + sec("labelled", "other") - sec("plain", "other"),
             "VAE-decoder features": sec("labelled", "vae_decoder") - sec("plain", "vae_decoder"),
             "decoder forward": sec("labelled", "decoder"),
             "writing": sec("labelled", "write") - sec("plain", "write")}
    summary = dict(device=a.device, size=a.size, steps=a.steps, images_per_process=a.images, pairs=a.pairs, timer=kind,
                   plain_seconds_per_image=sec("plain", "total"), labelled_seconds_per_image=sec("labelled", "total"),
                   throughput_ratio=throughput, memory_ratio=memory, extra_seconds_per_image=extra,
                   targets=dict(throughput_ratio=0.95, memory_ratio=1.10),
                   meets=dict(throughput=throughput["mean"] >= 0.95, memory=memory["mean"] <= 1.10))
    a.out.write_text(json.dumps(dict(summary=summary, runs=runs), indent=1))
    mb = lambda c: statistics.fmean(r["peak_bytes"] for r in by(c)) / 2**20
    where = " fp16" if a.device == "cuda" else f", {runs[0]['threads']} thread(s)"
    print(f"SD 1.5 architecture, random weights, {a.size} px, {a.steps} steps, {a.device}{where}; "
          f"{a.pairs} pair(s) of processes x {a.images} image(s); {kind} seconds per image")
    print(f"{'part':22s} {'plain':>9s} {'labelled':>9s} {'extra':>9s}")
    for part in ("unet", "vae_decoder", "decoder", "other", "write", "total"):
        pl, lb = sec("plain", part), sec("labelled", part)
        print(f"{part:22s} {pl:9.2f} {lb:9.2f} {lb - pl:+9.2f}")
    print(f"{'images/s':22s} {1 / sec('plain', 'total'):9.4f} {1 / sec('labelled', 'total'):9.4f}")
    print(f"{'peak memory (MiB)':22s} {mb('plain'):9.0f} {mb('labelled'):9.0f}")
    ci = lambda d: "" if d["low"] is None else f" (95% interval {d['low']:.3f}-{d['high']:.3f})"
    print(f"throughput labelled / plain: {throughput['mean']:.3f}x{ci(throughput)} (target >= 0.95)")
    print(f"peak memory labelled / plain: {memory['mean']:.3f}x{ci(memory)} (target <= 1.10)")
    print("extra time per image: " + ", ".join(f"{k} {v:+.2f} s" for k, v in extra.items()))
    print(f"results: {a.out}")


if __name__ == "__main__":
    main()
