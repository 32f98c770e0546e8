"""Realistic synthetic customers and transactions drawn from planted personas.

The generator knows the right answer: every customer is drawn from one of five personas
(:data:`~custseg.personas.PERSONAS`, defined in :mod:`custseg.personas`) and
:attr:`SynthData.truth` says which. Each customer's own parameters (order rate, basket value,
discount appetite, category and channel mix, ...) are drawn with noise around the persona's means,
so the personas overlap the way real segments do, yet a sensible feature-engineering + K-Means
pipeline recovers them (adjusted Rand index above 0.9).

The data are deliberately a little messy, like real exports: missing demographics, a few absurd
ages and incomes, outlier line amounts, returns as separate negative rows, multi-line orders and a
handful of exact duplicate rows. Every piece of planted mess is counted in
:attr:`SynthData.description`.

Everything is drawn from one ``numpy.random.default_rng(seed)``; nothing reads the wall clock, so
the same arguments always give the same frames. :func:`generate` draws in this order (changing
the order changes every data set): personas, demographics, signup dates (the population), then
activity spans, habits, orders, order lines, returns, duplicate rows and the customer file's mess
(the behaviour, optionally from a second seed).

Examples
--------
>>> data = generate(n_customers=50, months=6, seed=1, end_date="2024-06-30")
>>> len(data.customers), sorted(data.truth["persona"].unique()) == sorted(PERSONAS)
(50, True)
>>> bool((data.transactions["timestamp"] <= data.as_of).all())
True
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from custseg.errors import ConfigError
from custseg.io.writers import write_csv, write_json
from custseg.personas import (
    CATEGORIES,
    CHANNELS,
    DRIFT_KINDS,
    EDUCATION_LEVELS,
    GENDERS,
    GRADUAL_AMOUNT_PER_MONTH,
    GRADUAL_APP_PER_MONTH,
    LOCATION_TYPES,
    OCCUPATIONS,
    PERSONAS,
    SHOCK_AMOUNT,
    SHOCK_APP,
    SPECS,
    PersonaSpec,
    drifted_specs,
)

__all__ = [
    "CATEGORIES",
    "CHANNELS",
    "DRIFT_KINDS",
    "EDUCATION_LEVELS",
    "GENDERS",
    "LOCATION_TYPES",
    "OCCUPATIONS",
    "PERSONAS",
    "PersonaSpec",
    "Snapshots",
    "SynthData",
    "generate",
    "generate_snapshots",
    "write",
    "write_snapshots",
]

_DAY = 86_400
_EPOCH = pd.Timestamp("1970-01-01")
_DIGITS4 = np.array([[ord(c) for c in f"{i:04d}"] for i in range(10_000)], dtype=np.uint8)
_MONTH_DAYS = 365.25 / 12

# Price level of a line in each category relative to the persona's average line amount
# (renormalised per persona so the persona's mean line amount stays at its target).
_CATEGORY_PRICE = np.array([1.5, 1.1, 0.8, 1.1, 0.9, 0.8, 1.1, 0.7])
# Extra units per line (quantity = 1 + Poisson(lambda)), by category.
_CATEGORY_EXTRA_UNITS = np.array([0.05, 0.25, 1.0, 0.2, 0.4, 0.3, 0.15, 0.2])

# Planted mess (rates).
_MISSING_AGE = 0.02
_MISSING_GENDER = 0.01
_MISSING_INCOME = 0.04
_ABSURD_AGE = 0.003
_ABSURD_INCOME = 0.002
_ABSURD_INCOME_VALUE = 9_999_999
_OUTLIER_LINES = 0.01
_DUPLICATE_ROWS = 0.003
_FULL_RETURN = 0.65
_LINES_PER_ORDER = (0.85, 0.11, 0.04)  # P(1 line), P(2 lines), P(3 lines)
_AMOUNT_SIGMA = 0.5
_GENDER_P = (0.49, 0.49, 0.02)

# Per-customer noise around the persona means.
_RATE_SIGMA = 0.2  # log-normal sigma of a customer's order rate
_AMOUNT_MEAN_SIGMA = 0.25  # log-normal sigma of a customer's mean line amount
_DISCOUNT_CONCENTRATION = 20.0  # Beta(a, b) with a + b = this
_RETURN_CONCENTRATION = 80.0
_CATEGORY_CONCENTRATION = 60.0  # Dirichlet concentration of a customer's category mix
_CHANNEL_CONCENTRATION = 40.0


@dataclass(frozen=True)
class SynthData:
    """A synthetic data set and its known answers.

    Attributes
    ----------
    customers : pandas.DataFrame
        One row per customer: ``customer_id``, ``age`` (Int64, nullable), ``gender``,
        ``occupation``, ``income`` (Int64, nullable), ``education``, ``location_type``,
        ``household_size``, ``children``, ``signup_date`` (datetime64, midnight).
    transactions : pandas.DataFrame
        One row per order line: ``order_id``, ``customer_id``, ``timestamp`` (datetime64, whole
        seconds), ``amount``, ``quantity``, ``category``, ``channel``, ``discount_used`` (0/1).
        Returns are separate rows with order id ``"R" + digits of the original`` and negative
        amount and quantity. Sorted by ``timestamp`` then ``order_id``.
    truth : pandas.DataFrame
        ``customer_id`` and the planted ``persona`` (one of :data:`PERSONAS`).
    as_of : pandas.Timestamp
        The end of the observation window: the end date at 23:59:59. Every timestamp is at or
        before it; use it as the "as of" date when computing recency.
    description : dict
        JSON-serialisable record of the arguments, the window, the persona parameters and counts,
        and the counts of every kind of planted mess.
    """

    customers: pd.DataFrame
    transactions: pd.DataFrame
    truth: pd.DataFrame
    as_of: pd.Timestamp
    description: dict


def _validate(n_customers: int, months: int, seed: int, end_date: str) -> pd.Timestamp:
    for name, value in (("n_customers", n_customers), ("months", months), ("seed", seed)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise ConfigError(f"synth: {name} must be an integer, got {value!r}")
    if n_customers < 10:
        raise ConfigError(f"synth: n_customers must be at least 10, got {n_customers}")
    if months < 1:
        raise ConfigError(f"synth: months must be at least 1, got {months}")
    if seed < 0:
        raise ConfigError(f"synth: seed must be a non-negative integer, got {seed}")
    message = f"synth: cannot parse end_date {end_date!r} as a date (use YYYY-MM-DD)"
    try:
        end = pd.Timestamp(end_date)
    except (ValueError, TypeError) as exc:
        raise ConfigError(message) from exc
    if pd.isna(end):
        raise ConfigError(message)
    if end.tzinfo is not None:
        end = end.tz_localize(None)
    end = end.normalize()
    if not pd.Timestamp("1900-01-01") <= end <= pd.Timestamp("2200-12-31"):
        raise ConfigError(f"synth: end_date must be between 1900-01-01 and 2200-12-31, got {end_date!r}")
    return end


def _choice_rows(rng: np.random.Generator, probs: np.ndarray,
                 rows: np.ndarray | None = None) -> np.ndarray:
    """Draw a category index from row ``rows[i]`` of a (rows x categories) probability matrix.

    With ``rows`` omitted, one draw per row. Inverse-CDF sampling through one ``searchsorted``
    on the rows' cumulative probabilities laid end to end (row ``r`` spans ``r .. r + 1``), so
    no (draws x categories) temporary is needed.
    """
    n_rows, n_cat = probs.shape
    rows = np.arange(n_rows) if rows is None else np.asarray(rows, dtype=np.int64)
    cum = np.cumsum(probs, axis=1)
    cum /= cum[:, -1:]
    flat = (cum + np.arange(n_rows)[:, None]).ravel()
    pos = np.searchsorted(flat, rows + rng.random(len(rows)), side="right")
    return np.clip(pos - rows * n_cat, 0, n_cat - 1)


def _dirichlet_rows(rng: np.random.Generator, alpha: np.ndarray) -> np.ndarray:
    """One Dirichlet draw per row of ``alpha`` (vectorised through Gamma variates)."""
    g = rng.standard_gamma(alpha)
    g = np.maximum(g, 1e-12)
    return g / g.sum(axis=1, keepdims=True)


def _ids(prefix: str | np.ndarray, numbers: np.ndarray, width: int) -> pd.api.extensions.ExtensionArray:
    """Identifiers ``prefix + zero-padded number`` as a ``str`` array, built without Python loops.

    ``prefix`` is one character, or an array of one-character byte codes (one per number).
    """
    size = len(numbers)
    buf = np.empty((size, width + 1), dtype=np.uint8)
    buf[:, 0] = ord(prefix) if isinstance(prefix, str) else prefix
    rest = np.asarray(numbers, dtype=np.int64)
    end = width + 1
    while end > 1:  # four digits at a time, from the right
        rest, chunk = np.divmod(rest, 10_000)
        take = min(4, end - 1)
        buf[:, end - take : end] = _DIGITS4[chunk][:, 4 - take :]
        end -= take
    offsets = np.arange(0, (size + 1) * (width + 1), width + 1, dtype=np.int64)
    strings = pa.LargeStringArray.from_buffers(size, pa.py_buffer(offsets), pa.py_buffer(buf))
    return pd.array(strings, dtype="str")


def _order(*keys: tuple[np.ndarray, int]) -> np.ndarray:
    """Indices sorting rows by several non-negative integer keys (first key most significant).

    Each key comes with an exclusive upper bound; the keys are packed into one int64 when they
    fit (one fast argsort), otherwise sorted with ``np.lexsort``.
    """
    total = 1
    for _, bound in keys:
        total *= int(bound)
    if total < 2**62:
        packed = np.zeros(len(keys[0][0]), dtype=np.int64)
        for values, bound in keys:
            packed = packed * int(bound) + np.asarray(values, dtype=np.int64)
        return np.argsort(packed)  # deterministic; ties (if any) need no particular order
    return np.lexsort(tuple(np.asarray(v) for v, _ in reversed(keys)))


def _labels(labels: tuple[str, ...], codes: np.ndarray) -> pd.api.extensions.ExtensionArray:
    """A ``str`` array of ``labels[codes]``; a code of -1 gives a missing value."""
    return pd.array(list(labels), dtype="str").take(np.asarray(codes, dtype=np.int64), allow_fill=True)


def generate(
    n_customers: int = 2000,
    months: int = 12,
    seed: int = 0,
    end_date: str = "2025-12-31",
    *,
    personas: tuple[PersonaSpec, ...] | None = None,
    behaviour_seed: int | None = None,
    anchor_date: str | None = None,
) -> SynthData:
    """Generate customers and transactions from the planted personas.

    Parameters
    ----------
    n_customers : int, default 2000
        Number of customers (at least 10). Every customer has at least one purchase.
    months : int, default 12
        Length of the transaction window in calendar months, ending on ``end_date``: for
        ``months=12`` and ``end_date="2025-12-31"`` the window is 2025-01-01 to 2025-12-31.
    seed : int, default 0
        Seed of ``numpy.random.default_rng``; the same arguments always give identical frames.
    end_date : str, default "2025-12-31"
        Last day of the window (``YYYY-MM-DD``). Nothing reads the wall clock.
    personas : tuple of PersonaSpec, optional
        Replacement persona parameters (used to plant drift); shares must stay the same for
        customers to keep their persona across snapshots.
    behaviour_seed : int, optional
        Redraw behaviour (orders, baskets, returns) and the data mess with this seed while the
        population (personas, demographics, signup dates) stays that of ``seed``: the same
        customers observed again (see :func:`generate_snapshots`).
    anchor_date : str, optional
        Signup dates are drawn back from this date instead of ``end_date``, so a population
        keeps its signup dates across snapshots.

    Returns
    -------
    SynthData
        The customers, transactions, known personas, the ``as_of`` instant (``end_date``
        23:59:59) and a description of the parameters and planted mess.

    Raises
    ------
    ConfigError
        If ``n_customers < 10``, ``months < 1``, the seed is negative or ``end_date`` is not a date.

    Examples
    --------
    >>> d = generate(n_customers=20, months=3, seed=7)
    >>> d.as_of
    Timestamp('2025-12-31 23:59:59')
    >>> int(d.transactions.groupby("customer_id").size().min()) >= 1
    True
    """
    end = _validate(n_customers, months, seed, end_date)
    n = int(n_customers)
    specs = tuple(personas) if personas is not None else SPECS
    window = _window(end, months)
    rng = np.random.default_rng(seed)

    # the population: who the customers are
    persona, counts = _assign_personas(rng, specs, n)
    people = _draw_demographics(rng, specs, persona)
    signup_day = _draw_signup_days(rng, specs, persona, window, anchor_date)

    # their behaviour in the window (optionally redrawn for the same population)
    if behaviour_seed is not None:
        rng = np.random.default_rng([int(seed), int(behaviour_seed)])
    act_lo, span = _activity_span(rng, specs, persona, signup_day, window)
    habits = _draw_habits(rng, specs, persona)
    orders = _draw_orders(rng, specs, persona, habits, act_lo, span, window)
    lines = _draw_lines(rng, orders, habits)
    returns = _draw_returns(rng, orders, lines, habits, window)
    duplicates = _draw_duplicates(rng, lines.n)
    mess = _draw_customer_mess(rng, people)

    # the frames and their description
    customer_ids = _ids("C", np.arange(1, n + 1), max(6, len(str(n))))
    transactions = _transactions_frame(customer_ids, orders, lines, returns, duplicates, window)
    customers = _customers_frame(customer_ids, people, mess, signup_day)
    truth = pd.DataFrame({"customer_id": customer_ids,
                          "persona": _labels(tuple(s.name for s in specs), persona)})
    arguments = {"n_customers": n, "months": int(months), "seed": int(seed),
                 "end_date": end.strftime("%Y-%m-%d")}
    description = _describe(arguments, window, specs, counts, persona, orders, lines, returns,
                            duplicates, len(transactions), mess)
    return SynthData(customers=customers, transactions=transactions, truth=truth,
                     as_of=window.as_of, description=description)


# ------------------------------------------------------------------------------------------
# the steps of generate, in the order they draw


@dataclass(frozen=True)
class _Window:
    """The observation window: calendar dates and whole days (seconds) since the epoch."""

    start: pd.Timestamp
    end: pd.Timestamp
    as_of: pd.Timestamp  # end at 23:59:59
    start_day: int
    end_day: int
    days: int
    as_of_sec: int


def _window(end: pd.Timestamp, months: int) -> _Window:
    """The ``months`` calendar months ending on ``end`` (inclusive)."""
    end_day = int((end - _EPOCH).days)
    start = end + pd.Timedelta(days=1) - pd.DateOffset(months=int(months))
    start_day = int((start - _EPOCH).days)
    return _Window(start=start, end=end, as_of=end + pd.Timedelta(hours=23, minutes=59, seconds=59),
                   start_day=start_day, end_day=end_day, days=end_day - start_day + 1,
                   as_of_sec=(end_day + 1) * _DAY - 1)


def _per(specs: tuple[PersonaSpec, ...], attr: str) -> np.ndarray:
    """One row per persona: the spec attribute ``attr`` as floats."""
    return np.array([getattr(s, attr) for s in specs], dtype=float)


def _assign_personas(rng: np.random.Generator, specs: tuple[PersonaSpec, ...],
                     n: int) -> tuple[np.ndarray, np.ndarray]:
    """Each customer's persona index (shuffled) and the customers per persona (each at least 1)."""
    k = len(specs)
    shares = np.array([s.share for s in specs])
    counts = rng.multinomial(n - k, shares / shares.sum()) + 1  # every persona present
    persona = rng.permutation(np.repeat(np.arange(k), counts))
    return persona, counts


