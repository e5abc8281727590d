"""Making the digest: its summary in this process, its notebook (`digest.ipynb`, beside this module) run headless
by papermill in one kernel, and the executed notebook as one HTML page a seller reads: no code, the plots embedded
as PNG images, the tables formatted."""

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import analysis
from ..config import Config
from ..errors import InputError, ReportError
from ..secrecy import printable, redact
from ..store import is_url, open_store
from .summary import PERIODS, Summary, moment, summarise

#: the notebook papermill runs; it ships inside the package, so the digest runs from any folder
NOTEBOOK = Path(__file__).with_name("digest.ipynb")
#: the kernel that runs it: the `python3` of the environment bchooks runs in (ipykernel's)
KERNEL = "python3"
#: the kernel's own log kept off stderr (ipykernel warns there that its loopback TCP is not encrypted, and prints
#: a traceback when it is stopped in the middle of a cell): what goes wrong comes back as a `ReportError`
KERNEL_ARGUMENTS = ["--IPKernelApp.log_level=CRITICAL"]
#: seconds the kernel may take to start, and each of the notebook's cells to run
START_TIMEOUT = 60
CELL_TIMEOUT = 300
#: the cells kept out of the page: the settings and the reading of the store (code and its notes), and notes
#: written for the notebook's reader rather than the seller
HIDDEN_TAGS = ("parameters", "injected-parameters", "setup", "note")


@dataclass(frozen=True)
class Digest:
    """A digest: its `summary` (title and lines, `summary.text()` for a message), its `html` page, and the shop it
    is of (None: every shop in the store)."""

    summary: Summary
    html: str
    shop: str | None = None

    @property
    def title(self) -> str:
        return self.summary.title

    @property
    def filename(self) -> str:
        """`digest-week-2026-11-23.html` (the period and its first day; `-ACCOUNT` for one shop's)."""
        span = self.summary.span
        shop = f"-{self.shop}" if self.shop else ""
        return f"digest-{span.period}-{span.start:%Y-%m-%d}{shop}.html"

    def save(self, path: str | os.PathLike) -> Path:
        """Write the page to `path` (its folder must exist); returns the path."""
        path = Path(path)
        try:
            path.write_text(self.html, encoding="utf-8")
        except OSError as error:
            raise InputError(f"cannot write the digest to {path}: {error.strerror or error}") from error
        return path


def _require(*modules: str) -> None:
    """A `ReportError` naming what to install when one of the digest's optional packages is missing."""
    import importlib.util
    missing = [name for name in modules if importlib.util.find_spec(name) is None]
    if missing:
        raise ReportError(f"the digest needs {', '.join(missing)}: pip install 'bchooks[digest]'")


def _frames(config: Config, shop: str | None) -> analysis.Frames:
    """The store's frames (one shop's with `shop`); a missing store is `MissingStore` (never created), a shop the
    store has no orders of an `InputError` naming the shops it has."""
    store = open_store(config, create=False)
    try:
        frames = analysis.frames(store)
    finally:
        store.close()
    if shop is None:
        return frames
    accounts = sorted(str(a) for a in frames.orders["account_id"].dropna().unique())
    if str(shop) not in accounts:
        known = f"its shops: {', '.join(accounts)}" if accounts else "it holds no orders of any shop"
        raise InputError(f"the store holds no orders of shop {printable(shop, 40)} ({known})")
    return analysis.for_shop(frames, str(shop))


def run_notebook(parameters: dict, timeout: float = CELL_TIMEOUT) -> Any:
    """The digest's notebook run by papermill with `parameters` in one `KERNEL` kernel (nothing written to disk);
    returns the executed notebook. A failing cell, a kernel that cannot start, or a cell running longer than
    `timeout` seconds is a `ReportError` (secrets redacted)."""
    import papermill
    from jupyter_client.kernelspec import NoSuchKernel
    from nbclient.exceptions import CellTimeoutError, DeadKernelError
    _quiet_logs()
    try:
        return papermill.execute_notebook(str(NOTEBOOK), None, parameters=parameters, kernel_name=KERNEL,
                                          progress_bar=False, log_output=False, start_timeout=START_TIMEOUT,
                                          execution_timeout=timeout, extra_arguments=KERNEL_ARGUMENTS)
    except papermill.PapermillExecutionError as error:
        raise ReportError(redact(f"the digest's notebook failed in cell {error.exec_count}: {error.ename}: "
                                 f"{printable(error.evalue, 300)}")) from None
    except NoSuchKernel:
        raise ReportError(f"no Jupyter kernel {KERNEL!r} to run the digest's notebook: install ipykernel in the "
                          "environment bchooks runs in") from None
    except CellTimeoutError:
        raise ReportError(f"the digest's notebook did not finish: a cell ran longer than {timeout:g} s") from None
    except (DeadKernelError, RuntimeError, TimeoutError) as error:  # (a kernel that died or did not start)
        raise ReportError(redact(f"the digest's notebook did not finish: {printable(error, 300)}")) from None


def _quiet_logs() -> None:
    """Keep papermill's log (nbclient's too: a cell's timeout) out of the process's handlers and off stderr: what
    goes wrong comes back as a `ReportError`."""
    import logging
    logger = logging.getLogger("papermill")
    logger.propagate = False
    if not any(isinstance(handler, logging.NullHandler) for handler in logger.handlers):
        logger.addHandler(logging.NullHandler())


def notebook_html(notebook: Any, title: str) -> str:
    """The executed notebook as one page a seller reads: the markdown and the outputs, no code and no prompts, the
    settings cells (`HIDDEN_TAGS`) and any stderr left out, images embedded."""
    from nbconvert import HTMLExporter
    from traitlets.config import Config as Settings
    for cell in notebook.cells:
        if cell.cell_type == "code":
            cell.outputs = [out for out in cell.outputs if not (out.output_type == "stream" and out.name == "stderr")]
    exporter = HTMLExporter(config=Settings({
        "HTMLExporter": {"exclude_input": True, "exclude_input_prompt": True, "exclude_output_prompt": True},
        "TagRemovePreprocessor": {"enabled": True, "remove_cell_tags": set(HIDDEN_TAGS)},
    }))
    html, _ = exporter.from_notebook_node(notebook, resources={"metadata": {"name": title}})
    return html


def make_digest(config: Config, period: str = "week", shop: str | None = None, now: Any = None,
                timeout: float = CELL_TIMEOUT) -> Digest:
    """The digest of the last whole `period` (`week` or `month`) before `now` (default now) of the store
    `config.db` names (one shop's with `shop`, an account id): its summary (`summary.summarise`) and its page
    (the notebook run headless). A read: a missing store is `MissingStore`, never created, and no kernel starts."""
    if period not in PERIODS:
        raise InputError(f"the period is week or month, not {printable(period, 20)!r}")
    _require("papermill", "nbconvert", "ipykernel", "babel")
    when = moment(now)
    frames = _frames(config, shop)
    summary = summarise(frames, period, when, promised_days=config.promised_days)
    db = config.db if is_url(config.db) else os.path.abspath(config.db)
    parameters = {"db": db, "period": period, "shop": None if shop is None else str(shop),
                  "now": when.isoformat(), "promised_days": config.promised_days}
    return Digest(summary, notebook_html(run_notebook(parameters, timeout), summary.title), parameters["shop"])
