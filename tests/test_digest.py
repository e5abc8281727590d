"""The digest: its lines hand-computed on a small event stream (two shops with the same order numbers, a refund,
orders out of order, missing fields), its periods, its notebook kept thin, and `bchooks digest` end to end from a
real store: the page with its plots as images and its numbers as money, sent to a real SMTP server; a failing
notification URL and a missing store are one line each, and a notification URL's password is never printed."""

import email
import json
import logging
import os
import re
import socket
import subprocess
import sys
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest

from bchooks import Config, EventStore, analysis, parse_envelope
from bchooks.cli import main
from bchooks.digest import NOTEBOOK, span, summarise
from bchooks.errors import ConfigError, NotifyError
from bchooks.notify import send, split_urls
from bchooks.secrecy import redact
from bchooks.simulator.history import trading_history

ROOT = Path(__file__).resolve().parent.parent
END = datetime(2026, 12, 1, 12, tzinfo=timezone.utc)  # a Tuesday: the digest reports Mon 23 Nov to Mon 30 Nov
PASSWORD = "s3cret-pw-4242"


def put(store, *bodies):
    for body in bodies:
        store.append(body, parse_envelope(body))


def order(account, oid, total, items, created, updated=None, shipping="unshipped", payment="completed",
          currency="USD", name="Ann Buyer", kind="order.updated"):
    payload = {"id": oid, "created_at": created, "updated_at": updated or created, "total": total,
               "customer_email": f"{oid}@example.com", "shipping_country_id": "GB", "shipping_status": shipping,
               "payment_status": payment, "currency": {"id": currency},
               "items": [{"id": str(n), "product_id": product, "product_name": product, "quantity": quantity,
                          "price": price, "total": f"{Decimal(price) * quantity}"}
                         for n, (product, quantity, price) in enumerate(items, start=1)]}
    if name is None:
        del payload["customer_email"]
    else:
        payload["customer_name"] = name
    return json.dumps({"account_id": account, "type": kind, "payload": payload}).encode()


def hand_shops(store):
    """Shop 111 ('North Prints', USD) and shop 222 (GBP, name unknown), both with an order 1001. Made at Wed 18 Mar
    2026 12:00 the digest reports Mon 9 to Mon 16 Mar against 2 to 9 Mar."""
    store.cursors.remember_shop("111", "North Prints")
    put(store,
        # the week reported
        order("111", "1001", "30.0", [("Mug", 3, "10.0")], "2026-03-09T00:00:00Z", "2026-03-10T09:00:00Z",
              shipping="shipped"),
        order("111", "1002", "12.5", [("Tee", 1, "12.5")], "2026-03-15T23:59:00Z"),  # waiting 2 d 12 h
        order("111", "1003", "8.0", [("Tee", 1, "8.0")], "2026-03-10T10:00:00Z", payment="refunded"),
        order("222", "1001", "99.0", [("Zine", 5, "19.8")], "2026-03-11T09:00:00Z", currency="GBP",
              name=None),  # waiting 7 d 3 h: late
        # the week before; 0999's shipment arrives before its creation
        order("111", "1000", "20.0", [("Mug", 2, "10.0")], "2026-03-02T10:00:00Z", "2026-03-03T10:00:00Z",
              shipping="shipped"),
        order("111", "0999", "40.0", [("Tee", 2, "20.0")], "2026-03-08T23:59:59Z", "2026-03-09T08:00:00Z",
              shipping="shipped"),
        order("111", "0999", "40.0", [("Tee", 2, "20.0")], "2026-03-08T23:59:59Z", kind="order.created"),
        # this week (not reported, but waiting), and after `now`
        order("111", "1004", "15.0", [("Tee", 3, "5.0")], "2026-03-16T00:00:00Z"),  # (the end: not reported)
        order("111", "1005", "70.0", [("Mug", 7, "10.0")], "2026-03-19T00:00:00Z"))


@pytest.fixture
def hand_frames(tmp_path):
    with EventStore(tmp_path / "hand.db") as store:
        hand_shops(store)
        return analysis.frames(store)