@dataclass(frozen=True)
class _People:
    """Clean demographics, one entry per customer (codes index the label tuples)."""

    age: np.ndarray  # float, whole years
    income: np.ndarray  # float, whole tens
    gender: np.ndarray
    location: np.ndarray
    occupation: np.ndarray
    education: np.ndarray
    children: np.ndarray
    household: np.ndarray


def _draw_demographics(rng: np.random.Generator, specs: tuple[PersonaSpec, ...],
                       persona: np.ndarray) -> _People:
    """Age, income, gender, location, occupation, education and household, from the persona."""
    n = len(persona)
    age_p = _per(specs, "age")[persona]
    inc_p = _per(specs, "income")[persona]
    loc_p = _per(specs, "location")[persona]
    occ_p = _per(specs, "occupation")[persona]
    edu_p = _per(specs, "education")[persona]
    chi_p = _per(specs, "children")[persona]
    age = np.clip(np.rint(rng.normal(age_p[:, 0], age_p[:, 1])), age_p[:, 2], age_p[:, 3])
    income = np.maximum(np.rint(rng.normal(inc_p[:, 0], inc_p[:, 1]) / 10) * 10, 9_000)
    gender = rng.choice(len(GENDERS), size=n, p=_GENDER_P)
    location = _choice_rows(rng, loc_p)
    occupation = _choice_rows(rng, occ_p)
    education = _choice_rows(rng, edu_p)
    children = np.minimum(chi_p[:, 0] + rng.poisson(chi_p[:, 1]), chi_p[:, 2]).astype(np.int64)
    partner = rng.random(n) < _per(specs, "partner")[persona]
    extra = rng.random(n) < _per(specs, "extra_adult")[persona]
    household = (1 + partner + extra + children).astype(np.int64)
    return _People(age=age, income=income, gender=gender, location=location,
                   occupation=occupation, education=education, children=children,
                   household=household)


