"""The reports as a person reads them: exact strings for money, durations, percentages and dates; styled tables
that show money as money while the frame keeps its exact numbers."""

from datetime import timedelta
from decimal import Decimal

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from bchooks import analysis
from bchooks.analysis import present
from bchooks.analysis.present import (MISSING, amount_text, date_text, duration_text, money_text, percent_text,
                                      product_label, readable, styled)


@pytest.mark.parametrize("cents, currency, text", [
    (172045, "USD", "$1,720.45"),
    (1200, "GBP", "£12.00"),
    (172045, "EUR", "€1,720.45"),
    (172045, "CAD", "CA$1,720.45"),
    (172045, "AUD", "A$1,720.45"),
    (150000, "JPY", "¥1,500"),
    (150050, "JPY", "¥1,501"),  # no cents in yen: rounded half up
    (5, "USD", "$0.05"),
    (0, "USD", "$0.00"),
    (-172045, "USD", "-$1,720.45"),
    (-1200, "GBP", "-£12.00"),
    (172045, "SEK", "SEK 1,720.45"),  # a code for a symbol: a space before the number
    (172045, "usd", "$1,720.45"),
    (172045, None, "1,720.45"),  # no currency: the number alone
    (np.int64(99), "EUR", "€0.99"),
])
def test_money_reads_as_money_in_its_currency(cents, currency, text):
    assert money_text(cents, currency) == text


def test_two_dollar_shops_side_by_side_are_told_apart():
    texts = {money_text(100, code) for code in ("USD", "CAD", "AUD", "NZD", "MXN", "HKD")}
    assert len(texts) == 6 and sum(text.startswith("$") for text in texts) == 1


@pytest.mark.parametrize("missing", [None, pd.NA, np.nan, float("nan")])
def test_missing_money_reads_as_missing(missing):
    assert money_text(missing, "USD") == MISSING == "—"
    assert amount_text(missing, "USD") == MISSING


def test_decimal_amounts_and_whole_money_for_axes():
    assert amount_text(Decimal("1720.45"), "USD") == "$1,720.45"
    assert amount_text(Decimal("-0.004"), "USD") == "$0.00"  # never "-$0.00"
    assert amount_text(1234.5, "CAD", digits=0) == "CA$1,235"
    assert amount_text(Decimal("7"), None, digits=0) == "7"


@given(st.integers(min_value=-10**12, max_value=10**12))
def test_money_text_is_the_exact_amount_of_the_cents(cents):
    text = money_text(cents, "USD")
    assert Decimal(text.replace("$", "").replace(",", "")) == Decimal(cents).scaleb(-2)


@given(st.integers(min_value=-10**14, max_value=10**14),
       st.sampled_from(["USD", "GBP", "EUR", "CAD", "AUD", "JPY", "SEK", "INR", None]),
       st.sampled_from(["en_US", "de_DE", "fr_FR", "en_IN"]))
def test_the_quick_writer_writes_what_babel_writes(cents, currency, locale):
    digits = present._precision(currency)
    amount = Decimal(cents).scaleb(-2).quantize(Decimal(1).scaleb(-digits), rounding="ROUND_HALF_UP")
    assert present._writer(currency, digits, locale)(amount) == present._babel_writer(currency, digits, locale)(amount)


def test_another_locale_writes_its_own_separators():
    assert money_text(172045, "EUR", locale="de_DE") == "1.720,45\xa0€"
    assert money_text(12345678, "INR", locale="en_IN") == "₹1,23,456.78"  # (lakh grouping: Babel's own writer)


@pytest.mark.parametrize("value, text", [
    (pd.Timedelta(days=3, hours=4, minutes=5), "3 days 4 hours"),
    (pd.Timedelta(hours=18, minutes=59, seconds=59), "18 hours"),
    (pd.Timedelta(days=1), "1 day"),
    (pd.Timedelta(days=2, hours=1), "2 days 1 hour"),
    (pd.Timedelta(hours=1), "1 hour"),
    (pd.Timedelta(minutes=59), "under an hour"),
    (pd.Timedelta(0), "under an hour"),
    (timedelta(days=335, hours=16, minutes=12), "335 days 16 hours"),
    (np.timedelta64(90000, "s"), "1 day 1 hour"),
    (pd.Timedelta(hours=-5), "-5 hours"),
    (pd.NaT, MISSING),
    (None, MISSING),
])
def test_durations_read_in_days_and_hours(value, text):
    assert duration_text(value) == text


@pytest.mark.parametrize("share, text", [
    (0.398989898989899, "39.9%"), (1, "100.0%"), (0, "0.0%"), (-0.125, "-12.5%"), (-0.00001, "0.0%"),
    (Decimal("0.5"), "50.0%"), (12.3456, "1,234.6%"), (None, MISSING), (np.nan, MISSING), (float("inf"), MISSING),
])
def test_rates_read_as_percentages(share, text):
    assert percent_text(share) == text


