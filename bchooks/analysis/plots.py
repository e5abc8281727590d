"""Plot helpers for the reports: each returns a new matplotlib `Figure` (no pyplot, no global state) that shows
itself as a picture in JupyterLab and in stored notebook outputs. Each plots one report; for one shop's figure, make
the report from that shop's frames (`analysis.for_shop`) and pass its name as `shop` (the title says it).

A bare `Figure` made without pyplot has no rich display in IPython (only the text `<Figure size 800x350 with 1
Axes>`); `ReportFigure` adds `_repr_png_`, so the notebook stores an `image/png` next to that text.
"""

import io
from typing import TYPE_CHECKING

from matplotlib.figure import Figure

if TYPE_CHECKING:
    import pandas as pd


class ReportFigure(Figure):
    """A `Figure` that displays as a PNG image in Jupyter."""

    def _repr_png_(self):
        buffer = io.BytesIO()
        self.savefig(buffer, format="png", dpi=100)
        return buffer.getvalue()


def _figure(title, shop=None, width=8, height=3.5):
    figure = ReportFigure(figsize=(width, height), layout="constrained")
    axes = figure.add_subplot()
    axes.set_title(f"{title}: {shop}" if shop else title)
    return figure, axes


def revenue_figure(revenue: "pd.DataFrame", shop: str | None = None) -> ReportFigure:
    """Lines of revenue per period, one per currency, from `analysis.revenue(...)` (`shop`: the shop's name or
    account for the title, when the report is one shop's: `analysis.for_shop`)."""
    figure, axes = _figure("Revenue per period", shop)
    for currency, rows in revenue.groupby("currency"):
        axes.plot(rows["period"].dt.tz_convert(None), rows["revenue"].astype(float), marker="o", label=currency)
    axes.set_ylabel("revenue (own currency)")
    if len(revenue):
        axes.legend(title="currency")
    figure.autofmt_xdate()
    return figure


def top_products_figure(products: "pd.DataFrame", measure: str = "units",
                        shop: str | None = None) -> ReportFigure:
    """Horizontal bars of `analysis.top_products(...)` by `units` or `revenue` (one currency at a time)."""
    title = f"Top products by {measure}"
    if "currency" in products and products["currency"].nunique() > 1:
        raise ValueError("pick one currency first: products[products.currency == 'USD']")
    figure, axes = _figure(title, shop, height=0.35 * max(len(products), 4) + 1)
    labels = products["product_name"] + (" / " + products["option_name"] if "option_name" in products else "")
    axes.barh(labels[::-1], products[measure][::-1].astype(float))
    axes.set_xlabel(measure)
    return figure


def countries_figure(countries: "pd.DataFrame", shop: str | None = None) -> ReportFigure:
    """Bars of orders per shipping country, from `analysis.sales_by_country(...)`."""
    figure, axes = _figure("Orders per shipping country", shop)
    per_country = countries.groupby("country", sort=False)["orders"].sum()
    axes.bar(per_country.index, per_country.values)
    axes.set_ylabel("orders")
    return figure
