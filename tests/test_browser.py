"""The notebooks' widgets in a real browser: JupyterLab in headless Chromium (Debian's), driven by Playwright.

Screenshots of failures go to tests/artifacts/.
"""

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from bchooks import EventStore
from bchooks.shops.client import BigCartelClient
from bchooks.kit.stack import Stack, end_child
from conftest import SECRET, free_port

pytestmark = [pytest.mark.browser, pytest.mark.integration]
ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "tests" / "artifacts"
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]
TOKEN = "browser-test-token"


def cleared_copy(source, target):
    """A copy of the notebooks without outputs, so that every output seen was made by this run."""
    target.mkdir()
    for path in source.glob("*.ipynb"):
        document = json.loads(path.read_text())
        for cell in document["cells"]:
            if cell["cell_type"] == "code":
                cell["outputs"], cell["execution_count"] = [], None
        (target / path.name).write_text(json.dumps(document))


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    if not Path(CHROMIUM).exists():
        pytest.fail("Debian's chromium is not installed: run .ci/run, which installs it")
    folder = tmp_path_factory.mktemp("lab")
    stack = Stack(folder / "run", secret=SECRET, db=folder / "bchooks.db", receiver_port=0, sandbox_port=0).start()
    notebooks = folder / "notebooks"
    cleared_copy(ROOT / "notebooks", notebooks)
    settings = folder / "settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True)
    (settings / "notification.jupyterlab-settings").write_text('{"fetchNews": "false", "checkForUpdates": false}')
    port = free_port()
    env = {**os.environ, **stack.env(), "JUPYTER_CONFIG_DIR": str(folder / "config"),
           "JUPYTER_RUNTIME_DIR": str(folder / "runtime"), "JUPYTERLAB_SETTINGS_DIR": str(folder / "settings"),
           "JUPYTERLAB_WORKSPACES_DIR": str(folder / "workspaces")}
    log = open(folder / "lab.log", "wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--allow-root", "--ip=127.0.0.1", f"--port={port}",
         f"--IdentityProvider.token={TOKEN}", f"--ServerApp.root_dir={notebooks}", "--LabApp.news_url=None"],
        env=env, stdout=log, stderr=log, stdin=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(f"{base}/api/status?token={TOKEN}", timeout=2).ok:
                    break
            except requests.RequestException:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("JupyterLab did not start: " + (folder / "lab.log").read_text()[-2000:])
            time.sleep(0.2)
        yield base, stack
    finally:
        end_child(process)
        log.close()
        stack.stop()


@pytest.fixture
def page(lab, request):
    from playwright.sync_api import expect, sync_playwright
    expect.set_options(timeout=60000)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(60000)
        try:
            yield page
        finally:
            report = getattr(request.node, "rep_call", None)
            if report is None or report.failed:
                ARTIFACTS.mkdir(exist_ok=True)
                page.screenshot(path=str(ARTIFACTS / f"{request.node.name}.png"), full_page=True)
            browser.close()


def button(scope, label):
    """A widget button by its exact label (the icon adds no text)."""
    return scope.locator("button.widget-button", has_text=re.compile(rf"^\s*{label}\s*$"))


def run_all(page, base, notebook, code_cells):
    from playwright.sync_api import expect
    page.goto(f"{base}/lab/workspaces/{notebook.split('.')[0]}/tree/{notebook}?reset&token={TOKEN}")
    status = page.locator("#jp-main-statusbar")
    deadline = time.monotonic() + 60
    while "Python 3 (ipykernel) | Idle" not in (status.text_content() or "") and time.monotonic() < deadline:
        select = page.locator(".jp-Dialog .jp-mod-accept", has_text="Select")
        if select.is_visible():  # Lab may ask which kernel to start
            select.click()
        page.wait_for_timeout(200)
    expect(status).to_contain_text("Python 3 (ipykernel) | Idle")
    page.locator(".lm-MenuBar-itemLabel", has_text="Run").click()
    page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first.click()
    expect(page.locator(".jp-InputPrompt", has_text=f"[{code_cells}]:")).to_be_visible()
    expect(page.locator("#jp-main-statusbar")).to_contain_text("Python 3 (ipykernel) | Idle")


def code_cells(notebook):
    document = json.loads((ROOT / "notebooks" / notebook).read_text())
    return sum(cell["cell_type"] == "code" for cell in document["cells"])


def test_register_and_unregister_from_the_webhook_panel(lab, page):
    from playwright.sync_api import expect
    base, stack = lab
    run_all(page, base, "01_setup_webhooks.ipynb", code_cells("01_setup_webhooks.ipynb"))
    register = button(page, "Register")
    panel = page.locator(".widget-vbox", has=register).first
    url = panel.locator(".widget-text", has_text="Receiver URL").locator("input")
    url.fill(stack.receiver_url)
    panel.locator(".widget-checkbox", has_text="product.updated").locator("input").check()
    register.click()
    expect(panel.locator(".bchooks-status")).to_contain_text("Registered webhook")
    expect(panel.locator(".bchooks-table")).to_contain_text("product.updated")
    with BigCartelClient(stack.sandbox_url, stack.sandbox_token) as client:
        hooks = client.list_webhooks()
        assert [(h["url"], h["events"]) for h in hooks] == [
            (stack.receiver_url, ["order.created", "order.updated", "product.updated"])]
        button(panel, "Unregister").click()
        expect(panel.locator(".bchooks-status")).to_contain_text("Unregistered 1 webhook")
        expect(panel.locator(".bchooks-empty")).to_contain_text("no webhooks registered")
        assert client.list_webhooks() == []
    shops = page.locator(".widget-vbox", has=button(page, "Connect")).first
    shops.locator(".widget-text", has_text="Subdomain").locator("input").fill("sandbox-shop")
    shops.locator("input[type=password]").fill("sandbox-password")
    button(shops, "Connect").click()
    expect(shops.locator(".bchooks-status")).to_contain_text("Connected shop 1234567 (Sandbox Shop)")
    button(shops, "Poll now").click()
    expect(shops.locator(".bchooks-status")).to_contain_text("of 20 products")
    expect(shops.locator(".bchooks-table")).to_contain_text("1234567")
    assert "sandbox-password" not in shops.inner_text()