NOW = "2026-03-18T12:00:00Z"


def test_the_lines_of_every_shop_are_hand_computed(hand_frames):
    summary = summarise(hand_frames, "week", NOW)
    assert summary.text().splitlines() == [
        "Weekly digest: week of 9 Mar 2026",
        "",
        "Revenue (GBP): £99.00 (week before: £0.00)",
        "Revenue (USD): $42.50 (week before: $60.00, -29.2%)",
        "Orders: 3 (week before: 2, +50.0%)",
        "Average order (GBP): £99.00 (week before: no orders)",
        "Average order (USD): $21.25 (week before: $30.00, -29.2%)",
        "Waiting to ship: 3 paid orders not shipped, 1 late (over 3 days); oldest #1001, waiting 7 d 3 h",
        "Top product: Zine: 5 sold in 1 order",
    ]
    values = summary.values()
    assert values["Revenue (USD)"] == (Decimal("42.50"), Decimal("60.00"))
    assert values["Average order (USD)"] == (Decimal("21.25"), Decimal("30.00"))
    assert values["Waiting to ship"] == (3, 1)


def test_one_shops_lines_leave_the_other_shop_out(hand_frames):
    summary = summarise(analysis.for_shop(hand_frames, "111"), "week", NOW, promised_days=2)
    assert summary.text().splitlines() == [
        "Weekly digest of North Prints: week of 9 Mar 2026",
        "",
        "Revenue: $42.50 (week before: $60.00, -29.2%)",
        "Orders: 2 (week before: 2, +0.0%)",
        "Average order: $21.25 (week before: $30.00, -29.2%)",
        "Waiting to ship: 2 paid orders not shipped, 2 late (over 2 days); oldest #1002, waiting 2 d 12 h",
        "Top product: Mug: 3 sold in 1 order",
    ]
    assert "<th style='text-align:left'>Revenue</th>" in summary._repr_html_()


def test_a_store_without_orders_says_so(tmp_path):
    with EventStore(tmp_path / "empty.db") as store:
        frames = analysis.frames(store)
    assert summarise(frames, "month", NOW).text().splitlines()[2:] == [
        "Revenue: no orders yet", "Waiting to ship: nothing: every paid order is shipped",
        "Top product: no sales this period"]


@pytest.mark.parametrize("period, now, start, end, previous, label", [
    ("week", "2026-03-16T00:00:00Z", "2026-03-09", "2026-03-16", "2026-03-02", "week of 9 Mar 2026"),
    ("week", "2026-03-15T23:59:59Z", "2026-03-02", "2026-03-09", "2026-02-23", "week of 2 Mar 2026"),
    ("week", "2026-01-02T08:00:00+05:00", "2025-12-22", "2025-12-29", "2025-12-15", "week of 22 Dec 2025"),
    ("month", "2028-03-01T00:00:00Z", "2028-02-01", "2028-03-01", "2028-01-01", "February 2028"),
    ("month", "2028-01-31T23:00:00-02:00", "2028-01-01", "2028-02-01", "2027-12-01", "January 2028"),
])
def test_the_period_is_the_last_whole_one_before_now_in_utc(period, now, start, end, previous, label):
    found = span(period, now)
    assert (found.start, found.end, found.previous) == tuple(pd.Timestamp(t, tz="UTC") for t in (start, end, previous))
    assert found.label == label and found.since == found.end - pd.DateOffset(years=1)


