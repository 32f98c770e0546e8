"""What each customer is worth next: BG/NBD purchases and P(alive), Gamma-Gamma spend, CLV.

The models are the classic ones for non-contractual purchase data:

* BG/NBD (Fader, Hardie & Lee 2005, "Counting your customers the easy way"): while alive a customer
  buys at a Poisson rate (Gamma(r, alpha) across customers) and after each purchase drops out with
  probability p (Beta(a, b) across customers).
* Gamma-Gamma (Fader, Hardie & Lee 2005, "RFM and CLV"): spend per purchase, independent of the
  purchase process, fitted on repeat customers.

Both are fitted by maximum likelihood on the closed-form likelihoods with scipy. Customers that share
(frequency, recency, T) contribute one weighted term, so a million customers whose dates fall on whole
days cost a few thousand likelihood terms. Why our own code and not a package: lifetimes is
unmaintained; pymc-marketing pulls in ~800 MB, compiles for a minute and, with its default priors,
moves the BG/NBD parameters 11-14% from the published maximum-likelihood values. This module
reproduces the published CDNOW parameters to four digits (see ``tests/test_value.py``).

Times are in a unit of ``unit_days`` days (weeks by default); same-day purchases are merged into one,
as in the literature.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.optimize import minimize
from scipy.special import digamma, gammaln, hyp2f1

from custseg.errors import InputError

#: days in the CLV "month" (lifetimes' convention: 4.345 weeks)
DAYS_PER_MONTH = 30.415


@dataclass(frozen=True)
class PurchaseSummary:
    """Per-customer inputs of the value models, one row per customer.

    ``frequency`` is the number of repeat purchase days, ``recency`` the age (in units) at the last
    purchase, ``T`` the age at the end of the observation period, ``monetary`` the mean spend of the
    repeat purchases (0 when there are none or no amounts).
    """

    frame: pd.DataFrame
    unit_days: float
    end: pd.Timestamp
    has_amounts: bool

    @property
    def frequency(self) -> np.ndarray:
        return self.frame["frequency"].to_numpy(float)

    @property
    def recency(self) -> np.ndarray:
        return self.frame["recency"].to_numpy(float)

    @property
    def T(self) -> np.ndarray:  # noqa: N802 - the literature's name
        return self.frame["T"].to_numpy(float)

    @property
    def monetary(self) -> np.ndarray:
        return self.frame["monetary"].to_numpy(float)


def summarise_purchases(transactions: pd.DataFrame, *, end: str | pd.Timestamp,
                        customer: str = "customer_id", timestamp: str = "timestamp",
                        amount: str | None = "amount", unit_days: float = 7.0,
                        source: str = "transactions") -> PurchaseSummary:
    """Frequency, recency, T and mean repeat spend per customer from a transactions log.

    Lines after ``end`` are ignored (that is the holdout); lines on the same day are one purchase
    whose spend is their sum. Lines with a negative amount are returns, not purchases: they are
    left out (a day with only returns is no purchase day).

    Examples
    --------
    >>> tx = pd.DataFrame({"customer_id": [1, 1, 1, 2], "amount": [10.0, 5.0, 20.0, 7.0],
    ...                    "timestamp": pd.to_datetime(["2024-01-01", "2024-01-01", "2024-01-15",
    ...                                                 "2024-01-08"])})
    >>> s = summarise_purchases(tx, end="2024-01-29")
    >>> s.frame[["frequency", "recency", "T", "monetary"]].round(2).values.tolist()
    [[1.0, 2.0, 4.0, 20.0], [0.0, 0.0, 3.0, 0.0]]
    """
    if unit_days <= 0:
        raise InputError("the time unit must be a positive number of days", value=unit_days)
    end = pd.Timestamp(end)
    days = _purchase_days(transactions, customer, timestamp, amount, end, source)
    if days.empty:
        raise InputError(f"no purchases on or before {end.date()}", file=source, column=timestamp)
    first = days.groupby("customer")["day"].transform("min")
    days["repeat"] = days["day"] > first
    per = days.groupby("customer", sort=True)
    frame = pd.DataFrame({
        "frequency": per["repeat"].sum().astype(float),
        "recency": (per["day"].max() - per["day"].min()).dt.days / unit_days,
        "T": (end.normalize() - per["day"].min()).dt.days / unit_days,
    })
    repeat_spend = days[days["repeat"]].groupby("customer")["spend"].mean()
    frame["monetary"] = repeat_spend.reindex(frame.index).fillna(0.0)
    frame.index.name = customer
    return PurchaseSummary(frame, float(unit_days), end, amount is not None)


def _purchase_days(transactions: pd.DataFrame, customer: str, timestamp: str, amount: str | None,
                   end: pd.Timestamp, source: str) -> pd.DataFrame:
    """One row per customer and purchase day on or before ``end``, with the day's spend."""
    for col in (customer, timestamp) + ((amount,) if amount else ()):
        if col not in transactions.columns:
            raise InputError("column not found", file=source, column=col)
    when = pd.to_datetime(transactions[timestamp], errors="coerce")
    if when.isna().any():
        row = int(np.flatnonzero(when.isna().to_numpy())[0])
        raise InputError("cannot parse as a date", file=source, column=timestamp, row=row + 1,
                         value=transactions[timestamp].iloc[row])
    spend = (pd.to_numeric(transactions[amount], errors="coerce") if amount
             else pd.Series(0.0, index=transactions.index))
    lines = pd.DataFrame({"customer": transactions[customer].to_numpy(),
                          "day": when.dt.normalize().to_numpy(), "spend": spend.to_numpy(float)})
    lines = lines[(lines["day"] <= end.normalize()) & ~(lines["spend"] < 0)]
    return lines.groupby(["customer", "day"], as_index=False, sort=True)["spend"].sum()


