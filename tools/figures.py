"""Re-execute notebooks so that their stored outputs come from the current code and the shipped model (`make figures`).

Runs each notebook as `nbdev_test` does (same engine, cells flagged `slow`/`gpu` or `#| eval: false` skipped) but at
full size (no `IN_TEST`), then keeps only what a reader should see: no stderr (library notices, progress bars), no
widget views (they need a live kernel), no execution counts. Figures are re-encoded as small PNGs.
A notebook is written only once all of its cells ran, so an interrupted run loses nothing.

    python tools/figures.py                  # every notebook in nbs/
    python tools/figures.py 02_attention     # some of them
"""
import argparse
import base64
import io
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NBS = ROOT / "nbs"
SKIP_FLAGS = {"slow", "gpu"}
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def small_png(b64: str) -> str:
    """The picture as a smaller PNG: a 256-colour palette when that is smaller (exact for plots, which have fewer colours;
    for photographs and noise each pixel takes the nearest of 256 colours, a difference the eye does not see)."""
    from PIL import Image
    img = Image.open(io.BytesIO(base64.b64decode(b64)))
    candidates = []
    for im in (img, img.convert("RGB").quantize(256, method=Image.Quantize.FASTOCTREE)):
        buf = io.BytesIO()
        im.save(buf, "PNG", optimize=True)
        candidates.append(buf.getvalue())
    return base64.b64encode(min(candidates, key=len)).decode()


def reader_outputs(outputs):
    "What a reader should see of a cell's outputs."
    kept = []
    for o in outputs:
        if o.get("output_type") == "stream" and o.get("name") == "stderr": continue
        data = o.get("data", {})
        if WIDGET_VIEW in data: continue
        if o.get("output_type") in ("display_data", "execute_result") and not data: continue   # an object shown as nothing
        if "image/png" in data: data["image/png"] = small_png("".join(data["image/png"]))
        if "execution_count" in o: o["execution_count"] = None
        kept.append(o)
    return kept


def run_notebook(fn: Path) -> float:
    "Execute `fn` in place at full size; returns the seconds it took."
    from execnb.nbio import write_nb
    from execnb.shell import CaptureShell
    from nbdev.process import NBProcessor

    nb = NBProcessor(fn, rm_directives=False).nb

    def skip(cell):
        if cell.cell_type != "code": return True
        cell.outputs = []
        d = cell.directives_ or {}
        return (d.get("eval:", [""])[0].lower() == "false") or bool(SKIP_FLAGS & d.keys())

    os.environ.pop("IN_TEST", None)
    start = time.time()
    shell = CaptureShell(fn, mpl_format="png")
    cwd = os.getcwd()
    os.chdir(fn.parent)
    try:
        shell.run_all(nb, exc_stop=True, preproc=skip)
    except Exception:
        sys.stderr.write(shell.prettytb(fname=fn)[-3000:] + "\n")   # the end of it: tensors in messages run long
        raise SystemExit(f"{fn.name}: a cell failed; the notebook was left as it was")
    finally:
        os.chdir(cwd)
    for cell in nb.cells:
        if cell.cell_type == "code": cell.outputs = reader_outputs([dict(o) for o in cell.get("outputs", [])])
        cell.pop("directives_", None)
    write_nb(nb, fn)
    return time.time() - start


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("names", nargs="*", help="notebook names (without .ipynb); default: all of nbs/")
    names = ap.parse_args().names
    fns = [NBS / f"{n.removesuffix('.ipynb')}.ipynb" for n in names] or sorted(NBS.glob("*.ipynb"))
    missing = [f.name for f in fns if not f.exists()]
    if missing: raise SystemExit(f"no such notebook in nbs/: {', '.join(missing)}")
    if len(fns) == 1:
        secs = run_notebook(fns[0])
        subprocess.run([Path(sys.executable).parent / "nbdev_clean", "--fname", fns[0]], cwd=ROOT, check=True)
        print(f"{fns[0].name:32s} {secs:6.0f} s  {fns[0].stat().st_size / 1e3:7.0f} kB", flush=True)
        return
    # one process per notebook, as nbdev_test runs them: no state leaks from one into the next
    failed = [fn.stem for fn in fns if subprocess.run([sys.executable, __file__, fn.stem]).returncode]
    print(f"nbs/ holds {sum(p.stat().st_size for p in NBS.rglob('*') if p.is_file()) / 1e6:.2f} MB")
    if failed: raise SystemExit(f"left as they were, a cell failed: {' '.join(failed)}")


if __name__ == "__main__":
    main()