def test_notebook_is_a_thin_caller_of_the_library():
    cells = json.loads(NOTEBOOK.read_text())["cells"]
    code = [c for c in cells if c["cell_type"] == "code"]
    assert code[0]["metadata"]["tags"] == ["parameters"] and "Config.load" in "".join(code[1]["source"])
    names = [line.split("=")[0].strip() for line in "".join(code[0]["source"]).splitlines()]
    assert names == ["db", "period", "shop", "now", "promised_days"]  # (what make_digest passes: papermill
    for index, cell in enumerate(cells):                                #  warns of any other)
        if cell["cell_type"] == "code":
            text = "".join(cell["source"])
            assert cells[index - 1]["cell_type"] == "markdown", index
            assert not re.search(r"^\s*(def|class)\s", text, re.M) and len(text.splitlines()) <= 8, text
            assert not cell["outputs"] and cell["execution_count"] is None  # (stored clean: it is a template)
    assert "bchooks/digest/digest.ipynb" in NOTEBOOK.as_posix()
    assert '"digest/digest.ipynb"' in (ROOT / "pyproject.toml").read_text()  # shipped in the package


def test_urls_split_on_spaces_and_commas_but_not_inside_a_url():
    assert split_urls(" mailto://u:p@h?to=a@x.com,b@y.com, ntfy://ntfy.sh/t\nslack://A/B/C,json://h ") == [
        "mailto://u:p@h?to=a@x.com,b@y.com", "ntfy://ntfy.sh/t", "slack://A/B/C", "json://h"]
    assert split_urls(["ntfy://ntfy.sh/t", ""]) == ["ntfy://ntfy.sh/t"]


class Sink:
    """A real SMTP server on 127.0.0.1 (aiosmtpd) that takes one login (user, PASSWORD) and keeps the mail."""

    def __init__(self):
        from aiosmtpd.controller import Controller
        from aiosmtpd.smtp import AuthResult
        self.mails, self.logins = [], []

        def login(server, session, envelope, mechanism, data):
            self.logins.append((data.login.decode(), data.password.decode()))
            return AuthResult(success=data.password.decode() == PASSWORD)

        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port, authenticator=login,
                                     auth_require_tls=False)

    async def handle_DATA(self, server, session, envelope):
        self.mails.append(envelope)
        return "250 OK"

    def url(self, port=None):
        return (f"mailto://shop:{PASSWORD}@127.0.0.1:{port or self.port}?from=digest@example.com"
                f"&to=seller@example.com")


@pytest.fixture
def sink():
    quiet = logging.getLogger("mail.log")  # (aiosmtpd's own log: a deprecation note on every login)
    level, quiet.level = quiet.level, logging.ERROR
    server = Sink()
    server.controller.start()
    yield server
    server.controller.stop()
    quiet.setLevel(level)


def closed_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]  # (closed again once the probe is)


@pytest.fixture
def root_log():
    """The process's log on stderr, as `bchooks serve` and `worker` set it up (where apprise's records would go)."""
    handler = logging.StreamHandler(sys.stderr)
    logging.getLogger().addHandler(handler)
    yield
    logging.getLogger().removeHandler(handler)


def test_send_reaches_every_service_it_can_and_names_the_one_it_cannot(sink, tmp_path, capfd, root_log):
    page = tmp_path / "page.html"
    page.write_text("<p>the page</p>")
    reached = send(sink.url(), "Weekly digest", "Revenue: $1.00\nOrders: 1", attachments=[page])
    assert reached == [f"E-Mail (mailto://127.0.0.1:{sink.port}/seller%40example.com)"]
    assert sink.logins == [("shop", PASSWORD)] and len(sink.mails) == 1
    dead = closed_port()
    with pytest.raises(NotifyError) as raised:
        send(f"{sink.url(dead)}, {sink.url()}", "Weekly digest", "Revenue: $1.00")
    assert str(raised.value) == (f'could not notify E-Mail (mailto://127.0.0.1:{dead}/seller%40example.com): '
                                 f'Connection error while submitting email to "127.0.0.1" (sent to E-Mail '
                                 f'(mailto://127.0.0.1:{sink.port}/seller%40example.com))')
    assert len(sink.mails) == 2 and raised.value.reached == tuple(reached)
    said = capfd.readouterr()
    assert PASSWORD not in said.out + said.err and "Connection error" not in said.err  # (apprise's log: kept off)
    assert redact(f"it said {PASSWORD}") == "it said [redacted]"  # (remembered: redacted from every message)