def _distinct_rows(*columns: np.ndarray) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """Distinct rows of the given columns, how many customers share each, and each customer's
    row (so per-row results map back with ``result[inverse]``)."""
    stacked = np.column_stack(columns)
    unique, inverse, counts = np.unique(stacked, axis=0, return_inverse=True, return_counts=True)
    return [unique[:, i] for i in range(unique.shape[1])], counts.astype(float), inverse.reshape(-1)



def _maximise(objective, start: np.ndarray) -> tuple[float, ...]:
    """Maximise a likelihood over positive parameters, searched on the log scale with L-BFGS-B.

    ``objective`` returns the negative log-likelihood and its gradient in log-parameters. Returns
    the parameters followed by the maximised log-likelihood; raises when the search fails.
    """
    best = minimize(objective, np.log(start), jac=True, method="L-BFGS-B",
                    options={"maxiter": 1000, "ftol": 1e-13, "gtol": 1e-8})
    if not np.isfinite(best.fun) or best.fun >= 1e300:
        raise InputError(f"the value model did not converge ({best.message})")
    return (*(float(v) for v in np.exp(best.x)), -float(best.fun))


@dataclass
class BetaGeoModel:
    """BG/NBD fitted by maximum likelihood; parameters ``r_``, ``alpha_``, ``a_``, ``b_``.

    Examples
    --------
    >>> m = BetaGeoModel().fit(np.array([0., 2., 5.]), np.array([0., 10., 30.]), np.array([39., 39., 39.]))
    >>> bool(m.loglik_ < 0)
    True
    """

    r_: float = field(default=np.nan, init=False)
    alpha_: float = field(default=np.nan, init=False)
    a_: float = field(default=np.nan, init=False)
    b_: float = field(default=np.nan, init=False)
    loglik_: float = field(default=np.nan, init=False)

    @staticmethod
    def loglik_terms(params: np.ndarray, x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> np.ndarray:  # noqa: N803
        """Each customer's log-likelihood at ``params`` = (r, alpha, a, b) (eq. 6 of the paper)."""
        r, alpha, a, b = params
        a1 = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
        a2 = gammaln(a + b) + gammaln(b + x) - gammaln(b) - gammaln(a + b + x)
        a3 = -(r + x) * np.log(alpha + T)
        with np.errstate(divide="ignore", invalid="ignore"):
            a4 = np.where(x > 0, np.log(a) - np.log(np.where(x > 0, b + x - 1, 1.0))
                          - (r + x) * np.log(alpha + t_x), -np.inf)
        return a1 + a2 + np.logaddexp(a3, a4)

    @staticmethod
    def loglik_gradient(params: np.ndarray, x: np.ndarray, t_x: np.ndarray, T: np.ndarray,  # noqa: N803
                        weight: np.ndarray) -> np.ndarray:
        """Gradient of the weighted log-likelihood with respect to log(r, alpha, a, b)."""
        r, alpha, a, b = params
        repeat = x > 0
        a3 = -(r + x) * np.log(alpha + T)
        with np.errstate(divide="ignore", invalid="ignore"):
            bx1 = np.where(repeat, b + x - 1, 1.0)
            a4 = np.where(repeat, np.log(a) - np.log(bx1) - (r + x) * np.log(alpha + t_x), -np.inf)
        w4 = np.exp(a4 - np.logaddexp(a3, a4))          # share of the "dropped out at t_x" term
        w3 = 1.0 - w4
        d_r = (digamma(r + x) - digamma(r) + np.log(alpha)
               - w3 * np.log(alpha + T) - w4 * np.log(alpha + t_x))
        d_alpha = r / alpha - w3 * (r + x) / (alpha + T) - w4 * (r + x) / (alpha + t_x)
        d_a = digamma(a + b) - digamma(a + b + x) + w4 / a
        d_b = (digamma(a + b) + digamma(b + x) - digamma(b) - digamma(a + b + x)
               - np.where(repeat, w4 / bx1, 0.0))
        grads = np.array([d_r, d_alpha, d_a, d_b]) @ weight
        return grads * params

    def fit(self, frequency: np.ndarray, recency: np.ndarray, T: np.ndarray) -> BetaGeoModel:  # noqa: N803
        """Maximum likelihood on the distinct (frequency, recency, T) rows, weighted by count."""
        (x, t_x, big_t), weight, _ = _distinct_rows(np.asarray(frequency, float),
                                                    np.asarray(recency, float), np.asarray(T, float))
        if len(weight) == 0 or not np.any(x > 0):
            raise InputError("the BG/NBD model needs at least one customer with a repeat purchase")

        def objective(log_params: np.ndarray) -> tuple[float, np.ndarray]:
            params = np.exp(log_params)
            value = -float((weight * self.loglik_terms(params, x, t_x, big_t)).sum())
            if not np.isfinite(value):
                return 1e300, np.zeros(4)
            return value, -self.loglik_gradient(params, x, t_x, big_t, weight)

        self.r_, self.alpha_, self.a_, self.b_, self.loglik_ = _maximise(
            objective, np.array([1.0, max(float(np.mean(big_t)), 1e-3), 1.0, 1.0]))
        return self

    @property
    def params_(self) -> dict[str, float]:
        return {"r": self.r_, "alpha": self.alpha_, "a": self.a_, "b": self.b_}

    def _odds_dead(self, x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> np.ndarray:  # noqa: N803
        """a / (b + x - 1) * ((alpha + T) / (alpha + t_x))^(r + x) for repeat customers, else 0."""
        x = np.asarray(x, float)
        with np.errstate(divide="ignore", invalid="ignore"):
            odds = (self.a_ / np.where(x > 0, self.b_ + x - 1, 1.0)
                    * ((self.alpha_ + T) / (self.alpha_ + t_x)) ** (self.r_ + x))
        return np.where(x > 0, odds, 0.0)

    def p_alive(self, x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> np.ndarray:  # noqa: N803
        """Probability that each customer is still active at T."""
        return 1.0 / (1.0 + self._odds_dead(x, t_x, T))

    def expected_purchases(self, t: float | np.ndarray, x: np.ndarray, t_x: np.ndarray,
                           T: np.ndarray) -> np.ndarray:  # noqa: N803
        """Expected purchases in the next ``t`` units of each customer (eq. 10 of the paper)."""
        r, alpha, a, b = self.r_, self.alpha_, self.a_, self.b_
        x = np.asarray(x, float)
        z = t / (alpha + T + t)
        tail = ((alpha + T) / (alpha + T + t)) ** (r + x) * hyp2f1(r + x, b + x, a + b + x - 1, z)
        return (a + b + x - 1) / (a - 1) * (1 - tail) / (1.0 + self._odds_dead(x, t_x, T))

    def expected_purchases_new(self, t: float | np.ndarray) -> np.ndarray:
        """Expected purchases of a randomly chosen new customer in its first ``t`` units (eq. 9)."""
        r, alpha, a, b = self.r_, self.alpha_, self.a_, self.b_
        t = np.asarray(t, float)
        return (a + b - 1) / (a - 1) * (1 - (alpha / (alpha + t)) ** r
                                        * hyp2f1(r, b, a + b - 1, t / (alpha + t)))


@dataclass
class GammaGammaModel:
    """Gamma-Gamma spend per purchase; parameters ``p_``, ``q_``, ``gamma_``.

    Fitted only on customers with at least one repeat purchase and a positive mean spend;
    ``excluded_`` counts the others by reason.
    """

    p_: float = field(default=np.nan, init=False)
    q_: float = field(default=np.nan, init=False)
    gamma_: float = field(default=np.nan, init=False)
    loglik_: float = field(default=np.nan, init=False)
    excluded_: dict[str, int] = field(default_factory=dict, init=False)

    @staticmethod
    def loglik_terms(params: np.ndarray, x: np.ndarray, m: np.ndarray) -> np.ndarray:
        p, q, gamma = params
        px = p * x
        return (gammaln(px + q) - gammaln(px) - gammaln(q) + q * np.log(gamma)
                + (px - 1) * np.log(m) + px * np.log(x) - (px + q) * np.log(x * m + gamma))

    @staticmethod
    def loglik_gradient(params: np.ndarray, x: np.ndarray, m: np.ndarray,
                        weight: np.ndarray) -> np.ndarray:
        """Gradient of the weighted log-likelihood with respect to log(p, q, gamma)."""
        p, q, gamma = params
        px = p * x
        log_spent = np.log(x * m + gamma)
        d_p = x * (digamma(px + q) - digamma(px) + np.log(m) + np.log(x) - log_spent)
        d_q = digamma(px + q) - digamma(q) + np.log(gamma) - log_spent
        d_gamma = q / gamma - (px + q) / (x * m + gamma)
        return (np.array([d_p, d_q, d_gamma]) @ weight) * params

    def fit(self, frequency: np.ndarray, monetary: np.ndarray) -> GammaGammaModel:
        """Maximum likelihood on the repeat customers with a positive mean spend."""
        frequency, monetary = np.asarray(frequency, float), np.asarray(monetary, float)
        repeat = frequency > 0
        usable = repeat & (monetary > 0)
        self.excluded_ = {"no repeat purchase": int((~repeat).sum()),
                          "repeat purchases with zero or negative mean spend": int((repeat & ~usable).sum())}
        if usable.sum() < 3:
            raise InputError("the Gamma-Gamma spend model needs at least 3 repeat customers with a "
                             "positive mean spend", value=int(usable.sum()))
        (x, m), weight, _ = _distinct_rows(frequency[usable], monetary[usable])

        def objective(log_params: np.ndarray) -> tuple[float, np.ndarray]:
            params = np.exp(log_params)
            value = -float((weight * self.loglik_terms(params, x, m)).sum())
            if not np.isfinite(value):
                return 1e300, np.zeros(3)
            return value, -self.loglik_gradient(params, x, m, weight)

        self.p_, self.q_, self.gamma_, self.loglik_ = _maximise(
            objective, np.array([1.0, 2.0, float(np.mean(m))]))
        return self

    @property
    def params_(self) -> dict[str, float]:
        return {"p": self.p_, "q": self.q_, "gamma": self.gamma_}

    def expected_spend(self, frequency: np.ndarray, monetary: np.ndarray) -> np.ndarray:
        """Expected spend per future purchase: a weighted mean of the population mean and the
        customer's own mean repeat spend (the population mean for customers without repeats)."""
        p, q, gamma = self.p_, self.q_, self.gamma_
        x = np.asarray(frequency, float)
        m = np.where(x > 0, np.asarray(monetary, float), 0.0)
        population = gamma * p / (q - 1)
        weight = p * x / (p * x + q - 1)
        return (1 - weight) * population + weight * m


def customer_value(bg: BetaGeoModel, gg: GammaGammaModel | None, summary: PurchaseSummary, *,
                   horizon_months: int = 12, monthly_discount: float = 0.01) -> pd.DataFrame:
    """Per customer: P(alive), expected purchases and spend over the horizon, discounted CLV.

    CLV sums, month by month, the expected purchases in that month times the expected spend per
    purchase, discounted at ``monthly_discount`` per month (the convention of the literature's
    reference implementation). Without a spend model, spend and CLV are NaN.
    """
    month = DAYS_PER_MONTH / summary.unit_days
    # the purchase side depends on (frequency, recency, T) only: computed once per distinct row
    (x, t_x, big_t), _, inverse = _distinct_rows(summary.frequency, summary.recency, summary.T)
    per_month = np.empty((horizon_months, len(x)))
    before = np.zeros(len(x))
    for i in range(horizon_months):
        upto = bg.expected_purchases((i + 1) * month, x, t_x, big_t)
        per_month[i], before = upto - before, upto
    discount = (1 + monthly_discount) ** -np.arange(1, horizon_months + 1)
    discounted_purchases = (discount @ per_month)[inverse]
    spend = (gg.expected_spend(summary.frequency, summary.monetary) if gg is not None
             else np.full(len(inverse), np.nan))
    return pd.DataFrame({
        "p_alive": bg.p_alive(x, t_x, big_t)[inverse],
        "expected_purchases": before[inverse],
        "expected_spend_per_purchase": spend,
        "clv": discounted_purchases * spend,
    }, index=summary.frame.index)


@dataclass(frozen=True)
class HoldoutCheck:
    """Predicted vs actual repeat purchases after the calibration end."""

    predicted: pd.Series        # per customer, expected purchases in the holdout
    actual: pd.Series           # per customer, purchase days in the holdout
    tracking: pd.DataFrame      # per unit since the first day: cumulative actual vs expected

    @property
    def predicted_total(self) -> float:
        return float(self.predicted.sum())

    @property
    def actual_total(self) -> int:
        return int(self.actual.sum())

    @property
    def correlation(self) -> float:
        return float(np.corrcoef(self.predicted, self.actual)[0, 1])


def holdout_check(transactions: pd.DataFrame, bg: BetaGeoModel, calibration: PurchaseSummary, *,
                  holdout_end: str | pd.Timestamp, customer: str = "customer_id",
                  timestamp: str = "timestamp", source: str = "transactions") -> HoldoutCheck:
    """Compare the model's holdout predictions with what the customers actually did.

    Only customers seen in the calibration period count (new customers in the holdout are not the
    model's to predict); same-day purchases are merged as in calibration.
    """
    holdout_end = pd.Timestamp(holdout_end)
    unit = calibration.unit_days
    days = _purchase_days(transactions, customer, timestamp, None, holdout_end, source)
    days = days[days["customer"].isin(calibration.frame.index)]
    later = days[days["day"] > calibration.end.normalize()]
    actual = later.groupby("customer").size().reindex(calibration.frame.index, fill_value=0)
    length = (holdout_end.normalize() - calibration.end.normalize()).days / unit
    predicted = pd.Series(bg.expected_purchases(length, calibration.frequency, calibration.recency,
                                                calibration.T), index=calibration.frame.index)
    return HoldoutCheck(predicted, actual, _cumulative_tracking(days, bg, unit, holdout_end))


def _cumulative_tracking(days: pd.DataFrame, bg: BetaGeoModel, unit: float,
                         end: pd.Timestamp) -> pd.DataFrame:
    """Cumulative repeat purchases per unit since the first purchase day: actual and expected.

    Expected is each customer's unconditional expectation from its own first purchase, summed
    (the paper's figure 2).
    """
    start = days["day"].min()
    first = days.groupby("customer")["day"].min()
    births = ((first - start).dt.days / unit).to_numpy()
    span = (end.normalize() + pd.Timedelta(days=1) - start).days / unit
    steps = np.minimum(np.arange(1, int(np.ceil(span)) + 1, dtype=float), span)
    born, count = np.unique(births, return_counts=True)
    age = steps[:, None] - born[None, :]
    expected = (np.where(age > 0, bg.expected_purchases_new(np.clip(age, 0, None)), 0.0) * count).sum(1)
    repeat = days[days["day"] > days["customer"].map(first)]
    at = ((repeat["day"] - start).dt.days / unit).to_numpy()
    actual = np.searchsorted(np.sort(at), steps, side="left")  # purchases before each step
    return pd.DataFrame({"unit": steps, "actual": actual.astype(float), "expected": expected})


# ------------------------------------------------------------------------------------ per run

#: per-customer columns the value model adds to a segmentation (descriptive: never clustered on)
VALUE_COLUMNS = ("p_alive", "expected_purchases", "expected_spend", "clv")


@dataclass
class ValueRun:
    """The value model fitted on one run's customers: per-customer columns and what was fitted."""

    columns: pd.DataFrame           # VALUE_COLUMNS, indexed like the input frame
    info: dict                      # parameters, settings, exclusions, notes (JSON-ready)


def _summary_from_days(frame: pd.DataFrame, unit_days: float,
                       as_of: str | pd.Timestamp | None) -> PurchaseSummary:
    """The models' inputs (in units of ``unit_days``) from the purchase-day columns."""
    x = frame["value_repeat_days"].to_numpy(float)
    t_x = frame["value_recency_days"].to_numpy(float) / unit_days
    big_t = frame["value_age_days"].to_numpy(float) / unit_days
    spend = frame["value_repeat_spend"].to_numpy(float)
    # a first purchase on the as-of date is observed for no time: count it as one day
    big_t = np.maximum(big_t, 1.0 / unit_days)
    t_x = np.minimum(t_x, big_t)
    return PurchaseSummary(
        pd.DataFrame({"frequency": x, "recency": t_x, "T": big_t,
                      "monetary": np.nan_to_num(spend, nan=0.0)}, index=frame.index),
        float(unit_days), pd.Timestamp(as_of) if as_of is not None else pd.NaT,
        bool(np.isfinite(spend).any()))


def _value_table(bg: BetaGeoModel, gg: GammaGammaModel | None, summary: PurchaseSummary,
                 horizon_months: int, monthly_discount: float) -> pd.DataFrame:
    values = customer_value(bg, gg, summary, horizon_months=horizon_months,
                            monthly_discount=monthly_discount)
    return pd.DataFrame({"p_alive": values["p_alive"],
                         "expected_purchases": values["expected_purchases"],
                         "expected_spend": values["expected_purchases"]
                         * values["expected_spend_per_purchase"],
                         "clv": values["clv"]}, index=summary.frame.index)


def apply_value_model(info: dict, frame: pd.DataFrame) -> pd.DataFrame:
    """A fitted run's value model (its ``info``: parameters and settings, as saved with the
    segmentation model) applied to new customers' purchase-day columns: VALUE_COLUMNS."""
    bg = BetaGeoModel()
    bg.r_, bg.alpha_, bg.a_, bg.b_ = (float(info["bgnbd"][k]) for k in ("r", "alpha", "a", "b"))
    gg = None
    if info.get("gamma_gamma"):
        gg = GammaGammaModel()
        gg.p_, gg.q_, gg.gamma_ = (float(info["gamma_gamma"][k]) for k in ("p", "q", "gamma"))
    summary = _summary_from_days(frame, float(info["unit_days"]), None)
    return _value_table(bg, gg, summary, int(info["horizon_months"]),
                        float(info["monthly_discount"]))


def value_from_days(frame: pd.DataFrame, *, unit_days: float = 7.0, horizon_months: int = 12,
                    monthly_discount: float = 0.01, as_of: str | pd.Timestamp | None = None,
                    ) -> ValueRun:
    """Fit BG/NBD (and Gamma-Gamma when there are amounts) from the per-customer purchase-day
    inputs every engine computes (``custseg.features.VALUE_INPUTS``: repeat purchase days, days
    from the first to the last purchase day and to the as-of date, mean repeat-day spend) and
    give every customer P(alive), expected purchases and spend over the horizon, and CLV.

    Raises InputError when the data cannot support the model (too few customers or repeat
    customers); the caller records that and goes on without value columns.
    """
    x = frame["value_repeat_days"].to_numpy(float)
    if len(x) < 20 or (x > 0).sum() < 5:
        raise InputError(f"the value model needs at least 20 customers and 5 with repeat purchase "
                         f"days; found {len(x)} and {int((x > 0).sum())}")
    summary = _summary_from_days(frame, unit_days, as_of)
    bg = BetaGeoModel().fit(summary.frequency, summary.recency, summary.T)
    gg, note = None, None
    if summary.has_amounts:
        try:
            gg = GammaGammaModel().fit(summary.frequency, summary.monetary)
        except InputError as exc:
            note = f"no spend model: {exc.message}"
    else:
        note = "no amounts: purchases and P(alive) only, no spend or CLV"
    dropout = bg.a_ / (bg.a_ + bg.b_)
    if dropout < 0.01:
        note = ((note + "; ") if note else "") + (
            f"the purchase model finds almost no drop-out (a/(a+b) = {dropout:.2%} per purchase): "
            "P(alive) is near 1 for nearly everyone, so it cannot tell who has lapsed; read "
            "recency against the typical gap between orders instead")
    columns = _value_table(bg, gg, summary, horizon_months, monthly_discount)
    info = {
        "model": "BG/NBD + Gamma-Gamma" if gg is not None else "BG/NBD",
        "unit_days": float(unit_days), "horizon_months": int(horizon_months),
        "monthly_discount": float(monthly_discount),
        "bgnbd": {k: float(v) for k, v in bg.params_.items()},
        "bgnbd_loglik": round(bg.loglik_, 6),
        "gamma_gamma": None if gg is None else {k: float(v) for k, v in gg.params_.items()},
        "gamma_gamma_excluded": None if gg is None else dict(gg.excluded_),
        "customers": int(len(x)), "repeat_customers": int((x > 0).sum()),
        "note": note,
    }
    return ValueRun(columns=columns, info=info)


@dataclass
class HoldoutRun:
    """A holdout check on one run's transactions: per customer predicted and actual repeat
    purchases after the calibration end, and the JSON-ready figures."""

    per_customer: pd.DataFrame      # predicted, actual, calibration_frequency (index customer)
    info: dict


def holdout_from_lines(lines: pd.DataFrame, *, calibration_end: str | pd.Timestamp,
                       as_of: str | pd.Timestamp, unit_days: float = 7.0,
                       source: str = "transactions") -> HoldoutRun:
    """Fit BG/NBD on the purchase lines up to ``calibration_end`` (columns customer_id, ts,
    amount; no returns) and compare its predicted repeat purchases after it with the actual ones
    up to ``as_of``: in total, per customer, as the cumulative tracking curve and as the
    conditional expectation by calibration-period repeat purchases (0..6, 7+)."""
    cal_end, end = pd.Timestamp(calibration_end), pd.Timestamp(as_of)
    if not cal_end < end:
        raise InputError(f"the calibration end {cal_end.date()} must be before the last date of "
                         f"the data ({end.date()})", file=source)
    calibration = summarise_purchases(lines, end=cal_end, customer="customer_id", timestamp="ts",
                                      amount="amount", unit_days=unit_days, source=source)
    if len(calibration.frame) < 20 or (calibration.frequency > 0).sum() < 5:
        raise InputError("too few customers before the calibration end for a holdout check "
                         f"({len(calibration.frame)}, {(calibration.frequency > 0).sum()} repeat)",
                         file=source)
    bg = BetaGeoModel().fit(calibration.frequency, calibration.recency, calibration.T)
    check = holdout_check(lines, bg, calibration, holdout_end=end, timestamp="ts", source=source)
    per = pd.DataFrame({"predicted": check.predicted, "actual": check.actual.astype(float),
                        "calibration_frequency": calibration.frequency},
                       index=calibration.frame.index)
    bins = np.minimum(per["calibration_frequency"].to_numpy(), 7).astype(int)
    cond = per.groupby(bins).agg(customers=("actual", "size"), actual=("actual", "mean"),
                                 predicted=("predicted", "mean"))
    t = check.tracking
    cal_unit = (cal_end.normalize() - lines["ts"].min().normalize()).days / unit_days
    info = {
        "calibration_end": cal_end.date().isoformat(), "holdout_end": end.date().isoformat(),
        "unit_days": float(unit_days), "customers": int(len(per)),
        "bgnbd": {k: float(v) for k, v in bg.params_.items()},
        "predicted_total": round(check.predicted_total, 3),
        "actual_total": check.actual_total,
        "error": (round(check.predicted_total / check.actual_total - 1, 6)
                  if check.actual_total else None),
        "correlation": round(check.correlation, 6) if per["actual"].std() > 0 else None,
        "tracking": {"unit": t["unit"].round(6).tolist(), "actual": t["actual"].tolist(),
                     "expected": t["expected"].round(6).tolist(), "calibration_end_unit":
                     round(cal_unit, 6)},
        "conditional": [{"repeat_purchases": ("7+" if int(b) == 7 else int(b)),
                         "customers": int(r.customers), "actual": round(float(r.actual), 6),
                         "predicted": round(float(r.predicted), 6)}
                        for b, r in cond.iterrows()],
    }
    return HoldoutRun(per_customer=per, info=info)
