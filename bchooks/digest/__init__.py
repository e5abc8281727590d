"""The digest: how the last week (or month) went, as a page a seller reads and a few lines sent to them.

    from bchooks import Config, digest, notify
    made = digest.make_digest(Config.load(), "week")          # runs digest.ipynb headless (papermill)
    made.save("digest.html"); print(made.summary.text())
    notify.send(config.notify_urls, made.title, made.summary.text(), attachments=["digest.html"])

    summary.py   the periods and the summary's lines (`summarise`, `LINES`: one function a line)
    tables.py    the page's tables as a person reads them (money, waits, dates)
    report.py    running the notebook and turning it into one HTML page (`make_digest`)
    digest.ipynb the notebook: a thin caller of `bchooks.analysis` and of this package
"""

from .report import NOTEBOOK, Digest, make_digest
from .summary import LINES, PERIODS, Line, Periods, Span, Summary, between, shop_label, span, summarise
from .tables import amount_text, best_sellers_table, duration_text, waiting_table

__all__ = ["LINES", "NOTEBOOK", "PERIODS", "Digest", "Line", "Periods", "Span", "Summary", "amount_text",
           "between", "best_sellers_table", "duration_text", "make_digest", "shop_label", "span", "summarise",
           "waiting_table"]
