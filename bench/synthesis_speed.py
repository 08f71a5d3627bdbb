"""Synthesis speed on the embedded ShapeWorld model: labelled images per second, the cost of labelling over plain
sampling of the same prompts and seeds, and how time and peak memory scale with the dataset size.

Each configuration runs in its own process (peak memory cannot be reset inside one), side by side in one run:

    .venv/bin/python bench/synthesis_speed.py                 # ratio at 64 images, scaling at 100 and 1,000
    .venv/bin/python bench/synthesis_speed.py --sizes 100 1000 5000
"""
import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time


def child(kind, n, batch_size, steps):
    import numpy as np
    import torch
    from datasetdm_nb.prompting import make_prompts
    from datasetdm_nb.synthesis import DatasetDMPipeline, generate, sample_seed
    prompts = [r["prompt"] for r in make_prompts("shapeworld", min(n, 1000), seed=0)]
    pipe = DatasetDMPipeline.from_parts("shapeworld", "shapeworld")
    t0 = time.perf_counter()
    if kind == "plain":
        sd = pipe.stable_diffusion()
        for b in range(0, n, batch_size):
            idx = range(b, min(n, b + batch_size))
            sd([prompts[i % len(prompts)] for i in idx], generator=[torch.Generator().manual_seed(sample_seed(0, i)) for i in idx],
               num_inference_steps=steps, guidance_scale=5.0, output_type="np")
    elif kind == "labelled":
        for b in range(0, n, batch_size):
            idx = range(b, min(n, b + batch_size))
            pipe([prompts[i % len(prompts)] for i in idx], generator=[torch.Generator().manual_seed(sample_seed(0, i)) for i in idx],
                 num_inference_steps=steps, guidance_scale=5.0)
    else:   # the whole job: generation, labels, files on disk
        with tempfile.TemporaryDirectory() as d:
            generate(d, prompts, n, batch_size=batch_size, steps=steps, pipe=pipe, progress=False,
                     threads=torch.get_num_threads())   # the same threads as the two kinds above
    dt = time.perf_counter() - t0
    print(json.dumps(dict(kind=kind, n=n, seconds=dt, images_per_s=n / dt,
                          peak_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)))


def run(kind, n, batch_size, steps):
    out = subprocess.run([sys.executable, __file__, "--child", kind, str(n), str(batch_size), str(steps)],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--child", nargs=4)
    ap.add_argument("--sizes", nargs="+", type=int, default=[100, 1000])
    ap.add_argument("--ratio-n", type=int, default=64)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--steps", type=int, default=25)
    a = ap.parse_args()
    if a.child:
        kind, n, bs, steps = a.child
        child(kind, int(n), int(bs), int(steps)); sys.exit()
    print(f"ShapeWorld model, {a.steps} steps, guidance 5, batch {a.batch_size}, CPU")
    plain, labelled = run("plain", a.ratio_n, a.batch_size, a.steps), run("labelled", a.ratio_n, a.batch_size, a.steps)
    print(f"plain sampling     : {plain['images_per_s']:.2f} img/s, peak {plain['peak_mb']:.0f} MB")
    print(f"sampling + labels  : {labelled['images_per_s']:.2f} img/s, peak {labelled['peak_mb']:.0f} MB")
    print(f"labelling cost     : {plain['images_per_s'] / labelled['images_per_s']:.3f}x time, "
          f"{labelled['peak_mb'] / plain['peak_mb']:.3f}x peak memory ({a.ratio_n} images)")
    print("scaling (datasetdm generate, files written):")
    for n in a.sizes:
        r = run("dataset", n, a.batch_size, a.steps)
        print(f"  n={n:>5}: {r['seconds']:8.1f} s  {r['images_per_s']:.2f} img/s  peak {r['peak_mb']:.0f} MB")