def test_send_from_the_simulator_and_see_it_in_the_feed(lab, page):
    from playwright.sync_api import expect
    base, stack = lab
    run_all(page, base, "02_simulate_events.ipynb", code_cells("02_simulate_events.ipynb"))
    with EventStore(stack.db) as store:
        before = store.count()
    simulator = page.locator(".widget-vbox", has=button(page, "Send")).first
    simulator.locator(".widget-text", has_text="Count").locator("input").fill("12")
    button(simulator, "Send").click()
    expect(simulator.locator(".bchooks-status")).to_contain_text("sent 12, 2xx 12")
    feed = page.locator(".widget-vbox", has=page.get_by_text("Stored events")).last
    button(feed, "Refresh").click()
    expect(feed.locator(".bchooks-status")).to_contain_text(f"of {before + 12} stored event(s)")
    expect(feed.locator(".bchooks-table")).to_contain_text("order.created")
    with EventStore(stack.db) as store:
        assert store.count() == before + 12


def test_ship_one_order_from_the_fulfilment_panel(lab, page):
    """Notebook 5 in Lab: Run All ships nothing; tick one of the sandbox shop's orders, type its tracking number,
    Preview, Ship: the outcome sentence, and the sandbox has shipped exactly that order. (Before notebook 3's test:
    its demo year's late orders would fill the panel's first rows.)"""
    from playwright.sync_api import expect
    base, stack = lab
    run_all(page, base, "05_fulfil_orders.ipynb", code_cells("05_fulfil_orders.ipynb"))
    panel = page.locator(".widget-vbox", has=button(page, "Ship")).first
    expect(panel.locator(".bchooks-status")).to_contain_text("order(s) to ship")
    row = panel.locator(".widget-hbox", has=page.locator(".bchooks-order b", has_text="#BCSB-")).first
    expect(row).to_be_visible()  # one of the sandbox's own orders (the simulator's are not on its API)
    with BigCartelClient(stack.sandbox_url, stack.sandbox_token) as client:
        unshipped = {d["data"]["id"] for d in client.iter_orders()
                     if d["data"]["attributes"]["shipping_status"] == "unshipped"}
    order_id = row.locator(".bchooks-order b").inner_text().lstrip("#")
    assert order_id in unshipped and len(unshipped) >= 4  # Run All shipped nothing
    row.locator(".widget-checkbox input").check()
    row.get_by_placeholder("carrier").fill("UPS")
    row.get_by_placeholder("tracking number").fill("1Z999AA10123456784")
    button(panel, "Preview").click()
    expect(panel.locator(".bchooks-status")).to_contain_text("Preview: 1 ship. Nothing was changed")
    expect(panel.locator(".bchooks-table")).to_contain_text("1Z999AA10123456784")
    button(panel, "Ship").click()
    expect(panel.locator(".bchooks-status")).to_contain_text("Shipped 1, skipped 0, failed 0.")
    expect(panel.locator(".bchooks-outcomes")).to_contain_text(f"Order {order_id} (shop 1234567): shipped")
    with BigCartelClient(stack.sandbox_url, stack.sandbox_token) as client:
        now = {d["data"]["id"] for d in client.iter_orders()
               if d["data"]["attributes"]["shipping_status"] == "unshipped"}
    assert unshipped - now == {order_id}


def test_the_analysis_plots_show_as_pictures_and_its_tables_as_a_seller_reads_them(lab, page):
    """Notebook 3 in Lab: each of its five plots is an image of real size in the output area, not a text repr; its
    tables show money in the shop's currency, rates as percentages and the codes used, never raw cents."""
    from playwright.sync_api import expect
    base, _ = lab
    document = json.loads((ROOT / "notebooks" / "03_analyze_orders.ipynb").read_text())
    code_cells = sum(cell["cell_type"] == "code" for cell in document["cells"])
    run_all(page, base, "03_analyze_orders.ipynb", code_cells)
    images = page.locator(".jp-OutputArea-output img")
    expect(images).to_have_count(5)
    for index in range(5):
        image = images.nth(index)
        image.scroll_into_view_if_needed()
        width, height = image.evaluate("img => [img.naturalWidth, img.naturalHeight]")
        assert width >= 600 and height >= 250, (width, height)
    shown = "\n".join(page.locator(".jp-OutputArea-output").all_text_contents())
    assert "<Figure size" not in shown and "<ReportFigure size" not in shown
    tables = page.locator(".jp-OutputArea-output table").all_text_contents()
    assert len(tables) >= 10, len(tables)
    [comparison] = [table for table in tables if "Relative change" in table]  # this month against the last
    assert "Average order value" in comparison and "Returning customers" in comparison
    assert re.search(r"\$\d{1,3}(,\d{3})*\.\d{2}", comparison) and re.search(r"-?\d+\.\d%", comparison)
    assert "SUMMER15" in shown and "WELCOME10" in shown  # the codes that worked
    assert "Week of" not in comparison and "726338" not in shown  # money as money, never cents
    assert re.search(r"\d+ (days?|hours?)", shown)  # durations in days and hours
    links = page.locator(".jp-OutputArea-output a[download]")
    expect(links).to_have_count(1)

