"""The downstream experiment on ShapeWorld: the paper's table (every task, four arms, several seeds), the curve of
mIoU against the number of synthetic images, what splicing and the uncertainty band buy, the older diffusion model,
and zero-shot segmentation. Results are appended to bench/downstream_results.jsonl (read by nbs/07_downstream.ipynb);
finished runs are skipped, so the script can be stopped and started again.

    python bench/downstream_experiments.py --phase sweep          # steps for the semantic arms (upper-bound arm)
    python bench/downstream_experiments.py --phase table          # all tasks, four arms, --seeds seeds
    python bench/downstream_experiments.py --phase curve          # semantic mIoU against N, synthetic and real
    python bench/downstream_experiments.py --phase ablations      # mosaics, no uncertainty band, the older model
    python bench/downstream_experiments.py --phase zeroshot       # a decoder that never saw a star label
    python bench/downstream_experiments.py --phase stats          # synthetic vs real label statistics, relabelling
    python bench/downstream_experiments.py --phase figure         # nbs/images/downstream.png from the results

--arms, --curve-n and --ablations run a subset (say, on a short compute budget); --steps overrides a task's steps.

Synthetic datasets are generated once (resumable `generate`) into --work and reused. Each training run is a process
of its own with one thread, --workers at a time.
"""
import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "downstream_results.jsonl"
TASK_STEPS = dict(semantic=5000, parts=2500, depth=2500, instance=1500, keypoints=1500)   # semantic: from the sweep


def synthetic(work: Path, name: str, n: int, model="shapeworld", decoder="shapeworld", ignore_below=0.5) -> str:
    "Generate (or finish generating) `n` labelled images from ShapeWorld captions into work/name; returns its path."
    from datasetdm_nb.prompting import make_prompts
    from datasetdm_nb.synthesis import generate
    out = work / name
    if not (out / "annotations.json").exists() or json.loads((out / "dataset.json").read_text())["counts"]["images"] < n:
        generate(out, make_prompts("shapeworld", n, seed=0), n, model=model, decoder=decoder, seed=0, batch_size=16,
                 ignore_below=ignore_below)
    return str(out)


def older_model_synthetic(work: Path, n: int, commit: str = "0ae571f") -> str:
    """Synthetic data from the ShapeWorld model shipped at `commit` (7,071 training steps): its weights from the
    repository's history, a semantic decoder trained for it on the same 100 scenes, then `n` generated images."""
    import subprocess, tarfile, io
    from datasetdm_nb.decoder_training import train_decoder
    model, dec = work / "model_7071", work / "decoder_7071"
    if not (model / "model_index.json").exists():
        tar = subprocess.run(["git", "-C", str(ROOT), "archive", commit, "datasetdm_nb/weights/shapeworld"],
                             capture_output=True, check=True).stdout
        with tarfile.open(fileobj=io.BytesIO(tar)) as t: t.extractall(work / "git_archive")
        shutil.move(str(work / "git_archive" / "datasetdm_nb" / "weights" / "shapeworld"), str(model))
        shutil.rmtree(work / "git_archive")
    if not (dec / "training_log.json").exists():   # written when training ends (a killed run leaves checkpoints)
        shutil.rmtree(dec, ignore_errors=True); train_decoder("semantic", n=100, out=dec, model=str(model))
    return synthetic(work, "syn_7071", n, model=str(model), decoder=str(dec))


def zero_shot_arms(work: Path, n: int, unseen: str = "star") -> dict:
    """The zero-shot arms: a semantic decoder trained on the 100 labelled scenes with `unseen` never labelled, `n`
    images it labels; the downstream segmenter on those 100 scenes (still without `unseen`) with and without them."""
    from datasetdm_nb import downstream as D
    from datasetdm_nb.dataset_io import write_dataset
    from datasetdm_nb.decoder_training import train_decoder
    real, dec = work / f"real_without_{unseen}", work / f"decoder_without_{unseen}"
    if not (real / "annotations.json").exists(): write_dataset(D.hide_class(D.read_source("shapeworld:100"), unseen), real)
    if not (dec / "training_log.json").exists():
        shutil.rmtree(dec, ignore_errors=True); train_decoder("semantic", data=str(real), n=100, val_n=0, out=dec)
    syn = synthetic(work, f"syn_zero_shot_{unseen}", n, decoder=str(dec))
    return {"real, no star": dict(data=[f"{real}:100"]), "real, no star + synthetic": dict(data=[f"{real}:100", f"{syn}:{n}"])}


def synthetic_vs_real(syn: str, n: int) -> dict:
    "Label statistics of `n` synthetic and `n` real scenes, and how the decoder's labels hold up when its images are inverted."
    from datasetdm_nb import downstream as D
    from datasetdm_nb.decoder import load_decoder
    from datasetdm_nb.models import load_pipeline
    from datasetdm_nb.shapeworld import CLASSES
    real, fake = D.read_source(f"shapeworld:{n}@100"), D.read_source(f"{syn}:{n}")
    return dict(real=D.label_statistics(real, CLASSES), synthetic=D.label_statistics(fake, CLASSES),
                relabel=D.relabel_agreement(load_decoder(), load_pipeline("shapeworld"), fake[:200]), n=n)