def test_the_secret_parts_apprise_masks_are_remembered_wherever_they_sit():
    from bchooks.notify import check_urls
    (telegram,) = check_urls("tgram://123456789:AAHk-bot-token-0042/55510")  # (the bot's token is the host)
    assert telegram.service_name == "Telegram"
    assert redact("token AAHk-bot-token-0042 for bot 123456789, chat 55510") == (
        "token [redacted] for bot [redacted], chat 55510")


def test_a_url_apprise_cannot_read_is_refused_by_position_without_its_secret():
    with pytest.raises(ConfigError) as raised:
        send(f"ntfy://ntfy.sh/topic nope://user:{PASSWORD}@host", "t", "b")
    assert "URL 2 (nope://...)" in str(raised.value) and PASSWORD not in str(raised.value)
    with pytest.raises(ConfigError, match="BCHOOKS_NOTIFY_URLS"):
        send(" , ", "t", "b")


@pytest.mark.parametrize("cell, timeout, said", [
    (f"raise ValueError('no luck with {PASSWORD}')", 60,
     "the digest's notebook failed in cell 3: ValueError: no luck with [redacted]"),
    ("import time\ntime.sleep(60)", 1, "the digest's notebook did not finish: a cell ran longer than 1 s"),
])
def test_a_notebook_that_fails_or_runs_too_long_is_one_report_error(tmp_path, monkeypatch, capfd, cell, timeout,
                                                                     said):
    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook

    from bchooks.digest import report
    from bchooks.errors import ReportError
    from bchooks.secrecy import remember
    remember(PASSWORD)
    notebook = new_notebook(cells=[new_code_cell("db = None", metadata={"tags": ["parameters"]}),
                                   new_code_cell(cell)], metadata={"kernelspec": {
        "name": "python3", "display_name": "Python 3", "language": "python"}})
    nbformat.write(notebook, tmp_path / "failing.ipynb")
    monkeypatch.setattr(report, "NOTEBOOK", tmp_path / "failing.ipynb")
    with pytest.raises(ReportError) as raised:
        report.run_notebook({"db": "x.db"}, timeout=timeout)
    assert str(raised.value) == said
    said = capfd.readouterr()  # (neither the kernel's log nor papermill's (nbclient's) on the terminal)
    for noise in ("IPKernelApp", "Traceback", "Timeout waiting", "Executing", PASSWORD):
        assert noise not in said.out + said.err, noise


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory):
    """The demo shop's year up to END (account 1234567, USD) and a second shop (222, GBP) with an order waiting."""
    path = tmp_path_factory.mktemp("digest") / "events.db"
    bodies, _ = trading_history(7, 300, END)
    with EventStore(path) as store:
        put(store, *bodies)
        put(store, order("222", "G-77", "45.0", [("Zine", 3, "15.0")], "2026-11-25T10:00:00Z", currency="GBP"))
    return path


def digest(args, cwd, notify_urls=""):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
           "BCHOOKS_NOTIFY_URLS": notify_urls}
    return subprocess.run([sys.executable, "-m", "bchooks", "digest", "--now", END.isoformat(), *args], cwd=cwd,
                          env=env, capture_output=True, text=True, timeout=240)


def said_on_stderr(done):
    """What the command wrote on stderr, but for matplotlib's note on a machine whose font cache is not built yet."""
    return [line for line in done.stderr.splitlines() if "building the font cache" not in line]


def week_revenue(db, account):
    """The reported week's revenue, computed here from the frames: not refunded, placed Mon 23 to Mon 30 Nov."""
    with EventStore(db) as store:
        orders = analysis.frames(store).orders
    week = orders[(orders["account_id"] == account) & (orders["payment_status"] != "refunded")
                  & (orders["created_at"] >= pd.Timestamp("2026-11-23", tz="UTC"))
                  & (orders["created_at"] < pd.Timestamp("2026-11-30", tz="UTC"))]
    return f"${Decimal(int(week['total_cents'].sum())) / 100:,.2f}"


