"""What capturing the feature bundle costs, measured so that a 2% overhead can be told from a busy machine's noise.

    OMP_NUM_THREADS=1 python bench/attention_overhead.py --out bench/attention_overhead_sd15.json

Model: Stable Diffusion 1.5's UNet from its published config (`models.sd_unet_config`, 860M parameters, random
weights: speed depends on the architecture only), with a small VAE of the same downsampling factor (8) and a 2-layer
CLIP text encoder of width 768. `--model shapeworld` runs the same measurements on the ShapeWorld architecture (a
quick check of the script). One process, one thread; the pipeline is built once.

Two measurements, each at every `--batch`:

(a) whole call: `pipe(prompts)` plain vs the same call inside `capture` (last step, class maps and the VAE decoder's
    features at 2x and 4x the latent, as synthesis captures), `--pairs` interleaved pairs (the order within a pair
    alternates), each timed by the process's CPU time (user + system, which a busy machine disturbs far less than
    wall time). Each pair gives a ratio capture / plain; reported: their mean with a 95% t-interval, and the median.
    Images are checked to be identical.
(b) one UNet step: the same UNet call (the guided batch: 2 x batch) plain vs with capture active around it
    (`steps="all"`, the same recording as (a)'s captured step; entering the context is timed apart),
    `--step-pairs` interleaved pairs. Reported: the median extra milliseconds with a bootstrap 95% interval, the
    mean with a t-interval, and the plain step's median.
(c) what (b) implies for (a): 1 + (the step's extra ms + entering ms) / (a)'s plain call, with (b)'s interval: the
    whole call differs from a plain one by one captured step (and the VAE decoder's copies, not counted here), and a
    single step is measured far more precisely than the ratio of two whole calls on a busy machine.
"""
from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
from pathlib import Path

CLASSES = ("circle", "square", "triangle", "star", "person")
PROMPT = "a big red star and a small blue circle next to a person in white on the grass"