def figure(out: Path = ROOT / "nbs" / "images" / "downstream.png"):
    "Each task's headline metric per arm (bars: mean over seeds, dots: seeds), and semantic mIoU against N."
    import matplotlib; matplotlib.use("Agg")
    import matplotlib.pyplot as plt, pandas as pd, seaborn as sns
    from datasetdm_nb.dataset_io import read_jsonl
    from datasetdm_nb.downstream import curve_frame
    from datasetdm_nb.tasks import TASKS
    res = pd.DataFrame(read_jsonl(RESULTS))
    table = res[res.tag == "table"]
    tasks = [t for t in TASKS.values() if (table.task == t.name).any()]
    fig, axes = plt.subplots(1, len(tasks) + 1, figsize=(3.1 * (len(tasks) + 1), 2.9))
    order = ["real", "real+synthetic", "synthetic", "real+real"]
    for ax, t in zip(axes, tasks):
        r = table[table.task == t.name]
        kw = dict(data=r, x="arm", y=t.headline, order=[a for a in order if a in set(r.arm)], ax=ax)
        sns.barplot(**kw, errorbar=None, color="#9bc"); sns.stripplot(**kw, color="k", size=4)
        ax.set_title(t.name, fontsize=10); ax.set_xlabel(""); ax.tick_params(axis="x", labelrotation=35, labelsize=8)
    sns.lineplot(curve_frame(res), x="N", y="mIoU", hue="added", marker="o", errorbar="sd", ax=axes[-1])
    axes[-1].set_title("semantic: images added to 100 real", fontsize=10)
    fig.tight_layout(); fig.savefig(out, dpi=110)
    print(f"wrote {out}")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--phase", required=True, choices=["sweep", "table", "curve", "ablations", "zeroshot", "stats", "figure"])
    p.add_argument("--work", type=Path, default=ROOT / "bench_out" / "downstream", help="datasets and run folders")
    p.add_argument("--tasks", nargs="+", default=list(TASK_STEPS))
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--n", type=int, default=1000, help="synthetic (and extra real) images in the table's arms")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--steps", type=int, nargs="+", help="the sweep's step counts (default 1000 2500 5000), or the "
                   "steps of the other phases (default TASK_STEPS)")
    p.add_argument("--arms", nargs="+", help="table and curve: only these arms (default all)")
    p.add_argument("--curve-n", type=int, nargs="+", default=[250, 500, 1000, 2000])
    p.add_argument("--ablations", nargs="+", default=["mosaics", "noband", "model7071"],
                   choices=["mosaics", "noband", "model7071"])
    a = p.parse_args()
    import torch
    torch.set_num_threads(1)
    from datasetdm_nb import downstream as D
    work, seeds = a.work, tuple(range(a.seeds))
    work.mkdir(parents=True, exist_ok=True)
    pick = lambda arms: {k: v for k, v in arms.items() if not a.arms or k.split("@")[0] in a.arms}
    run = lambda task, arms, tag, steps, **kw: D.run_experiment(task, arms, work, seeds=kw.pop("seeds", seeds), steps=steps,
                                                                results=RESULTS, tag=tag, workers=a.workers, **kw)
    steps_of = lambda task: a.steps[0] if a.steps else TASK_STEPS[task]
    t0 = time.time()
    if a.phase == "sweep":
        arms = {k: v for k, v in D.experiment_arms("unused", a.n).items() if k in ("real+real", "real")}
        for steps in a.steps or (1000, 2500, 5000): run("semantic", arms, "sweep", steps, seeds=(0,))
    elif a.phase == "table":
        syn = synthetic(work, "syn_main", 2000)
        for task in a.tasks: run(task, pick(D.experiment_arms(syn, a.n)), "table", steps_of(task))
    elif a.phase == "curve":
        syn = synthetic(work, "syn_main", 2000)
        for n in a.curve_n:
            arms = D.experiment_arms(syn, n)
            run("semantic", pick({f"{k}@{n}": arms[k] for k in ("real+synthetic", "real+real")}), "curve", steps_of("semantic"))
    elif a.phase == "ablations":
        steps = steps_of("semantic")
        if "mosaics" in a.ablations:
            spliced = D.experiment_arms(synthetic(work, "syn_main", 2000), a.n, mosaic=True)
            run("semantic", pick({"real+synthetic, mosaics": spliced["real+synthetic"],
                                  "synthetic, mosaics": spliced["synthetic"]}), "ablation", steps)
        if "noband" in a.ablations:
            noband = synthetic(work, "syn_noband", a.n, ignore_below=None)
            run("semantic", {"real+synthetic, no band": D.experiment_arms(noband, a.n)["real+synthetic"]}, "ablation", steps)
        if "model7071" in a.ablations:
            arms = D.experiment_arms(older_model_synthetic(work, a.n), a.n)
            run("semantic", pick({"real+synthetic, model 7,071 steps": arms["real+synthetic"],
                                  "synthetic, model 7,071 steps": arms["synthetic"]}), "ablation", steps)
    elif a.phase == "zeroshot":
        arms = zero_shot_arms(work, a.n)
        run("semantic", arms, "zeroshot", steps_of("semantic"))
    elif a.phase == "figure":
        figure()
    elif a.phase == "stats":
        syn = synthetic(work, "syn_main", 2000)
        row = synthetic_vs_real(syn, n=a.n)
        with open(RESULTS, "a") as f: f.write(json.dumps(dict(tag="stats", **row)) + "\n")
        print(json.dumps(row, indent=1))
    print(f"phase {a.phase}: {time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
