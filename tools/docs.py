"""Render the notebooks to a static HTML site with nbconvert (`make docs`): no Quarto, nothing fetched at view time.

Each notebook in `nbs_path` becomes one page of `doc_path` (both from settings.ini), shown as nbdev shows it: cells
marked `#| hide` (or `#| include: false`) are left out, `#|` directive lines leave the code, and links to `XX.ipynb`
point at `XX.html`. Pages come index first, then in file-name order, each with a sidebar listing them all and links to
the previous and next page. Files the pages link to (the images in `nbs/images/`) are copied beside them."""
import argparse
import configparser
import html
import os
import re
import shutil
import time
from pathlib import Path

import nbformat
from nbconvert import HTMLExporter
from nbconvert.preprocessors import Preprocessor

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = Path(__file__).with_name("docs_page.html.j2")
SITE_CSS = Path(__file__).with_name("docs_site.css")
DIRECTIVE = re.compile(r"^\s*#\s*\|\s*(.*?)\s*$")
NOTEBOOK_LINK = re.compile(r'(\]\(|href=")([^)"\s#:]+)\.ipynb\b')
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.M)
LOCAL_REF = re.compile(r'\b(?:src|href)="(?![a-z][a-z0-9+.-]*:|//|#)([^"#?]+)')
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def split_directives(source):
    "A code cell's leading `#|` directives (`hide`, `echo:false`, ...) and the code after them."
    lines, found = source.splitlines(), []
    while lines and (m := DIRECTIVE.match(lines[0])):
        found.append(m.group(1).replace(" ", "").lower())
        lines.pop(0)
    return found, "\n".join(lines)


class NbdevView(Preprocessor):
    "Show a notebook as nbdev's docs do: hidden cells out, directives out of the code, notebook links to pages."

    def preprocess(self, nb, resources):
        nb.metadata.pop("widgets", None)  # stored widget state would load the widget manager from a CDN
        cells = []
        for cell in nb.cells:
            if cell.cell_type == "markdown":
                cell.source = NOTEBOOK_LINK.sub(r"\1\2.html", cell.source)
            elif cell.cell_type == "code":
                found, cell.source = split_directives(cell.source)
                if "hide" in found or "include:false" in found:
                    continue
                keep = "output:false" not in found
                cell.outputs = [o for o in cell.outputs if keep and WIDGET_VIEW not in o.get("data", {})]
                if "echo:false" in found:
                    cell.metadata["transient"] = {"remove_source": True}
                if not cell.source.strip() and not cell.outputs:
                    continue
            cells.append(cell)
        nb.cells = cells
        return nb, resources


def notebooks(nbs):
    "The notebooks to publish: index first, then in file-name order (names starting with `_` or `.` are skipped)."
    files = sorted(p for p in Path(nbs).glob("*.ipynb") if not p.name.startswith(("_", ".")))
    return sorted(files, key=lambda p: p.stem != "index")


def title(nb, default):
    "The notebook's first markdown heading."
    for cell in nb.cells:
        if cell.cell_type == "markdown" and (m := HEADING.search(cell.source)):
            return m.group(1)
    return default


def inline_html(text):
    "Heading text as HTML: escaped, with `code` spans."
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", html.escape(text))


def exporter():
    "nbconvert's lab HTML exporter with this site's page template and the nbdev view of cells."
    exp = HTMLExporter(template_name="lab", extra_template_paths=[str(TEMPLATE.parent)], template_file=TEMPLATE.name,
                       exclude_input_prompt=True, exclude_output_prompt=True)
    exp.register_preprocessor(NbdevView, enabled=True)
    return exp


def build(nbs, out, site_title):
    "Write one page per notebook, the stylesheets and the files the pages link to into `out`; returns the pages."
    nbs, out = Path(nbs).resolve(), Path(out)
    if out.exists() and any(out.iterdir()) and not (out / "site.css").exists():
        raise SystemExit(f"{out} is not empty and holds no earlier build of the site: not replacing it")
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    files = notebooks(nbs)
    books = [nbformat.read(f, as_version=4) for f in files]
    pages = [{"href": f"{f.stem}.html", "title": title(nb, f.stem)} for f, nb in zip(files, books)]
    for page in pages:
        page["html"] = inline_html(page["title"])
    exp = exporter()
    for i, (nb, page) in enumerate(zip(books, pages)):
        nb.metadata["title"] = f"{page['title'].replace('`', '')} | {site_title}"
        site = {"title": site_title, "pages": pages, "current": i,
                "prev": pages[i - 1] if i > 0 else None, "next": pages[i + 1] if i + 1 < len(pages) else None}
        body, _ = exp.from_notebook_node(nb, resources={"site": site})
        (out / page["href"]).write_text(body, encoding="utf-8")
        copy_linked_files(body, nbs, out)
    env = exp.environment
    lab_css = "\n".join(env.loader.get_source(env, f"static/{n}.css")[0] for n in ("index", "theme-light"))
    (out / "lab.css").write_text(lab_css, encoding="utf-8")
    shutil.copy(SITE_CSS, out / "site.css")
    return pages


def copy_linked_files(body, nbs, out):
    "Copy the files under `nbs` that a page links to or shows (images) to the same place under `out`."
    for ref in set(LOCAL_REF.findall(body)):
        src = (nbs / ref).resolve()
        if src.is_file() and src.is_relative_to(nbs) and src.suffix != ".ipynb":
            dest = out / src.relative_to(nbs)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(src, dest)


def main(argv=None):
    "Build the site from settings.ini's `nbs_path` into its `doc_path` (or the folders given); print its size."
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "settings.ini", encoding="utf-8")
    cfg = cfg["DEFAULT"]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nbs", default=ROOT / cfg.get("nbs_path", "nbs"), type=Path, help="the notebooks")
    parser.add_argument("--out", default=ROOT / cfg.get("doc_path", "_docs"), type=Path, help="the site's folder")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    pages = build(args.nbs, args.out, cfg.get("title", "docs"))
    size = sum(p.stat().st_size for p in args.out.rglob("*") if p.is_file())
    took = time.perf_counter() - start
    print(f"{len(pages)} pages, {size / 1e6:.1f} MB in {os.path.relpath(args.out)}/ ({took:.1f} s)")


if __name__ == "__main__":
    main()
