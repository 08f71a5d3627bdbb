"""Sampling speed of a ShapeWorld diffusion pipeline on this machine's CPU cores.

Generates batches of 16 images at 25 DPM-Solver steps with classifier-free guidance (so each step runs the UNet on
a batch of 32) and prints images per second (the first batch is a warm-up and is not timed).

usage: python bench/model_speed.py [--model shapeworld|tiny|FOLDER] [--batch-size 16] [--steps 25] [--repeats 3] [--threads N]
"""
import argparse, time

import torch

from datasetdm_nb.models import load_pipeline

p = argparse.ArgumentParser()
p.add_argument("--model", default="shapeworld")
p.add_argument("--batch-size", type=int, default=16)
p.add_argument("--steps", type=int, default=25)
p.add_argument("--repeats", type=int, default=3)
p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's, i.e. all cores)")
a = p.parse_args()
if a.threads: torch.set_num_threads(a.threads)
pipe = load_pipeline(a.model)
prompts = ["a red circle to the left of a person in blue", "there is a big yellow star on the grass"] * (a.batch_size // 2 + 1)
run = lambda: pipe(prompts[:a.batch_size], num_inference_steps=a.steps, guidance_scale=4.0, output_type="np")
run()
t0 = time.time()
for _ in range(a.repeats): run()
dt = time.time() - t0
print(f"{a.model}: {a.repeats * a.batch_size / dt:.2f} images/s ({a.steps} steps, guidance 4, batch {a.batch_size}, "
      f"{torch.get_num_threads()} threads; {dt / a.repeats:.2f} s per batch)")
