"""Plots are pictures: every plot helper's figure has a PNG representation, which Jupyter displays and stores."""

import pytest
from IPython.core.formatters import DisplayFormatter

from bchooks import EventStore, analysis, parse_envelope
from bchooks.analysis import plots
from bchooks.simulator.shop import Shop


@pytest.fixture(scope="module")
def frames(tmp_path_factory):
    with EventStore(tmp_path_factory.mktemp("plots") / "events.db") as store:
        shop = Shop(3)
        for body in shop.events("order.created", 60) + shop.events("order.updated", 20):
            store.append(body, parse_envelope(body))
        return analysis.frames(store).orders, analysis.frames(store).items


def figures(orders, items):
    units = analysis.top_products(items, by="units", n=5, options=True)
    return [plots.revenue_figure(analysis.revenue(orders, "W")), plots.top_products_figure(units, "units"),
            plots.countries_figure(analysis.sales_by_country(orders))]


def test_every_plot_displays_as_a_png_image(frames):
    for figure in figures(*frames):
        data, _ = DisplayFormatter().format(figure)
        png = data.get("image/png")
        assert png and png[:8] == b"\x89PNG\r\n\x1a\n"
        width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
        assert width >= 600 and height >= 250, (width, height)


def test_a_shops_figure_names_the_shop_and_plots_only_its_orders(tmp_path):
    with EventStore(tmp_path / "events.db") as store:
        for account, count in (("111", 30), ("222", 50)):  # the same order numbers in both shops
            for body in Shop(4, account_id=account).events("order.created", count):
                store.append(body, parse_envelope(body))
        frames = analysis.frames(store)
    shop = analysis.for_shop(frames, "111")
    weekly = analysis.revenue(shop.orders, "W")
    revenue = plots.revenue_figure(weekly, shop="North Prints")
    assert revenue.axes[0].get_title() == "Revenue per period: North Prints"
    assert sum(len(line.get_xdata()) for line in revenue.axes[0].get_lines()) == len(weekly)
    assert sum(sum(line.get_ydata()) for line in revenue.axes[0].get_lines()) == pytest.approx(
        float(weekly["revenue"].sum()))
    countries = plots.countries_figure(analysis.sales_by_country(shop.orders), shop="North Prints")
    assert sum(bar.get_height() for bar in countries.axes[0].patches) == 30
    units = plots.top_products_figure(analysis.top_products(shop.items, by="units"), "units", shop="111")
    assert units.axes[0].get_title() == "Top products by units: 111"
    assert plots.revenue_figure(weekly).axes[0].get_title() == "Revenue per period"
