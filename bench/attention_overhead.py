"""What capturing the feature bundle costs: a plain pipeline call vs the same call inside `capture` (last step), vs the
reference code's way (explicit softmax attention in every layer at every step, maps kept per head in fp32). Capture
records what synthesis records: features, caption and class maps, and the VAE decoder's features at 2x and 4x the latent.

Each configuration runs in its own child process (peak memory cannot be reset inside one): the child builds the
pipeline, warms it up with a 1-step call, then times `--calls` calls (the fastest counts) and reports `ru_maxrss` (its peak resident memory)
and its resident memory just before the timed call. Modes are interleaved over repeats so that a busy machine slows
them alike. Time is measured as the child's CPU time (user + system) of the timed call, which a busy machine disturbs
far less than wall time (reported too); the summary takes the fastest repeat of each mode and the median.

Models (random weights; speed and memory depend on the architecture only):
- `shapeworld`: the shipped ShapeWorld architecture (`models.build_pipeline`), or the trained weights when present; 64 px.
- `sd15`: Stable Diffusion 1.5's UNet from its published config (`models.sd_unet_config`, 860M parameters,
  cross-attention dim 768), with a small VAE of the same downsampling factor (8) and a 2-layer CLIP text encoder of width 768; 256 px (32x32 latents).

    python bench/attention_overhead.py --models sd15 --batch 1 4 --repeats 3 --out bench/attention_overhead_sd15.json
    python bench/attention_overhead.py --models shapeworld --batch 1 4 --repeats 3 --calls 5 \
        --out bench/attention_overhead_shapeworld.json
"""
from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CLASSES = ("circle", "square", "triangle", "star", "person")
PROMPT = "a big red star and a small blue circle next to a person in white on the grass"