def test_dates_read_as_dates_and_periods_as_periods():
    monday = pd.Timestamp("2025-12-01", tz="UTC")
    assert [date_text(monday, freq) for freq in ("D", "W", "M", "Q", "Y")] == [
        "1 Dec 2025", "Week of 1 Dec 2025", "Dec 2025", "Q4 2025", "2025"]
    assert date_text(pd.Period("2026-02", "M")) == "Feb 2026"
    assert date_text(pd.Timestamp("2025-12-01 23:30", tz="America/New_York")) == "2 Dec 2025"  # read in UTC
    assert present.moment_text(pd.Timestamp("2026-11-30 14:02:59", tz="UTC")) == "30 Nov 2026 14:02 UTC"
    assert date_text(pd.NaT) == MISSING
    with pytest.raises(ValueError):
        date_text(monday, "H")


def test_product_labels_never_end_in_a_slash():
    assert product_label("Sticker Pack", "") == "Sticker Pack"
    assert product_label("Sticker Pack", None) == "Sticker Pack"
    assert product_label("Tee", "M") == "Tee / M"
    assert product_label(None, "M") == "unknown product / M"


def test_headers_are_words():
    assert [present.header(name) for name in ("lifetime_value_cents", "created_at", "time_to_ship", "store_name",
                                              "aov", "repeat_rate", 13)] == [
        "Lifetime value", "Created", "Time to ship", "Shop", "Average order value", "Repeat rate", "13"]


def customers_frame():
    return pd.DataFrame({
        "customer_email": ["ada@example.com", "bo@example.com", "cy@example.com", None],
        "currency": pd.Categorical(["USD", "JPY", "GBP", "USD"]),
        "customer_name": ["Ada", "Bo", "Cy", None],
        "orders": [3, 1, 1200, 2],
        "first_order": pd.to_datetime(["2025-12-01 10:00", "2026-01-02 00:00", "2026-02-03 00:00", "2026-03-04 00:00"], utc=True),
        "last_order": pd.to_datetime(["2026-11-30 10:00", "2026-01-02 00:00", "2026-02-03 00:00", None], utc=True),
        "lifetime_value_cents": pd.array([172045, 150000, -1200, None], dtype="Int64"),
        "event_id": [1, 2, 3, 4],
        "rank_tie": [0, 0, 0, 0],
    })


def test_a_styled_report_shows_money_as_money_and_keeps_the_frame_exact():
    frame = customers_frame()
    before = frame.copy()
    html = styled(frame).to_html()
    assert "$1,720.45" in html and "¥1,500" in html and "-£12.00" in html and "1,200" in html
    assert "172045" not in html and "150000" not in html
    assert "Lifetime value" in html and "lifetime_value_cents" not in html and "First order" in html
    assert "1 Dec 2025" in html and "30 Nov 2026" in html
    assert "event_id" not in html and "rank_tie" not in html  # hidden columns
    pd.testing.assert_frame_equal(frame, before)  # the frame never changes
    assert frame["lifetime_value_cents"].iloc[0] == 172045


def test_readable_is_the_same_table_as_strings():
    text = readable(customers_frame())
    assert list(text.columns) == ["Email", "Currency", "Customer", "Orders", "First order", "Last order",
                                  "Lifetime value"]
    assert text["Lifetime value"].tolist() == ["$1,720.45", "¥1,500", "-£12.00", MISSING]
    assert text["Last order"].tolist() == ["30 Nov 2026", "2 Jan 2026", "3 Feb 2026", MISSING]
    assert text["Email"].iloc[3] == MISSING and text["Orders"].tolist() == ["3", "1", "1,200", "2"]
    assert all(isinstance(value, str) for value in text.to_numpy().ravel())


def test_report_money_durations_rates_and_periods_by_column():
    frame = pd.DataFrame({
        "period": pd.to_datetime(["2025-12-01", "2025-12-08"], utc=True),
        "currency": ["CAD", "AUD"],
        "revenue": [Decimal("1720.45"), Decimal("-3.10")],
        "age": [pd.Timedelta(days=3, hours=4), pd.Timedelta(minutes=5)],
        "refund_rate": [0.0625, np.nan],
        "share": [0.5, 1.0],
        "created_at": pd.to_datetime(["2025-12-01 14:02", "2025-12-09 08:00"], utc=True),
    })
    text = readable(frame)
    assert text.to_dict("list") == {
        "Period": ["Week of 1 Dec 2025", "Week of 8 Dec 2025"],
        "Currency": ["CAD", "AUD"],
        "Revenue": ["CA$1,720.45", "-A$3.10"],
        "Age": ["3 days 4 hours", "under an hour"],
        "Refund rate": ["6.2%", MISSING],
        "Share": ["50.0%", "100.0%"],
        "Created": ["1 Dec 2025 14:02 UTC", "9 Dec 2025 08:00 UTC"],
    }
    html = styled(frame).to_html()
    assert "CA$1,720.45" in html and "3 days 4 hours" in html and "6.2%" in html and "0.0625" not in html


