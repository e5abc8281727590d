"""Plots are pictures: every plot helper's figure has a PNG representation, which Jupyter displays and stores."""

from decimal import Decimal

import numpy as np
import pandas as pd
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


def retention_table():
    """The `analysis.retention` contract: index cohort, `customers`, then the months since the first order."""
    return pd.DataFrame({"customers": [40, 7], 0: [1.0, 1.0], 1: [0.25, np.nan]},
                        index=pd.Index(pd.to_datetime(["2025-12-01", "2026-01-01"], utc=True), name="cohort"))


def figures(orders, items):
    units = analysis.top_products(items, by="units", n=5, options=True)
    return [plots.revenue_figure(analysis.revenue(orders, "W")), plots.top_products_figure(units, "units"),
            plots.countries_figure(analysis.sales_by_country(orders)), plots.weekday_hour_figure(orders),
            plots.retention_figure(retention_table()),
            plots.top_products_figure(analysis.top_products(items, by="revenue", n=5), "revenue"),
            plots.revenue_figure(analysis.revenue(orders.iloc[:0], "W"))]


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
    assert revenue.axes[0].get_title() == "Revenue per week: North Prints"
    assert sum(bar.get_height() for bar in bars(revenue.axes[0])) == pytest.approx(float(weekly["revenue"].sum()))
    countries = plots.countries_figure(analysis.sales_by_country(shop.orders), shop="North Prints")
    assert sum(bar.get_height() for bar in countries.axes[0].patches) == 30
    units = plots.top_products_figure(analysis.top_products(shop.items, by="units"), "units", shop="111")
    assert units.axes[0].get_title() == "Top products by units: 111"
    assert plots.revenue_figure(weekly).axes[0].get_title() == "Revenue per week"


def bars(axes):
    """The revenue bars of an axes (its one bar container)."""
    (container,) = axes.containers
    return list(container)


def line(axes, gid):
    """The line an axes drew with `gid` (`trend`, `year_before`), or None."""
    found = [drawn for drawn in axes.get_lines() if drawn.get_gid() == gid]
    return found[0] if found else None


def orders_on(days, cents, currency="USD", account="111"):
    """A hand-built orders frame: one completed order per day (UTC midnight) with its total in cents."""
    return pd.DataFrame({"account_id": account, "created_at": pd.to_datetime(days, utc=True),
                         "currency": pd.Categorical([currency] * len(days)), "payment_status": "completed",
                         "total_cents": pd.array(cents, dtype="Int64")})


def test_weekly_revenue_is_bars_with_zero_weeks_and_a_trend_but_no_year_before_without_the_data():
    # weeks of 1, 8 (none), 15, 22 and 29 Dec 2025; 2 Dec and 3 Dec are the same week
    orders = orders_on(["2025-12-02", "2025-12-03", "2025-12-16", "2025-12-23", "2025-12-30"],
                       [10000, 2550, 4000, 6000, 8000])
    figure = plots.revenue_figure(analysis.revenue(orders, "W"), shop="North")
    (axes,) = figure.axes
    assert [bar.get_height() for bar in bars(axes)] == [125.5, 0.0, 40.0, 60.0, 80.0]  # the empty week: a zero bar
    widths = {round(bar.get_width(), 6) for bar in bars(axes)}
    assert widths == {round(7 * 0.8, 6)}  # a week wide each, never joined across a gap
    trend = line(axes, "trend")
    assert trend.get_label() == "4-week average"
    assert list(trend.get_ydata()[3:]) == [pytest.approx((125.5 + 0 + 40 + 60) / 4), pytest.approx(45.0)]
    assert np.isnan(trend.get_ydata()[:3]).all()  # (drawn from the first week that has four before it)
    assert line(axes, "year_before") is None  # the data does not reach a year back
    assert axes.get_ylabel() == "Revenue (USD)"
    assert axes.yaxis.get_major_formatter()(1500, 0) == "$1,500"
    assert [text.get_text() for text in axes.get_legend().get_texts()] == ["4-week average", "revenue"]


def test_the_same_weeks_a_year_before_are_drawn_only_where_the_data_reaches():
    days = ["2024-12-03", "2024-12-17"] + ["2025-11-25", "2025-12-02", "2025-12-09", "2025-12-16"]
    orders = orders_on(days, [1000, 3000, 500, 700, 900, 1100])
    figure = plots.revenue_figure(analysis.revenue(orders, "W"))
    (axes,) = figure.axes
    heights = [bar.get_height() for bar in bars(axes)]
    assert len(heights) == 52 and heights[-4:] == [5.0, 7.0, 9.0, 11.0]  # the last year; earlier: a year before
    before = line(axes, "year_before").get_ydata()
    assert line(axes, "year_before").get_label() == "same week a year before"
    # 52 weeks before the shown weeks of 2 Dec 2025 .. 16 Dec 2025: 3 Dec 2024 (10.0), 10 Dec (none: 0), 17 Dec
    assert list(before[-3:]) == [10.0, 0.0, 30.0]
    assert np.isnan(before[0])  # 52 weeks before the first shown week: before the first order, not drawn as zero


