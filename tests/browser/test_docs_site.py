"""The docs site (`make docs`) in a real browser, served over http on 127.0.0.1 with no network beyond it: every page
renders, its images load, its links lead to pages that exist, and the page list and prev/next links walk the site."""
import functools
import http.server
import threading

import pytest

PAGE_STATE = """() => {
  const main = document.querySelector("main").getBoundingClientRect();
  return {
    h1: document.querySelector("main h1")?.innerText.trim(),
    images: document.images.length,
    broken: [...document.images].filter(i => !i.complete || i.naturalWidth === 0).map(i => i.src.slice(0, 80)),
    overflowing: [...document.images].filter(i => i.getBoundingClientRect().right > main.right + 1).length,
    pageScrollsSideways: document.documentElement.scrollWidth > window.innerWidth,
    hiddenCode: [...document.querySelectorAll(".jp-InputArea pre")]
      .filter(p => p.scrollWidth > p.clientWidth + 1).length,
    links: [...document.querySelectorAll("a[href]")].map(a => a.href.split("#")[0]),
  };
}"""


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def site_url(docs_site):
    "The built site served by a local http server; its base URL."
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietHandler, directory=docs_site))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/"
    server.shutdown()
    server.server_close()


def test_every_page_renders_with_its_images_and_links(page, site_url, docs_site):
    outside = []
    page.on("request", lambda r: r.url.startswith(("http:", "https:")) and not r.url.startswith(site_url)
            and outside.append(r.url))
    page.goto(site_url + "index.html")
    hrefs = page.eval_on_selector_all(".site-nav li a", "links => links.map(a => a.getAttribute('href'))")
    assert hrefs[0] == "index.html" and sorted(hrefs) == sorted(p.name for p in docs_site.glob("*.html"))
    links, images = set(), 0
    for href in hrefs:
        assert page.goto(site_url + href).status == 200
        state = page.evaluate(PAGE_STATE)
        assert state["h1"] and page.title().startswith(state["h1"]), href
        assert state["broken"] == [], f"{href}: images that did not load"
        assert state["overflowing"] == 0 and not state["pageScrollsSideways"], f"{href} is wider than the window"
        assert state["hiddenCode"] == 0, f"{href}: code cut off at the right"
        links.update(link for link in state["links"] if link.startswith(site_url))
        images += state["images"]
    assert images >= 4
    for link in sorted(links):
        assert page.request.get(link).status == 200, f"broken link {link}"
    assert outside == [], "pages fetched from the network"
    assert page.console_errors == []


def test_prev_next_walk_the_page_list_and_the_list_leads_to_each_page(page, site_url):
    page.goto(site_url + "index.html")
    nav = page.locator(".site-nav li a")
    order = nav.evaluate_all("links => links.map(a => a.href)")
    walked = [page.url]
    while page.locator("a[rel=next]").count():
        page.locator("a[rel=next]").click()
        walked.append(page.url)
        assert page.locator(".site-nav a[aria-current=page]").is_visible()
    assert walked == order
    page.locator("a[rel=prev]").click()
    assert page.url == order[-2]
    nav.nth(3).click()
    assert page.url == order[3]
    assert page.console_errors == []