def test_the_period_is_named_by_the_reports_frequency_or_guessed():
    weekly = pd.DataFrame({"period": pd.to_datetime(["2025-12-01", "2026-06-01"], utc=True), "orders": [1, 2]})
    assert readable(weekly)["Period"].tolist() == ["Dec 2025", "Jun 2026"]  # firsts of months: months
    weekly.attrs["freq"] = "W"  # (analysis.revenue says which)
    assert readable(weekly)["Period"].tolist() == ["Week of 1 Dec 2025", "Week of 1 Jun 2026"]
    assert readable(weekly, freq="D")["Period"].tolist() == ["1 Dec 2025", "1 Jun 2026"]
    assert present.guess_freq(pd.to_datetime(["2025-12-01", "2025-12-15"], utc=True)) == "W"
    assert present.guess_freq(pd.to_datetime(["2025-12-01", "2025-12-02"], utc=True)) == "D"
    assert present.guess_freq(pd.to_datetime(["2025-10-01", "2026-01-01"], utc=True)) == "Q"
    assert present.guess_freq(pd.to_datetime(["2025-01-01", "2026-01-01"], utc=True)) == "Y"


def test_the_revenue_report_names_its_periods():
    orders = pd.DataFrame({"created_at": pd.to_datetime(["2025-12-03", "2025-12-29"], utc=True),
                           "currency": pd.Categorical(["USD", "USD"]), "payment_status": ["completed"] * 2,
                           "total_cents": pd.array([172045, 500], dtype="Int64")})
    weekly = analysis.revenue(orders, "W")
    assert weekly.attrs["freq"] == "W"
    assert readable(weekly).to_dict("list") == {"Period": ["Week of 1 Dec 2025", "Week of 29 Dec 2025"],
                                                "Currency": ["USD", "USD"], "Orders": ["1", "1"],
                                                "Revenue": ["$1,720.45", "$5.00"]}
    assert readable(analysis.revenue(orders, "M"))["Period"].tolist() == ["Dec 2025"]


def test_the_summary_shows_each_currencys_revenue_in_it():
    summary = pd.DataFrame({"value": pd.Series({"orders": 1200, "repeat customer rate": "39.9%",
                                                "revenue GBP": Decimal("12.00"), "revenue USD": Decimal("1720.45")},
                                               dtype=object)}).rename_axis("metric")
    assert readable(summary)["Value"].tolist() == ["1,200", "39.9%", "£12.00", "$1,720.45"]
    assert "£12.00" in styled(summary).to_html()


def test_a_retention_table_reads_as_percentages_by_month():
    table = pd.DataFrame({"customers": [40, 7], 0: [1.0, 1.0], 1: [0.25, np.nan]},
                         index=pd.Index(pd.to_datetime(["2025-12-01", "2026-01-01"], utc=True), name="cohort"))
    text = readable(table)
    assert text.index.tolist() == ["Dec 2025", "Jan 2026"] and text.index.name == "Cohort"
    assert text.to_dict("list") == {"Customers": ["40", "7"], "Month 0": ["100.0%", "100.0%"],
                                    "Month 1": ["25.0%", MISSING]}
    html = styled(table).to_html()
    assert "Dec 2025" in html and "25.0%" in html and "Month 1" in html and "0.25" not in html


def test_an_empty_report_and_a_repeated_index_still_render():
    empty = customers_frame().iloc[:0]
    assert list(readable(empty).columns)[-1] == "Lifetime value" and len(readable(empty)) == 0
    assert "Lifetime value" in styled(empty).to_html()
    repeated = customers_frame().set_index(pd.Index([0, 0, 1, 1]))
    html = styled(repeated).to_html()
    assert "$1,720.45" in html and "-£12.00" in html


def test_a_comparison_shows_its_money_rows_as_money_and_its_metrics_by_name():
    from decimal import Decimal
    frame = pd.DataFrame({"currency": ["USD", "USD", "GBP", "GBP"],
                          "metric": ["orders", "revenue", "aov", "new_customers"],
                          "current": [45, Decimal("7263.38"), Decimal("12.5"), 3],
                          "sell_through": [0.76, 0.5, None, 1.0]})
    shown = present.readable(frame)
    assert list(shown["Current"]) == ["45", "$7,263.38", "£12.50", "3"]
    assert list(shown["Metric"]) == ["Orders", "Revenue", "Average order value", "New customers"]
    assert list(shown["Sell through"]) == ["76.0%", "50.0%", "—", "100.0%"]
