"""The attention explorer of `02a_widgets` in a real JupyterLab: Run All, then use the widget as a reader would.

JupyterLab serves a copy of the notebooks (Lab autosaves, and the notebook's last cell exports), with this repository
first on the kernel's path and this interpreter as its `python3` kernel; its Jupyter settings live in a temporary
folder, so a user's own configuration cannot change what is tested. `pytest -s` shows what was clicked, what changed
and how long it took; screenshots go to the test's temporary folder."""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = "02a_widgets.ipynb"
LOG = []   # what the test did, printed as it goes and again at the end


def say(msg: str):
    LOG.append(msg)
    print(msg, flush=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for_server(url: str, proc, timeout: float):
    end = time.time() + timeout
    while time.time() < end:
        if proc.poll() is not None: raise RuntimeError(f"JupyterLab exited with status {proc.returncode}")
        try:
            with urllib.request.urlopen(url + "api/status", timeout=2): return
        except OSError: time.sleep(0.5)
    raise TimeoutError(f"JupyterLab did not answer at {url} within {timeout:.0f} s")


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    "A JupyterLab on 127.0.0.1 (no token, no browser) serving a copy of nbs/; yields its URL, stops it afterwards."
    tmp = tmp_path_factory.mktemp("lab")
    shutil.copytree(ROOT / "nbs", tmp / "nbs")
    shutil.copy(ROOT / "settings.ini", tmp / "settings.ini")   # the notebook's export cell writes into the copy
    jupyter = {d: tmp / d for d in ("data", "config", "runtime", "ipython")}
    (jupyter["config"] / "labconfig").mkdir(parents=True)   # no "get notified about Jupyter news?" pop-up
    (jupyter["config"] / "labconfig" / "page_config.json").write_text(json.dumps(
        {"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": True}}))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
           "JUPYTER_DATA_DIR": str(jupyter["data"]), "JUPYTER_CONFIG_DIR": str(jupyter["config"]),
           "JUPYTER_RUNTIME_DIR": str(jupyter["runtime"]), "IPYTHONDIR": str(jupyter["ipython"]),
           "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    env.pop("IN_TEST", None)   # the notebook as a reader runs it: the shipped model
    port = _free_port()
    start = time.time()
    # the notebook's kernel, python3, is ipykernel's own: jupyter_client runs it with the server's interpreter, this one
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}",
         "--IdentityProvider.token=", "--ServerApp.password=", f"--ServerApp.root_dir={tmp / 'nbs'}",
         "--allow-root",                              # CI containers run as root
         "--LabApp.extension_manager=readonly"],      # no PyPI queries for extensions
        env=env, cwd=tmp, stdout=open(tmp / "lab.log", "w"), stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}/"
    try:
        _wait_for_server(url, proc, timeout=120)
        say(f"JupyterLab up at {url} in {time.time() - start:.1f} s (log: {tmp / 'lab.log'})")
        yield url
    finally:
        proc.send_signal(signal.SIGTERM)   # the server shuts its kernels down on SIGTERM
        try: proc.wait(timeout=30)
        except subprocess.TimeoutExpired: os.killpg(proc.pid, signal.SIGKILL); proc.wait()


IMAGE_DIGEST = """async img => {   // what the browser shows: the bytes behind the <img>, hashed
    const bytes = await (await fetch(img.src)).arrayBuffer();
    const digest = await crypto.subtle.digest("SHA-256", bytes);
    return Array.from(new Uint8Array(digest)).map(b => b.toString(16).padStart(2, "0")).join("").slice(0, 16);
}"""
CHANGED = "([img, old]) => img.src !== old && img.complete && img.naturalWidth > 0"   # a new picture, loaded


LAYOUT = """el => {   // where each part of the explorer is, against the output area it must fit in
    const area = el.closest(".jp-OutputArea-output").getBoundingClientRect();
    const box = sel => { const r = el.querySelector(sel).getBoundingClientRect();
                         return [Math.round(r.left), Math.round(r.right), Math.round(r.top), Math.round(r.width)]; };
    const imgs = [...el.querySelectorAll("img.widget-image")].map(i => i.getBoundingClientRect());
    const right = Math.max(...[...el.querySelectorAll("*")].map(e => e.getBoundingClientRect().right));
    const spread = row => { const c = [...row.children].map(k => { const r = k.getBoundingClientRect();
                                                                  return r.top + r.height / 2; });
                            return Math.round(Math.max(...c) - Math.min(...c)); };   // 0 when the row did not wrap
    return {area_right: Math.round(area.right), content_right: Math.round(right),
            row_spreads: [...el.children].map(spread),
            prompt: box(".widget-text"), steps_slider: box(".slider-container"), generate: box("button"),
            picture_tops: imgs.map(r => Math.round(r.top)), picture_rights: imgs.map(r => Math.round(r.right))};
}"""