def test_digest_made_from_a_real_store_is_a_page_with_plots_and_money_and_is_mailed(demo_db, sink, tmp_path):
    done = digest(["--db", str(demo_db), "--shop", "1234567", "--send", "--html", "week.html"], tmp_path,
                  sink.url())
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "Weekly digest of shop 1234567: week of 23 Nov 2026"
    assert lines[2].startswith(f"Revenue: {week_revenue(demo_db, '1234567')} (week before: $")
    assert [line.split(":")[0] for line in lines[2:7]] == ["Revenue", "Orders", "Average order", "Waiting to ship",
                                                          "Top product"]
    assert lines[-2:] == ["saved: week.html", f"sent to E-Mail (mailto://127.0.0.1:{sink.port}/seller%40example.com)"]
    assert said_on_stderr(done) == [] and PASSWORD not in done.stdout

    page = (tmp_path / "week.html").read_text()
    assert len(re.findall(r'<img[^>]+src="data:image/png;base64,', page)) >= 2  # revenue and best sellers
    assert "<title>Weekly digest of shop 1234567: week of 23 Nov 2026</title>" in page
    assert lines[2].split(": ", 1)[1] in page  # the summary as the message says it
    assert re.search(r"<td>\$\d{1,3}(,\d{3})*\.\d{2}</td>", page)  # the tables' money
    for code in ("Config.load", "analysis.frames", "open_store", "promised_days =", str(demo_db), "total_cents",
                 "Traceback", "G-77"):  # no code, no settings, no raw columns, not the other shop
        assert code not in page, code

    (mail,) = sink.mails
    assert mail.rcpt_tos == ["seller@example.com"]
    message = email.message_from_bytes(mail.content)
    assert message["Subject"] == lines[0]
    text = next(part for part in message.walk() if part.get_content_type() == "text/plain")
    assert text.get_payload(decode=True).decode().splitlines()[:7] == lines[:7]
    (attached,) = [part for part in message.walk() if part.get_filename()]
    assert attached.get_filename() == "week.html" and attached.get_payload(decode=True).decode() == page


def test_a_failing_notification_is_one_line_without_the_password(demo_db, sink, tmp_path):
    dead = closed_port()
    done = digest(["--db", str(demo_db), "--send"], tmp_path, f"{sink.url(dead)} {sink.url()}")
    assert done.returncode == 1
    (line,) = said_on_stderr(done)
    assert line.startswith(f"bchooks: could not notify E-Mail (mailto://127.0.0.1:{dead}/seller%40example.com): "
                           "Connection error")
    assert PASSWORD not in done.stdout + done.stderr
    assert "Revenue (GBP): £45.00 (week before: £0.00)" in done.stdout  # every shop's digest
    (mail,) = sink.mails  # (the other place got it)
    message = email.message_from_bytes(mail.content)
    (attached,) = [part for part in message.walk() if part.get_filename()]
    assert attached.get_filename() == "digest-week-2026-11-23.html" and b"data:image/png;base64," in \
        attached.get_payload(decode=True)
    assert list(tmp_path.iterdir()) == []  # sent only: the page was attached, not left here


def test_a_missing_store_is_one_line_and_is_not_created(tmp_path, capsys):
    missing = tmp_path / "missing.db"
    assert main(["digest", "--db", str(missing), "--now", END.isoformat()]) == 2
    said = capsys.readouterr()
    assert said.err == f"bchooks: no event store at {missing} (check --db or BCHOOKS_DB)\n" and said.out == ""
    assert list(tmp_path.iterdir()) == []


def test_a_shop_the_store_lacks_and_a_time_that_is_none_are_one_line(demo_db, capsys):
    assert main(["digest", "--db", str(demo_db), "--shop", "999"]) == 2
    assert capsys.readouterr().err == "bchooks: the store holds no orders of shop 999 (its shops: 1234567, 222)\n"
    assert main(["digest", "--db", str(demo_db), "--now", "soon"]) == 2
    assert "not a time: 'soon'" in capsys.readouterr().err
