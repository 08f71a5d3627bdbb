"""`make docs` (tools/docs.py): the notebooks as a static HTML site, one page each, in order, offline."""
import base64
import json
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
from bs4 import BeautifulSoup

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "tools" / "docs.py"
PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGP4z8AAAAMBAQDJ/pLvAAAAAElFTkSuQmCC")


def expected_pages(nbs=ROOT / "nbs"):
    "(page, first heading) for every notebook: index first, then by file name, `_` names left out."
    files = sorted(p for p in nbs.glob("*.ipynb") if not p.name.startswith("_"))
    files.sort(key=lambda p: p.stem != "index")
    def heading(path):
        for cell in json.loads(path.read_text())["cells"]:
            m = cell["cell_type"] == "markdown" and re.search(r"^#+ (.+)$", "".join(cell["source"]), re.M)
            if m:
                return m.group(1)
    return [(f"{p.stem}.html", heading(p)) for p in files]


def soup(path):
    return BeautifulSoup(path.read_text(encoding="utf-8"), "html.parser")


def local(url):
    "The site-relative path and fragment of a link to a file of the site, or None for an outside or data URL."
    parts = urlsplit(url)
    if parts.scheme or parts.netloc:
        return None
    return unquote(parts.path), parts.fragment


@pytest.fixture(scope="module")
def site_pages(docs_site):
    "Every page of the built site, parsed, by file name."
    return {path.name: soup(path) for path in docs_site.glob("*.html")}


def test_every_notebook_is_a_page_listed_in_order(site_pages):
    pages = expected_pages()
    assert sorted(site_pages) == sorted(name for name, _ in pages)
    for i, (name, heading) in enumerate(pages):
        page = site_pages[name]
        plain = heading.replace("`", "")
        assert page.title.text.startswith(plain)
        assert page.select_one("main h1").text.rstrip("¶") == plain
        nav = page.select(".site-nav li a")
        assert [(a["href"], a.text) for a in nav] == [(n, h.replace("`", "")) for n, h in pages]
        assert [a["href"] for a in nav if a.get("aria-current") == "page"] == [name]
        prev, next_ = page.select_one("a[rel=prev]"), page.select_one("a[rel=next]")
        assert (prev and prev["href"]) == (pages[i - 1][0] if i else None)
        assert (next_ and next_["href"]) == (pages[i + 1][0] if i + 1 < len(pages) else None)


def test_links_and_images_resolve_and_nothing_comes_from_the_network(docs_site, site_pages):
    images = 0
    for name, page in site_pages.items():
        for tag in page.select("script[src], link[href], img[src]"):
            url = tag.get("src") or tag["href"]
            assert local(url) or url.startswith("data:"), f"{name} loads {url}"
        for tag in page.select("[href], img[src]"):
            target = local(tag.get("href") or tag["src"])
            if target is None:
                continue
            file, fragment = target
            assert (docs_site / (file or name)).is_file(), f"{name} links to a missing {file}"
            if fragment and (file or name) in site_pages:
                assert site_pages[file or name].find(id=fragment), f"{name} links to a missing {file}#{fragment}"
        images += len(page.select("img"))
        code = "\n".join(pre.text for pre in page.select(".jp-InputArea pre"))
        assert not re.search(r"^\s*#\s*\|", code, re.M), f"{name} shows a #| directive"
    assert images >= 4  # the index's and the downstream figure, and the figures notebooks store
    assert (docs_site / "images" / "overview.png").is_file()


def test_nbdev_view_of_cells_links_and_images(tmp_path):
    "Hidden cells and directive lines leave the page; notebook links point at pages; linked images are copied."
    nbs = tmp_path / "nbs"
    (nbs / "images").mkdir(parents=True)
    (nbs / "images" / "dot.png").write_bytes(PNG)
    (nbs / "images" / "unused.png").write_bytes(PNG)
    def notebook(name, *cells):
        cells = [{"cell_type": kind, "metadata": {}, "source": source,
                  **({"outputs": outputs, "execution_count": None} if kind == "code" else {})}
                 for kind, source, outputs in cells]
        (nbs / name).write_text(json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    stream = lambda text: [{"output_type": "stream", "name": "stdout", "text": text}]
    notebook("index.ipynb", ("markdown", "# Home\n\nSee [the first](01_a.ipynb) and ![a dot](images/dot.png)", None))
    notebook("01_a.ipynb", ("markdown", "# First `thing`", None),
             ("code", "#| default_exp a\n#| hide\nHIDDEN_CELL = 1", stream("HIDDEN_OUTPUT")),
             ("code", "#| include: false\nNOT_INCLUDED = 1", []),
             ("code", "#| export\ndef shown(): pass", []),
             ("code", "#| echo: false\nprint('QUIET_SOURCE')", stream("SHOWN_OUTPUT")),
             ("code", "#| output: false\nprint('LOUD_SOURCE')", stream("DROPPED_OUTPUT")),
             ("code", "#| default_exp b", []))
    notebook("_draft.ipynb", ("markdown", "# Draft", None))
    out = tmp_path / "site"
    run = subprocess.run([sys.executable, str(DOCS), "--nbs", str(nbs), "--out", str(out)],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith("2 pages, ")
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()) == \
        ["01_a.html", "images/dot.png", "index.html", "lab.css", "site.css"]
    index, first = soup(out / "index.html"), soup(out / "01_a.html")
    assert index.select_one("main a[href='01_a.html']") and index.select_one("img[src='images/dot.png']")
    assert [str(a.code) for a in first.select(".site-nav li a")] == ["None", "<code>thing</code>"]
    text = first.select_one("main").text
    for gone in ["HIDDEN_CELL", "HIDDEN_OUTPUT", "NOT_INCLUDED", "#|", "default_exp", "QUIET_SOURCE", "DROPPED_OUTPUT"]:
        assert gone not in text
    for shown in ["def shown(): pass", "SHOWN_OUTPUT", "LOUD_SOURCE"]:
        assert shown in text
    assert len(first.select(".jp-CodeCell")) == 3  # the empty `default_exp` cell is gone too


def test_refuses_to_replace_a_folder_that_is_not_a_site(tmp_path):
    (tmp_path / "notes.txt").write_text("keep me")
    run = subprocess.run([sys.executable, str(DOCS), "--out", str(tmp_path)], capture_output=True, text=True)
    assert run.returncode != 0 and "not replacing" in run.stderr
    assert (tmp_path / "notes.txt").read_text() == "keep me"