def test_explorer_in_jupyterlab(lab, page, tmp_path):
    shots = tmp_path / "screenshots"
    shots.mkdir()
    t0 = time.time()
    explorer = page.locator(".attention-explorer")
    pictures = explorer.locator("img.widget-image")   # the image with the map over it, the map, the colour bar
    status = explorer.locator(".explorer-status")
    word = explorer.locator(".widget-dropdown").filter(has_text="word").locator("select")
    resolution = explorer.locator(".widget-dropdown").filter(has_text="resolution").locator("select")

    # Lab skips painting cells out of view (content-visibility), where innerText is empty: texts are read by textContent
    def shot(name: str):
        explorer.evaluate("el => el.scrollIntoView({block: 'center'})")   # the whole explorer in view
        page.wait_for_timeout(500)   # let Lab paint the cells scrolled into view
        path = shots / f"{name}.png"
        page.screenshot(path=str(path))
        say(f"  screenshot {path}")

    def digests():
        return [pictures.nth(i).evaluate(IMAGE_DIGEST) for i in range(2)]

    def choose(select, label: str):
        "Pick `label` in a dropdown; wait for the map to be redrawn; the pictures' digests before and after."
        before, old_src, t = digests(), pictures.nth(1).get_attribute("src"), time.time()
        select.select_option(label=label)
        page.wait_for_function(CHANGED, arg=[pictures.nth(1).element_handle(), old_src], timeout=30_000)
        after = digests()
        title = explorer.locator(".widget-html").nth(2).text_content()   # after the status: the two titles
        say(f"selected {label!r}: picture digests {before} -> {after} in {time.time() - t:.2f} s; map title {title!r}")
        return before, after, title

    try:
        page.goto(lab + f"lab/tree/{NOTEBOOK}")
        page.locator(".jp-StatusBar-Widget").filter(has_text="| Idle").wait_for(timeout=120_000)  # a kernel, started
        say(f"notebook open, kernel idle after {time.time() - t0:.1f} s")

        page.get_by_role("menuitem", name="Run", exact=True).click()
        page.get_by_role("menuitem", name="Run All Cells", exact=True).click()
        say("clicked Run > Run All Cells")
        t_run = time.time()
        pictures.nth(2).wait_for(state="attached", timeout=300_000)
        page.wait_for_function("imgs => imgs.every(i => i.complete && i.naturalWidth > 0)",
                               arg=pictures.element_handles(), timeout=60_000)
        sizes = [pictures.nth(i).evaluate("i => [i.naturalWidth, i.naturalHeight]") for i in range(3)]
        say(f"explorer rendered {time.time() - t_run:.1f} s after Run All: pictures and colour bar {sizes} px")
        assert all(w > 0 and h > 0 for w, h in sizes)
        assert word.input_value() == "square", word.input_value()   # the prompt's first class word
        say(f"word dropdown opens on {word.input_value()!r}, resolution {resolution.input_value()!r}; "
            f"status {status.text_content()!r}")
        page.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']").wait_for(state="attached", timeout=300_000)
        say(f"Run All finished {time.time() - t_run:.1f} s after the click")
        shot("1_opened")

        # at 1024 px everything fits the output area: no part beyond its right edge, the sliders keep their length,
        # and no row wraps (prompt and seed; steps, generate and status; ...; the two pictures and the colour bar)
        layout = explorer.evaluate(LAYOUT)
        say(f"layout at 1024 px (left, right, top, width): {layout}")
        assert layout["content_right"] <= layout["area_right"], layout
        assert layout["steps_slider"][3] >= 100, layout   # not collapsed to a dot
        assert all(spread <= 5 for spread in layout["row_spreads"]), layout   # each row on one line

        before, after, title = choose(word, "red")
        assert after[0] != before[0] and after[1] != before[1] and "red" in title
        before, after, title = choose(resolution, "8x8")
        assert after[1] != before[1] and "8x8" in title
        shot("2_red_8x8")

        # a new prompt: the controls are disabled and the status says so while it generates; then its class word
        page.evaluate("""([el, button]) => { window.seenStatus = [];
            new MutationObserver(() => window.seenStatus.push([el.textContent, button.disabled])).observe(el,
                {subtree: true, childList: true, characterData: true}); }""",
                      [status.element_handle(), explorer.locator("button").element_handle()])
        prompt = explorer.get_by_role("textbox", name="prompt")
        prompt.fill("a blue circle and a yellow square")
        prompt.press("Tab")   # the text box sends its value on blur
        t = time.time()
        explorer.get_by_role("button", name="generate").click()
        page.wait_for_function("() => window.seenStatus.some(s => s[0].includes('steps in'))", timeout=120_000)
        page.wait_for_function("sel => sel.value === 'circle'", arg=word.element_handle(), timeout=30_000)
        seen = page.evaluate("window.seenStatus")
        say(f"typed a new prompt, clicked generate: status {[s[0] for s in seen]} (generate disabled: "
            f"{[s[1] for s in seen]}) in {time.time() - t:.1f} s; word now {word.input_value()!r}, "
            f"resolution {resolution.input_value()!r}")
        assert ["generating…", True] in seen, seen
        assert resolution.input_value() == "all"   # the choices are reset for the new image
        shot("3_new_prompt")

        assert page.console_errors == [], page.console_errors
        say(f"no console errors; whole test {time.time() - t0:.1f} s")
    except Exception:
        shot("failure")
        raise
    finally:
        print("\nSUMMARY\n" + "\n".join(LOG), flush=True)
