"""ShapeWorld speed: render 10,000 scenes at 64 px with 2 worker processes, then export 1,000 of them.

Run: .venv/bin/python bench/shapeworld_speed.py [--n 10000] [--workers 2] [--export 1000]
"""
import argparse
import tempfile
import time

from datasetdm_nb.dataset_io import load_dataset, write_coco, write_dataset, write_voc
from datasetdm_nb.shapeworld import SKELETON, shapeworld


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=10_000)
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--export", type=int, default=1_000)
    a = p.parse_args()

    t = time.perf_counter()
    scenes = shapeworld("pool", a.n, a.size, workers=a.workers)
    dt = time.perf_counter() - t
    print(f"render: {a.n} scenes at {a.size} px, {a.workers} workers: {dt:.1f} s wall, {a.n / dt:.0f} scenes/s")

    part = scenes[: a.export]
    for name, write in (("datasetdm", lambda d: write_dataset(part, d, skeleton=SKELETON, made_with=dict(source="bench"))),
                        ("voc", lambda d: write_voc(part, d)),
                        ("coco", lambda d: write_coco(part, d, skeleton=SKELETON))):
        with tempfile.TemporaryDirectory() as d:
            t = time.perf_counter(); write(d); dt = time.perf_counter() - t
            t = time.perf_counter(); n = sum(1 for _ in load_dataset(d)); dl = time.perf_counter() - t
            print(f"export {name}: {len(part)} scenes in {dt:.1f} s ({len(part) / dt:.0f} scenes/s); "
                  f"load back {n} in {dl:.1f} s ({n / dl:.0f} scenes/s)")


if __name__ == "__main__":
    main()