def build(model: str, tokenizer_dir: str):
    "The pipeline and image size of `model`; random-weight pipelines use the tokenizer saved in `tokenizer_dir`."
    import torch
    from transformers import CLIPTokenizer
    from datasetdm_nb.models import (ARCHITECTURES, SCHEDULE, build_pipeline, load_pipeline, sd_unet_config,
                                     shapeworld_model_path, text_config)
    if model == "shapeworld":
        trained = (shapeworld_model_path() / "model_index.json").exists()
        if trained: return load_pipeline("shapeworld"), 64
        pipe = build_pipeline(**ARCHITECTURES["shapeworld"])
        pipe.tokenizer = CLIPTokenizer.from_pretrained(tokenizer_dir)  # the BPE training is not reproducible across processes
        return pipe, 64
    if model != "sd15": raise ValueError(f"unknown model {model!r}")
    from diffusers import AutoencoderKL, DPMSolverMultistepScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel
    torch.manual_seed(0)
    tok = CLIPTokenizer.from_pretrained(tokenizer_dir)
    te = CLIPTextModel(CLIPTextConfig(**text_config(len(tok), width=768, layers=2, heads=12)))
    vae = AutoencoderKL(block_out_channels=(32, 64, 64, 64), down_block_types=("DownEncoderBlock2D",) * 4,
                        up_block_types=("UpDecoderBlock2D",) * 4, latent_channels=4, norm_num_groups=16,
                        layers_per_block=1, sample_size=256)
    pipe = StableDiffusionPipeline(vae=vae, text_encoder=te, tokenizer=tok, unet=UNet2DConditionModel(**sd_unet_config("sd15")),
                                   scheduler=DPMSolverMultistepScheduler(**SCHEDULE), safety_checker=None,
                                   feature_extractor=None, requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    return pipe, 256


class ReferenceStyleProcessor:
    """The reference code's way (prompt-to-prompt's AttentionStore): explicit `baddbmm` + softmax attention in every layer,
    every step; the conditional half's probabilities kept per head in fp32 and summed over steps per layer."""
    def __init__(self, name, store): self.name, self.store = name, store

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, temb=None, **kw):
        b = hidden_states.shape[0]
        ctx = hidden_states if encoder_hidden_states is None else encoder_hidden_states
        q = attn.head_to_batch_dim(attn.to_q(hidden_states))
        k, v = attn.head_to_batch_dim(attn.to_k(ctx)), attn.head_to_batch_dim(attn.to_v(ctx))
        probs = attn.get_attention_scores(q, k, attention_mask)       # (b * heads, N, T)
        cond = probs[b * attn.heads // 2:].float()
        if self.name in self.store: self.store[self.name] += cond
        else: self.store[self.name] = cond.clone()
        out = attn.batch_to_head_dim(probs @ v)
        return attn.to_out[1](attn.to_out[0](out)) / attn.rescale_output_factor


def child(model: str, batch: int, mode: str, steps: int, threads: int, tokenizer_dir: str, calls: int = 1) -> dict:
    import torch
    torch.set_num_threads(threads)
    from datasetdm_nb.attention import capture
    from datasetdm_nb.attention import default_vae_features
    pipe, size = build(model, tokenizer_dir)
    kw = dict(height=size, width=size, guidance_scale=7.5, output_type="np")
    prompts = [PROMPT] * batch
    with torch.no_grad():
        pipe(prompts, num_inference_steps=1, generator=torch.manual_seed(0), **kw)  # warm-up
    store = {}
    if mode == "reference":
        pipe.unet.set_attn_processor({k: ReferenceStyleProcessor(k, store) for k in pipe.unet.attn_processors})
    rss_before = int(open("/proc/self/statm").read().split()[1]) * resource.getpagesize() // 1024
    cpu = lambda: sum(resource.getrusage(resource.RUSAGE_SELF)[:2])
    walls, cpus = [], []
    for _ in range(calls):
        store.clear()
        t, c = time.perf_counter(), cpu()
        with torch.no_grad():
            if mode == "capture":
                with capture(pipe, classes=CLASSES, vae_features=default_vae_features(pipe)) as cap:
                    images = pipe(prompts, num_inference_steps=steps, generator=torch.manual_seed(0), **kw).images
                kept = sum(t.numel() * t.element_size() for n in ("features", "cross", "class_maps")
                           for t in getattr(cap.bundle(), n).values())
            else:
                images = pipe(prompts, num_inference_steps=steps, generator=torch.manual_seed(0), **kw).images
                kept = sum(t.numel() * t.element_size() for t in store.values())
        walls.append(time.perf_counter() - t); cpus.append(cpu() - c)
    seconds, cpu_seconds = min(walls), min(cpus)
    return dict(model=model, batch=batch, mode=mode, steps=steps, size=size, seconds=seconds, cpu_seconds=cpu_seconds,
                peak_kb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, rss_before_kb=rss_before,
                kept_mb=kept / 2**20, image_mean=float(images.mean()))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", nargs="+", default=["shapeworld", "sd15"])
    p.add_argument("--batch", nargs="+", type=int, default=[1, 4])
    p.add_argument("--modes", nargs="+", default=["plain", "capture", "reference"])
    p.add_argument("--steps", type=int, default=None, help="default: 20 for shapeworld, 4 for sd15")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", help="JSON file of the results (required)")
    p.add_argument("--calls", type=int, default=1, help="timed calls per child process (its fastest counts)")
    p.add_argument("--child", nargs=7, help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.child:
        m, b, mode, s, th, tok, calls = a.child
        print(json.dumps(child(m, int(b), mode, int(s), int(th), tok, int(calls))))
        return
    if not a.out: p.error("--out is required")
    from datasetdm_nb.models import shapeworld_tokenizer
    tok = tempfile.mkdtemp()
    shapeworld_tokenizer().save_pretrained(tok)
    rows = []
    for model in a.models:
        steps = a.steps or (20 if model == "shapeworld" else 4)
        for batch in a.batch:
            for r in range(a.repeats):
                for mode in a.modes:
                    out = subprocess.run([sys.executable, __file__, "--child", model, str(batch), mode, str(steps),
                                          str(a.threads), tok, str(a.calls)], capture_output=True, text=True)
                    if out.returncode: raise RuntimeError(out.stderr[-2000:])
                    rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
                    print(json.dumps(rows[-1]), flush=True)
            Path(a.out).write_text(json.dumps(rows, indent=1))
    print(summary(rows))


def summary(rows) -> str:
    lines = ["model       batch mode       CPU s min/median  x plain (min, median)  wall s min  x plain  "
             "peak MB  x plain  call MB x plain  kept MB  same image"]
    groups = {}
    for r in rows: groups.setdefault((r["model"], r["batch"], r["mode"]), []).append(r)
    for (model, batch, mode), rs in groups.items():
        base = groups[(model, batch, "plain")]
        t, tb = [x["cpu_seconds"] for x in rs], [x["cpu_seconds"] for x in base]
        w, wb = [x["seconds"] for x in rs], [x["seconds"] for x in base]
        pk, pb = statistics.median(x["peak_kb"] for x in rs), statistics.median(x["peak_kb"] for x in base)
        call = statistics.median(x["peak_kb"] - x["rss_before_kb"] for x in rs)
        callb = statistics.median(x["peak_kb"] - x["rss_before_kb"] for x in base)
        same = all(x["image_mean"] == base[0]["image_mean"] for x in rs)
        lines.append(f"{model:11s} {batch:5d} {mode:10s} {min(t):7.2f} / {statistics.median(t):7.2f}     "
                     f"{min(t) / min(tb):5.3f}, {statistics.median(t) / statistics.median(tb):5.3f}       "
                     f"{min(w):7.2f}  {min(w) / min(wb):6.3f}  "
                     f"{pk / 1024:7.0f}  {pk / pb:6.3f}  {call / 1024:7.0f} {call / max(callb, 1):6.3f}  "
                     f"{statistics.median(x['kept_mb'] for x in rs):7.1f}  {same}")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