def _draw_signup_days(rng: np.random.Generator, specs: tuple[PersonaSpec, ...], persona: np.ndarray,
                      window: _Window, anchor_date: str | None) -> np.ndarray:
    """Signup day of each customer: the persona's years back from the anchor (or end) date."""
    sig = _per(specs, "signup_years")[persona]
    signup_back = np.rint(rng.uniform(sig[:, 0], sig[:, 1]) * 365.25).astype(np.int64)
    signup_back = np.maximum(signup_back, 14)
    anchor_day = (
        window.end_day if anchor_date is None else int((pd.Timestamp(anchor_date) - _EPOCH).days)
    )
    return np.minimum(anchor_day - signup_back, window.end_day)


def _activity_span(rng: np.random.Generator, specs: tuple[PersonaSpec, ...], persona: np.ndarray,
                   signup_day: np.ndarray, window: _Window) -> tuple[np.ndarray, np.ndarray]:
    """First active day and number of active days in the window: from signup (or the window's
    start) to the end, or to the lapse of a lapsing persona."""
    act_lo = np.maximum(window.start_day, signup_day)
    act_hi = np.full(len(persona), window.end_day, dtype=np.int64)
    lapse = np.array(
        [s.lapse_months if s.lapse_months is not None else (0.0, 0.0) for s in specs]
    )[persona]
    lapsing = lapse[:, 1] > 0
    lapse_days = np.rint(rng.uniform(lapse[:, 0], lapse[:, 1]) * _MONTH_DAYS).astype(np.int64)
    lapse_days = np.minimum(lapse_days, int(0.75 * window.days))
    act_hi = np.where(lapsing, window.end_day - lapse_days, act_hi)
    act_hi = np.maximum(act_hi, act_lo)  # a signup late in the window still gets a day
    return act_lo, act_hi - act_lo + 1