def test_currencies_are_never_mixed_on_one_axis_and_each_shop_has_its_own():
    usd = orders_on(["2025-12-02", "2025-12-09"], [10000, 2000], "USD", "111")
    cad = orders_on(["2025-12-02", "2025-12-23"], [5000, 7000], "CAD", "222")
    both = pd.concat([usd, cad], ignore_index=True)
    both["currency"] = both["currency"].astype("category")
    mixed = plots.revenue_figure(analysis.revenue(both, "W"))
    assert [axes.get_ylabel() for axes in mixed.axes] == ["Revenue (CAD)", "Revenue (USD)"]
    assert [[bar.get_height() for bar in bars(axes)] for axes in mixed.axes] == [[50.0, 0.0, 0.0, 70.0],
                                                                                 [100.0, 20.0]]
    assert mixed.axes[0].yaxis.get_major_formatter()(1500, 0) == "CA$1,500"
    shops = plots.revenue_figure({"North": analysis.revenue(usd, "W"), "South": analysis.revenue(cad, "W")})
    assert [axes.get_title() for axes in shops.axes] == ["Revenue per week: North", "Revenue per week: South"]
    naive = analysis.revenue(usd, "W").assign(period=lambda frame: frame["period"].dt.tz_convert(None))
    assert [bar.get_height() for bar in bars(plots.revenue_figure(naive).axes[0])] == [100.0, 20.0]
    assert [axes.get_ylabel() for axes in shops.axes] == ["Revenue (USD)", "Revenue (CAD)"]
    monthly = plots.revenue_figure(analysis.revenue(usd, "M"), shop="North")
    assert monthly.axes[0].get_title() == "Revenue per month: North" and len(bars(monthly.axes[0])) == 1
    with pytest.raises(ValueError):
        plots.revenue_figure(analysis.revenue(usd, "W"), freq="Q")


def test_orders_by_weekday_and_hour_in_utc_or_a_given_zone():
    orders = orders_on(["2025-12-01 02:30", "2025-12-01 02:59", "2025-12-07 23:00", "2025-12-03 12:00"],
                       [100, 200, 300, 400])
    orders.loc[3, "payment_status"] = "refunded"  # placed all the same: when people buy
    table = analysis.weekday_hours(orders)
    assert table.shape == (7, 24) and table.index.tolist()[0] == "Mon" and int(table.to_numpy().sum()) == 4
    assert (table.loc["Mon", 2], table.loc["Sun", 23], table.loc["Wed", 12]) == (2, 1, 1)
    new_york = analysis.weekday_hours(orders, "America/New_York")  # UTC-5 in December
    assert (new_york.loc["Sun", 21], new_york.loc["Sun", 18]) == (2, 1)
    figure = plots.weekday_hour_figure(orders, tz="America/New_York", shop="North")
    axes = figure.axes[0]
    assert axes.get_title() == "Orders by weekday and hour (America/New_York): North"
    assert axes.get_xlabel() == "Hour of the day (America/New_York)"
    assert (axes.images[0].get_array() == new_york.to_numpy()).all()
    assert plots.weekday_hour_figure(orders).axes[0].get_title() == "Orders by weekday and hour (UTC)"
    naive = orders.assign(created_at=orders["created_at"].dt.tz_convert(None))  # (a frame built by hand: UTC)
    assert analysis.weekday_hours(naive).equals(table)


def test_retention_heatmap_is_annotated_as_percentages():
    figure = plots.retention_figure(retention_table())
    axes = figure.axes[0]
    assert sorted(text.get_text() for text in axes.texts) == ["100%", "100%", "25%"]  # none where not reached
    assert [label.get_text() for label in axes.get_yticklabels()] == ["Dec 2025 (40)", "Jan 2026 (7)"]
    assert axes.get_xlabel() == "Months since the first order"
    assert plots.retention_figure(retention_table().iloc[:0]).axes[0].texts[0].get_text() == "No customers yet"


def test_product_labels_never_end_in_a_slash():
    products = pd.DataFrame({"product_name": ["Sticker Pack", "Tee"], "option_name": ["", "M"],
                             "currency": ["GBP", "GBP"], "units": [3, 2],
                             "revenue": [Decimal("18.00"), Decimal("60.00")]})
    figure = plots.top_products_figure(products, "units")
    assert [label.get_text() for label in figure.axes[0].get_yticklabels()] == ["Tee / M", "Sticker Pack"]
    by_revenue = plots.top_products_figure(products, "revenue")
    assert by_revenue.axes[0].get_xlabel() == "Revenue (GBP)"
    assert by_revenue.axes[0].xaxis.get_major_formatter()(40, 0) == "£40"