def build(model: str):
    "The pipeline of `model` (random weights)."
    import torch
    from datasetdm_nb.models import ARCHITECTURES, SCHEDULE, build_pipeline, sd_unet_config, shapeworld_tokenizer, text_config
    tok_dir = tempfile.mkdtemp()
    shapeworld_tokenizer().save_pretrained(tok_dir)
    from transformers import CLIPTokenizer
    tok = CLIPTokenizer.from_pretrained(tok_dir)  # a saved tokenizer: the BPE training is not reproducible across processes
    if model == "shapeworld":
        pipe = build_pipeline(**ARCHITECTURES["shapeworld"])
        pipe.tokenizer = tok
        pipe.set_progress_bar_config(disable=True)
        return pipe
    if model != "sd15": raise ValueError(f"unknown model {model!r}")
    from diffusers import AutoencoderKL, DPMSolverMultistepScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel
    torch.manual_seed(0)
    te = CLIPTextModel(CLIPTextConfig(**text_config(len(tok), width=768, layers=2, heads=12)))
    vae = AutoencoderKL(block_out_channels=(32, 64, 64, 64), down_block_types=("DownEncoderBlock2D",) * 4,
                        up_block_types=("UpDecoderBlock2D",) * 4, latent_channels=4, norm_num_groups=16,
                        layers_per_block=1, sample_size=256)
    pipe = StableDiffusionPipeline(vae=vae, text_encoder=te, tokenizer=tok, unet=UNet2DConditionModel(**sd_unet_config("sd15")),
                                   scheduler=DPMSolverMultistepScheduler(**SCHEDULE), safety_checker=None,
                                   feature_extractor=None, requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def cpu_time(fn) -> tuple[float, float, object]:
    "(CPU seconds, wall seconds, result) of `fn()`."
    c, w = time.process_time(), time.perf_counter()
    out = fn()
    return time.process_time() - c, time.perf_counter() - w, out


def t_interval(xs: list[float]) -> tuple[float, float, float]:
    "Mean and its 95% t-interval."
    from scipy.stats import t
    m, n = statistics.fmean(xs), len(xs)
    half = t.ppf(0.975, n - 1) * statistics.stdev(xs) / n ** 0.5
    return m, m - half, m + half


def bootstrap_median(xs: list[float], draws: int = 10000, seed: int = 0) -> tuple[float, float, float]:
    "Median and its 95% percentile-bootstrap interval."
    rng = random.Random(seed)
    meds = sorted(statistics.median(rng.choices(xs, k=len(xs))) for _ in range(draws))
    return statistics.median(xs), meds[int(0.025 * draws)], meds[int(0.975 * draws) - 1]


def whole_calls(pipe, size, batch: int, steps: int, pairs: int) -> dict:
    "(a): interleaved plain / capture pipeline calls."
    import numpy as np
    import torch
    from datasetdm_nb.attention import capture
    kw = dict(num_inference_steps=steps, guidance_scale=7.5, output_type="np", height=size, width=size)
    prompts = [PROMPT] * batch
    lat = size // pipe.vae_scale_factor
    vae_features = (2 * lat, 4 * lat)

    def plain(): return pipe(prompts, generator=torch.manual_seed(0), **kw).images

    def captured():
        with capture(pipe, classes=CLASSES, vae_features=vae_features) as cap:
            images = pipe(prompts, generator=torch.manual_seed(0), **kw).images
        return images, cap.bundle()

    with torch.no_grad():
        pipe(prompts, num_inference_steps=1, output_type="np", height=size, width=size)  # warm-up
        rows = []
        for i in range(pairs):
            first_plain = i % 2 == 0
            order = ("plain", "capture") if first_plain else ("capture", "plain")
            res = {mode: cpu_time(plain if mode == "plain" else captured) for mode in order}
            images, bundle = res["capture"][2]
            if i == 0:
                assert np.array_equal(images, res["plain"][2]), "capture changed the image"
                kept = sum(t.numel() * t.element_size() for n in ("features", "cross", "class_maps")
                           for t in getattr(bundle, n).values())
            rows.append({"plain_cpu": res["plain"][0], "capture_cpu": res["capture"][0],
                         "plain_wall": res["plain"][1], "capture_wall": res["capture"][1], "plain_first": first_plain})
            print(f"  (a) batch {batch} pair {i + 1}/{pairs}: plain {rows[-1]['plain_cpu']:.2f} s, "
                  f"capture {rows[-1]['capture_cpu']:.2f} s, ratio {rows[-1]['capture_cpu'] / rows[-1]['plain_cpu']:.4f}",
                  flush=True)
    ratios = [r["capture_cpu"] / r["plain_cpu"] for r in rows]
    mean, lo, hi = t_interval(ratios)
    return dict(batch=batch, steps=steps, pairs=pairs, ratio_mean=mean, ratio_ci95=[lo, hi],
                ratio_median=statistics.median(ratios), plain_cpu_median=statistics.median(r["plain_cpu"] for r in rows),
                kept_mb=kept / 2**20, same_image=True, rows=rows)


def unet_steps(pipe, size, batch: int, pairs: int) -> dict:
    "(b): interleaved plain / captured single UNet calls on the guided batch."
    import torch
    from datasetdm_nb.attention import capture
    lat = size // pipe.vae_scale_factor
    prompts = [PROMPT] * batch
    with torch.no_grad():
        cond, uncond = pipe.encode_prompt(prompts, "cpu", 1, True)
        ctx = torch.cat([uncond, cond])
        x = torch.randn(2 * batch, 4, lat, lat, generator=torch.manual_seed(0))
        t = int(pipe.scheduler.config.num_train_timesteps // 25)

        def step(): return pipe.unet(x, t, encoder_hidden_states=ctx).sample
        step()  # warm-up
        plain_ms, captured_ms, enter_ms = [], [], []
        for i in range(pairs):
            for mode in (("plain", "capture") if i % 2 == 0 else ("capture", "plain")):
                if mode == "plain":
                    plain_ms.append(cpu_time(step)[0] * 1e3)
                    continue
                cap = capture(pipe, steps="all", cfg=True, classes=CLASSES, prompts=prompts)
                enter_ms.append(cpu_time(cap.__enter__)[0] * 1e3)
                captured_ms.append(cpu_time(step)[0] * 1e3)
                cap.__exit__(None, None, None)
            print(f"  (b) batch {batch} pair {i + 1}/{pairs}: plain {plain_ms[-1]:.0f} ms, capture {captured_ms[-1]:.0f} ms",
                  flush=True)
    extra = [c - p for c, p in zip(captured_ms, plain_ms)]
    med, mlo, mhi = bootstrap_median(extra)
    mean, lo, hi = t_interval(extra)
    return dict(batch=batch, unet_batch=2 * batch, latent=lat, pairs=pairs,
                plain_ms_median=statistics.median(plain_ms), extra_ms_median=med, extra_ms_median_ci95=[mlo, mhi],
                extra_ms_mean=mean, extra_ms_mean_ci95=[lo, hi], extra_fraction_median=med / statistics.median(plain_ms),
                enter_ms_median=statistics.median(enter_ms), plain_ms=plain_ms, captured_ms=captured_ms)


def implied_ratio(call: dict, step: dict) -> dict:
    "(c): the whole-call ratio one captured step's extra cost implies, with (b)'s interval."
    plain_ms = call["plain_cpu_median"] * 1e3
    lo, hi = step["extra_ms_median_ci95"]
    ratio = lambda extra: 1 + (extra + step["enter_ms_median"]) / plain_ms
    return dict(batch=call["batch"], ratio=ratio(step["extra_ms_median"]), ratio_ci95=[ratio(lo), ratio(hi)])


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="sd15", choices=["sd15", "shapeworld"])
    p.add_argument("--batch", nargs="+", type=int, default=[1, 4])
    p.add_argument("--size", type=int, default=128, help="image size in pixels (sd15; default %(default)s: 16x16 latents; shapeworld: 64)")
    p.add_argument("--steps", type=int, default=4, help="denoising steps of a whole call (default %(default)s)")
    p.add_argument("--pairs", type=int, default=10, help="interleaved whole-call pairs per batch (default %(default)s)")
    p.add_argument("--step-pairs", type=int, default=20, help="interleaved UNet-step pairs per batch (default %(default)s)")
    p.add_argument("--out", required=True, help="JSON file of the results")
    a = p.parse_args()
    import torch
    torch.set_num_threads(1)
    pipe = build(a.model)
    size = a.size if a.model == "sd15" else 64
    result = dict(model=a.model, size=size, threads=1, whole_call=[], unet_step=[], implied=[])
    for batch in a.batch:
        call, step = whole_calls(pipe, size, batch, a.steps, a.pairs), unet_steps(pipe, size, batch, a.step_pairs)
        result["whole_call"].append(call); result["unet_step"].append(step)
        result["implied"].append(implied_ratio(call, step))
        Path(a.out).write_text(json.dumps(result, indent=1))
    print(summary(result))


def summary(result: dict) -> str:
    lines = [f"{result['model']} at {result['size']} px, one thread, CPU time",
             "(a) whole call, capture / plain: batch, steps, pairs, mean [95% t-interval], median, plain s, kept MB"]
    for r in result["whole_call"]:
        lo, hi = r["ratio_ci95"]
        lines.append(f"    {r['batch']:2d} {r['steps']:2d} {r['pairs']:3d}  {r['ratio_mean']:.4f} [{lo:.4f}, {hi:.4f}]  "
                     f"{r['ratio_median']:.4f}  {r['plain_cpu_median']:7.2f}  {r['kept_mb']:6.1f}")
    lines.append("(b) one UNet step, extra ms with capture: batch (UNet batch), pairs, plain ms, median [95% bootstrap], "
                 "mean [95% t-interval], median / plain, entering ms")
    for r in result["unet_step"]:
        (mlo, mhi), (lo, hi) = r["extra_ms_median_ci95"], r["extra_ms_mean_ci95"]
        lines.append(f"    {r['batch']:2d} ({r['unet_batch']}) {r['pairs']:3d}  {r['plain_ms_median']:8.1f}  "
                     f"{r['extra_ms_median']:6.1f} [{mlo:.1f}, {mhi:.1f}]  {r['extra_ms_mean']:6.1f} [{lo:.1f}, {hi:.1f}]  "
                     f"{r['extra_fraction_median']:.4f}  {r['enter_ms_median']:.2f}")
    lines.append("(c) whole call, capture / plain, implied by (b): batch, ratio [95% interval]")
    for r in result["implied"]:
        lo, hi = r["ratio_ci95"]
        lines.append(f"    {r['batch']:2d}  {r['ratio']:.4f} [{lo:.4f}, {hi:.4f}]")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