@dataclass(frozen=True)
class _Habits:
    """Each customer's own buying parameters, drawn around their persona's means."""

    rate: np.ndarray  # orders per month while active
    amount_mean: np.ndarray  # mean line amount
    disc_p: np.ndarray  # probability an order uses a discount
    ret_p: np.ndarray  # probability an order has a returned line
    cat_p: np.ndarray  # (customers x categories) mix
    chan_p: np.ndarray  # (customers x channels) mix
    price_norm: np.ndarray  # the persona's mean category price index


def _draw_habits(rng: np.random.Generator, specs: tuple[PersonaSpec, ...],
                 persona: np.ndarray) -> _Habits:
    """Order rate, basket value, discount and return appetite, category and channel mix."""
    n = len(persona)
    rate = _per(specs, "orders_per_month")[persona] * rng.lognormal(
        -_RATE_SIGMA**2 / 2, _RATE_SIGMA, n
    )
    amount_mean = _per(specs, "line_amount")[persona] * rng.lognormal(
        -(_AMOUNT_MEAN_SIGMA**2) / 2, _AMOUNT_MEAN_SIGMA, n
    )
    disc_m = _per(specs, "discount")[persona]
    disc_p = rng.beta(disc_m * _DISCOUNT_CONCENTRATION, (1 - disc_m) * _DISCOUNT_CONCENTRATION)
    ret_m = _per(specs, "return_rate")[persona]
    ret_p = rng.beta(ret_m * _RETURN_CONCENTRATION, (1 - ret_m) * _RETURN_CONCENTRATION)
    cat_persona = _per(specs, "categories")
    cat_p = _dirichlet_rows(rng, cat_persona[persona] * _CATEGORY_CONCENTRATION + 0.02)
    chan_p = _dirichlet_rows(rng, _per(specs, "channels")[persona] * _CHANNEL_CONCENTRATION + 0.02)
    return _Habits(rate=rate, amount_mean=amount_mean, disc_p=disc_p, ret_p=ret_p, cat_p=cat_p,
                   chan_p=chan_p, price_norm=(cat_persona @ _CATEGORY_PRICE)[persona])


@dataclass(frozen=True)
class _Orders:
    """One entry per order, in customer order (``cust`` ascending)."""

    cust: np.ndarray
    day: np.ndarray
    sec: np.ndarray  # seconds since the epoch
    number: np.ndarray  # 1.. in chronological order (ties by customer)
    channel: np.ndarray
    discount: np.ndarray  # 0/1
    n_lines: np.ndarray  # 1, 2 or 3
    categories: np.ndarray  # (orders x 3): the category of each line, distinct within an order

    @property
    def n(self) -> int:
        return len(self.cust)


def _draw_orders(rng: np.random.Generator, specs: tuple[PersonaSpec, ...], persona: np.ndarray,
                 habits: _Habits, act_lo: np.ndarray, span: np.ndarray, window: _Window) -> _Orders:
    """Orders (at least one a customer) over each active span, with channel, discount and lines."""
    n = len(persona)
    n_orders_c = np.maximum(1, rng.poisson(habits.rate * span / _MONTH_DAYS))
    cust = np.repeat(np.arange(n), n_orders_c)
    n_ord = len(cust)
    day = _order_days(rng, specs, persona, cust, n_orders_c, act_lo, span)
    sec = day * _DAY + rng.integers(8, 22, n_ord) * 3600 + rng.integers(0, 3600, n_ord)
    # Number orders chronologically (ties by customer) so order ids increase with time.
    origin = window.start_day * _DAY
    chrono = _order((sec - origin, window.as_of_sec - origin + 1), (cust, n))
    number = np.empty(n_ord, dtype=np.int64)
    number[chrono] = np.arange(1, n_ord + 1)
    channel = _choice_rows(rng, habits.chan_p, cust)
    discount = (rng.random(n_ord) < habits.disc_p[cust]).astype(np.int64)
    n_lines = rng.choice(np.arange(1, 4), size=n_ord, p=_LINES_PER_ORDER)
    categories = _line_categories(rng, habits.cat_p, cust, n_lines)
    return _Orders(cust=cust, day=day, sec=sec, number=number, channel=channel,
                   discount=discount, n_lines=n_lines, categories=categories)


def _order_days(rng: np.random.Generator, specs: tuple[PersonaSpec, ...], persona: np.ndarray,
                cust: np.ndarray, n_orders_c: np.ndarray, act_lo: np.ndarray,
                span: np.ndarray) -> np.ndarray:
    """Order days uniform over each customer's active span."""
    day = act_lo[cust] + np.floor(rng.random(len(cust)) * span[cust]).astype(np.int64)
    # Loyalists have been buying all along: their first order in the window is near its start.
    first = np.concatenate(([0], np.cumsum(n_orders_c)[:-1]))
    loyal = np.flatnonzero(np.isin(persona, [i for i, s in enumerate(specs) if s.name == "Loyalists"]))
    day[first[loyal]] = act_lo[loyal] + np.floor(
        rng.random(len(loyal)) * np.minimum(span[loyal], 14)
    ).astype(np.int64)
    return day


def _line_categories(rng: np.random.Generator, cat_p: np.ndarray, cust: np.ndarray,
                     n_lines: np.ndarray) -> np.ndarray:
    """One category per line from the customer's mix; the lines of a multi-line order have
    distinct categories (Gumbel top-k: sampling without replacement, in draw order)."""
    top = np.zeros((len(cust), 3), dtype=np.int64)
    top[:, 0] = _choice_rows(rng, cat_p, cust)
    multi_idx = np.flatnonzero(n_lines > 1)
    keys = np.log(cat_p[cust[multi_idx]]) + rng.gumbel(size=(len(multi_idx), len(CATEGORIES)))
    top[multi_idx] = np.argsort(-keys, axis=1)[:, :3]
    return top


@dataclass(frozen=True)
class _Lines:
    """One entry per purchase line, order by order."""

    order: np.ndarray  # index of the line's order
    first: np.ndarray  # per ORDER: index of the order's first line
    pos: np.ndarray  # position in its order (0, 1, 2)
    cust: np.ndarray
    cat: np.ndarray
    amount: np.ndarray
    quantity: np.ndarray
    outlier: np.ndarray  # bool: amount multiplied 10-30x

    @property
    def n(self) -> int:
        return len(self.order)


def _draw_lines(rng: np.random.Generator, orders: _Orders, habits: _Habits) -> _Lines:
    """Amount (with a few outliers) and quantity of every purchase line."""
    order = np.repeat(np.arange(orders.n), orders.n_lines)
    n_line = len(order)
    first = np.concatenate(([0], np.cumsum(orders.n_lines)[:-1]))
    pos = np.arange(n_line) - first[order]
    cust = orders.cust[order]
    cat = orders.categories[order, pos]
    amount = (
        habits.amount_mean[cust]
        * _CATEGORY_PRICE[cat]
        / habits.price_norm[cust]
        * rng.lognormal(-(_AMOUNT_SIGMA**2) / 2, _AMOUNT_SIGMA, n_line)
    )
    outlier = rng.random(n_line) < _OUTLIER_LINES
    amount[outlier] *= rng.uniform(10, 30, int(outlier.sum()))
    amount = np.maximum(np.round(amount, 2), 0.99)
    quantity = 1 + rng.poisson(_CATEGORY_EXTRA_UNITS[cat])
    return _Lines(order=order, first=first, pos=pos, cust=cust, cat=cat, amount=amount,
                  quantity=quantity, outlier=outlier)


@dataclass(frozen=True)
class _Returns:
    """One entry per returned order: which line went back, how much of it, and when."""

    order: np.ndarray
    line: np.ndarray
    units: np.ndarray  # positive
    amount: np.ndarray  # negative
    sec: np.ndarray
    full: np.ndarray  # bool: the whole line went back


def _draw_returns(rng: np.random.Generator, orders: _Orders, lines: _Lines, habits: _Habits,
                  window: _Window) -> _Returns:
    """Returned orders: one line each, in full or in part, 1-30 days later (never after as_of)."""
    returned = np.flatnonzero(rng.random(orders.n) < habits.ret_p[orders.cust])
    m = len(returned)
    line = lines.first[returned] + np.floor(rng.random(m) * orders.n_lines[returned]).astype(
        np.int64
    )
    bought = lines.quantity[line]
    full = rng.random(m) < _FULL_RETURN
    units = np.where(bought > 1, rng.integers(1, np.maximum(bought, 2)), 1)
    units = np.where(full, bought, units)
    frac = np.where(bought > 1, units / bought, rng.uniform(0.3, 0.8, m))
    frac = np.where(full, 1.0, frac)
    amount = -np.maximum(np.round(lines.amount[line] * frac, 2), 0.01)
    day = orders.day[returned] + rng.integers(1, 31, m)
    sec = np.minimum(
        day * _DAY + rng.integers(8, 22, m) * 3600 + rng.integers(0, 3600, m),
        window.as_of_sec,
    )
    return _Returns(order=returned, line=line, units=units, amount=amount, sec=sec, full=full)


def _draw_duplicates(rng: np.random.Generator, n_line: int) -> np.ndarray:
    """Sorted indices of the purchase lines written twice (at least one)."""
    n_dup = max(1, int(round(_DUPLICATE_ROWS * n_line)))
    return np.sort(rng.choice(n_line, size=n_dup, replace=False))


@dataclass(frozen=True)
class _CustomerMess:
    """Absurd values written over the clean ones, and which fields are left empty."""

    age: np.ndarray
    income: np.ndarray
    age_missing: np.ndarray
    age_absurd: np.ndarray
    income_missing: np.ndarray
    income_absurd: np.ndarray
    gender_missing: np.ndarray


def _draw_customer_mess(rng: np.random.Generator, people: _People) -> _CustomerMess:
    """A few absurd ages and incomes, and missing ages, incomes and genders."""
    n = len(people.age)
    age, income = people.age.copy(), people.income.copy()
    age_missing = rng.random(n) < _MISSING_AGE
    age_absurd = (~age_missing) & (rng.random(n) < _ABSURD_AGE)
    age[age_absurd] = rng.integers(120, 127, int(age_absurd.sum()))
    income_missing = rng.random(n) < _MISSING_INCOME
    income_absurd = (~income_missing) & (rng.random(n) < _ABSURD_INCOME)
    income[income_absurd] = _ABSURD_INCOME_VALUE
    gender_missing = rng.random(n) < _MISSING_GENDER
    return _CustomerMess(age=age, income=income, age_missing=age_missing, age_absurd=age_absurd,
                         income_missing=income_missing, income_absurd=income_absurd,
                         gender_missing=gender_missing)


def _transactions_frame(customer_ids: pd.api.extensions.ExtensionArray, orders: _Orders,
                        lines: _Lines, returns: _Returns, duplicates: np.ndarray,
                        window: _Window) -> pd.DataFrame:
    """Purchase lines, their duplicates and the return rows, sorted by time, kind, order number,
    line position and duplicate flag."""
    p_rows = np.concatenate((np.arange(lines.n), duplicates))
    p_order = lines.order[p_rows]
    is_dup = np.concatenate((np.zeros(lines.n, bool), np.ones(len(duplicates), bool)))
    n_ret = len(returns.order)
    t_sec = np.concatenate((orders.sec[p_order], returns.sec))
    t_kind = np.concatenate((np.zeros(len(p_rows), np.int8), np.ones(n_ret, np.int8)))
    t_num = np.concatenate((orders.number[p_order], orders.number[returns.order]))
    t_pos = np.concatenate((lines.pos[p_rows], lines.pos[returns.line]))
    t_dup = np.concatenate((is_dup, np.zeros(n_ret, bool)))
    t_cust = np.concatenate((lines.cust[p_rows], orders.cust[returns.order]))
    t_cat = np.concatenate((lines.cat[p_rows], lines.cat[returns.line]))
    t_chan = np.concatenate((orders.channel[p_order], orders.channel[returns.order]))
    t_disc = np.concatenate((orders.discount[p_order], orders.discount[returns.order]))
    t_amount = np.concatenate((lines.amount[p_rows], returns.amount))
    t_qty = np.concatenate((lines.quantity[p_rows], -returns.units))
    origin = window.start_day * _DAY
    o = _order(
        (t_sec - origin, window.as_of_sec - origin + 1),
        (t_kind, 2),
        (t_num, orders.n + 1),
        (t_pos, 3),
        (t_dup, 2),
    )
    prefix = np.where(t_kind[o] == 0, ord("O"), ord("R")).astype(np.uint8)
    return pd.DataFrame(
        {
            "order_id": _ids(prefix, t_num[o], max(7, len(str(orders.n)))),
            "customer_id": customer_ids.take(t_cust[o]),
            "timestamp": t_sec[o].astype("datetime64[s]"),
            "amount": t_amount[o].astype(np.float64),
            "quantity": t_qty[o].astype(np.int64),
            "category": _labels(CATEGORIES, t_cat[o]),
            "channel": _labels(CHANNELS, t_chan[o]),
            "discount_used": t_disc[o].astype(np.int64),
        }
    )


def _customers_frame(customer_ids: pd.api.extensions.ExtensionArray, people: _People,
                     mess: _CustomerMess, signup_day: np.ndarray) -> pd.DataFrame:
    """The customer file as exported: clean demographics with the planted mess applied."""
    return pd.DataFrame(
        {
            "customer_id": customer_ids,
            "age": pd.array(np.where(mess.age_missing, np.nan, mess.age), dtype="Int64"),
            "gender": _labels(GENDERS, np.where(mess.gender_missing, -1, people.gender)),
            "occupation": _labels(OCCUPATIONS, people.occupation),
            "income": pd.array(np.where(mess.income_missing, np.nan, mess.income), dtype="Int64"),
            "education": _labels(EDUCATION_LEVELS, people.education),
            "location_type": _labels(LOCATION_TYPES, people.location),
            "household_size": people.household,
            "children": people.children,
            "signup_date": (signup_day * _DAY).astype("datetime64[s]"),
        }
    )


def _describe(arguments: dict[str, Any], window: _Window, specs: tuple[PersonaSpec, ...],
              counts: np.ndarray, persona: np.ndarray, orders: _Orders, lines: _Lines,
              returns: _Returns, duplicates: np.ndarray, transaction_rows: int,
              mess: _CustomerMess) -> dict[str, Any]:
    """The JSON-serialisable record of :attr:`SynthData.description`."""
    returned_persona = persona[orders.cust[returns.order]]
    return {
        "generator": "custseg.synth",
        "arguments": arguments,
        "window": {
            "start": window.start.strftime("%Y-%m-%d"),
            "end": window.end.strftime("%Y-%m-%d"),
            "as_of": window.as_of.strftime("%Y-%m-%d %H:%M:%S"),
            "days": int(window.days),
        },
        "personas": {
            s.name: {"customers": int(counts[i]), "parameters": s.as_dict()}
            for i, s in enumerate(specs)
        },
        "noise": {
            "order_rate_lognormal_sigma": _RATE_SIGMA,
            "mean_line_amount_lognormal_sigma": _AMOUNT_MEAN_SIGMA,
            "line_amount_lognormal_sigma": _AMOUNT_SIGMA,
            "discount_beta_concentration": _DISCOUNT_CONCENTRATION,
            "return_beta_concentration": _RETURN_CONCENTRATION,
            "category_dirichlet_concentration": _CATEGORY_CONCENTRATION,
            "channel_dirichlet_concentration": _CHANNEL_CONCENTRATION,
            "category_price_index": dict(zip(CATEGORIES, _CATEGORY_PRICE.tolist(), strict=True)),
        },
        "counts": {
            "customers": len(persona),
            "orders": int(orders.n),
            "multi_line_orders": int((orders.n_lines > 1).sum()),
            "purchase_lines": int(lines.n),
            "return_rows": int(len(returns.order)),
            "duplicate_rows": int(len(duplicates)),
            "transaction_rows": int(transaction_rows),
        },
        "mess": {
            "missing": {
                "age": int(mess.age_missing.sum()),
                "gender": int(mess.gender_missing.sum()),
                "income": int(mess.income_missing.sum()),
            },
            "absurd_age": int(mess.age_absurd.sum()),
            "absurd_income": int(mess.income_absurd.sum()),
            "outlier_lines": int(lines.outlier.sum()),
            "returned_orders": int(len(returns.order)),
            "full_returns": int(returns.full.sum()),
            "partial_returns": int((~returns.full).sum()),
            "returned_orders_by_persona": {
                s.name: int((returned_persona == i).sum()) for i, s in enumerate(specs)
            },
            "duplicate_rows": int(len(duplicates)),
        },
        "rates": {
            "missing_age": _MISSING_AGE,
            "missing_gender": _MISSING_GENDER,
            "missing_income": _MISSING_INCOME,
            "absurd_age": _ABSURD_AGE,
            "absurd_income": _ABSURD_INCOME,
            "outlier_lines": _OUTLIER_LINES,
            "duplicate_rows": _DUPLICATE_ROWS,
            "full_return_share": _FULL_RETURN,
            "lines_per_order": dict(zip(("1", "2", "3"), _LINES_PER_ORDER, strict=True)),
        },
    }


# ------------------------------------------------------------------------------------------
# writing

def _format_for_csv(frame: pd.DataFrame, column: str, fmt: str) -> pd.DataFrame:
    out = frame.copy()
    out[column] = frame[column].dt.strftime(fmt)
    return out


def write(data: SynthData, out_dir: str | Path) -> dict[str, Path]:
    """Write a :class:`SynthData` as four files, each atomically.

    Parameters
    ----------
    data : SynthData
        What :func:`generate` returned.
    out_dir : str or Path
        Folder to write into (created if needed).

    Returns
    -------
    dict of str to Path
        ``{"customers": ..., "transactions": ..., "truth": ..., "description": ...}`` pointing at
        ``customers.csv``, ``transactions.csv``, ``truth.csv`` and ``synth.json``.

    Notes
    -----
    ``signup_date`` is written as ``YYYY-MM-DD`` and ``timestamp`` as ``YYYY-MM-DD HH:MM:SS``;
    missing values are empty fields.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    customers = _format_for_csv(data.customers, "signup_date", "%Y-%m-%d")
    transactions = _format_for_csv(data.transactions, "timestamp", "%Y-%m-%d %H:%M:%S")
    return {
        "customers": write_csv(out / "customers.csv", customers),
        "transactions": write_csv(out / "transactions.csv", transactions),
        "truth": write_csv(out / "truth.csv", data.truth),
        "description": write_json(out / "synth.json", data.description),
    }


# ------------------------------------------------------------------------------------------
# snapshots over time with planted drift (the drift itself is defined in custseg.personas)


@dataclass(frozen=True)
class Snapshots:
    """Monthly snapshots of one customer population, with the planted drift described."""

    labels: tuple[str, ...]          # YYYY-MM
    data: tuple[SynthData, ...]
    drift: dict


def generate_snapshots(n_customers: int = 2000, months: int = 12, seed: int = 0,
                       drift: str = "none", end_date: str = "2025-12-31",
                       window_months: int = 12) -> Snapshots:
    """One population observed at the end of each of ``months`` months, with planted drift.

    Every snapshot holds the same customers (same ids, personas and demographics) and
    ``window_months`` of transactions up to its month end, redrawn for each snapshot. The
    population is in a steady state: tenure is drawn relative to each snapshot's as-of date, as
    if leavers were replaced by joiners with the same profile, so with no planted drift every
    feature's distribution is the same in every month.

    * ``none``: nothing changes.
    * ``gradual``: every persona's basket value grows by 6% of its first-month level each month,
      and Young Professionals move 3 percentage points of their orders a month from web to app.
    * ``shock``: from the middle month on, baskets are 60% larger and Young Professionals move
      30 points from web to app at once.

    The returned ``drift`` dict names the features expected to drift (average order value and
    net spend first), the personas, the schedule and each month's factors.
    """
    if drift not in DRIFT_KINDS:
        raise ConfigError(f"unknown drift {drift!r}; choose one of {', '.join(DRIFT_KINDS)}")
    if int(months) < 1:
        raise ConfigError("months must be at least 1")
    last = pd.Timestamp(end_date)
    ends = [(last - pd.DateOffset(months=months - 1 - m)) + pd.offsets.MonthEnd(0)
            for m in range(months)]
    shock_month = months // 2
    labels, data, schedule = [], [], []
    for m, end in enumerate(ends):
        specs, factors = drifted_specs(drift, m, shock_month)
        label = end.strftime("%Y-%m")
        data.append(generate(n_customers, months=window_months, seed=seed,
                             end_date=end.strftime("%Y-%m-%d"), personas=specs,
                             behaviour_seed=m + 1))
        labels.append(label)
        schedule.append({"snapshot": label, "as_of": end.strftime("%Y-%m-%d"), **factors})
    description = _drift_description(drift, labels, shock_month, schedule, window_months, seed,
                                     n_customers)
    return Snapshots(labels=tuple(labels), data=tuple(data), drift=description)


def _drift_description(kind: str, labels: list[str], shock_month: int, schedule: list[dict],
                       window_months: int, seed: int, n_customers: int) -> dict:
    """What ``drift.json`` says: the drifting features and personas, the schedule in words and
    each month's factors."""
    months = len(labels)
    shock_label = labels[shock_month] if shock_month < months else None
    return {
        "kind": kind,
        "features": ["avg_order_value", "monetary"] if kind != "none" else [],
        "secondary": ["chan_share_app", "chan_share_web"] if kind != "none" else [],
        "personas": {"line_amount": "all", "channels": "Young Professionals"}
        if kind != "none" else {},
        "schedule": {
            "none": "no change",
            "gradual": f"line amounts x (1 + {GRADUAL_AMOUNT_PER_MONTH} * month); Young "
                       f"Professionals move {GRADUAL_APP_PER_MONTH:.0%} of orders a month "
                       "from web to app",
            "shock": f"from {shock_label or 'never'}: line "
                     f"amounts x {SHOCK_AMOUNT}; Young Professionals move {SHOCK_APP:.0%} of "
                     "orders from web to app",
        }[kind],
        "shock_snapshot": shock_label if kind == "shock" else None,
        "months": schedule,
        "window_months": window_months,
        "seed": seed,
        "customers": n_customers,
    }


def write_snapshots(snaps: Snapshots, out_dir: str | Path) -> dict[str, Path]:
    """Write ``snapshots/<YYYY-MM>/`` (customers, transactions, truth, snapshot.toml) and
    ``drift.json`` under ``out_dir``."""
    from custseg.io.writers import write_text

    out = Path(out_dir)
    paths: dict[str, Path] = {}
    for label, d in zip(snaps.labels, snaps.data, strict=True):
        folder = out / "snapshots" / label
        write(d, folder)
        (folder / "synth.json").unlink(missing_ok=True)
        write_text(folder / "snapshot.toml", f"as_of = {d.as_of.strftime('%Y-%m-%d')}\n")
        paths[label] = folder
    paths["drift"] = write_json(out / "drift.json", snaps.drift)
    return paths
