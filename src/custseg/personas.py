"""The planted personas: who the synthetic customers are, as data.

Five personas (:data:`PERSONAS`), each a :class:`PersonaSpec` of population-level means (age,
income, household, order rate, basket value, discount appetite, category and channel mix, ...)
in :data:`SPECS`, and the drift that can be planted into them over time (:data:`DRIFT_KINDS`,
:func:`drifted_specs`). Nothing here draws a random number; :mod:`custseg.synth` generates
customers and transactions from these specs.

Examples
--------
>>> [s.name for s in SPECS] == list(PERSONAS)
True
>>> specs, factors = drifted_specs("shock", month=6, shock_month=6)
>>> factors
{'line_amount_factor': 1.6, 'young_professionals_web_to_app': 0.3}
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

__all__ = [
    "CATEGORIES",
    "CHANNELS",
    "DRIFT_KINDS",
    "EDUCATION_LEVELS",
    "GENDERS",
    "GRADUAL_AMOUNT_PER_MONTH",
    "GRADUAL_APP_PER_MONTH",
    "LOCATION_TYPES",
    "OCCUPATIONS",
    "PERSONAS",
    "SHOCK_AMOUNT",
    "SHOCK_APP",
    "SPECS",
    "PersonaSpec",
    "drifted_specs",
]

PERSONAS: tuple[str, ...] = (
    "Young Professionals",
    "Family-Oriented",
    "Budget-Conscious",
    "Loyalists",
    "At-Risk / Lapsed",
)
CATEGORIES: tuple[str, ...] = (
    "Electronics",
    "Fashion",
    "Groceries",
    "Home",
    "Kids",
    "Beauty",
    "Sports",
    "Books",
)
CHANNELS: tuple[str, ...] = ("web", "app", "store", "phone")
OCCUPATIONS: tuple[str, ...] = (
    "Professional",
    "Technology",
    "Management",
    "Service",
    "Manual",
    "Retired",
    "Student",
    "Self-employed",
    "Homemaker",
)
EDUCATION_LEVELS: tuple[str, ...] = ("High School", "Some College", "Bachelor", "Master", "Doctorate")
LOCATION_TYPES: tuple[str, ...] = ("urban", "suburban", "rural")
GENDERS: tuple[str, ...] = ("Female", "Male", "Non-binary")


@dataclass(frozen=True)
class PersonaSpec:
    """The population-level parameters of one planted persona.

    Each customer of the persona draws their own parameters around these means, so two customers
    of the same persona differ and neighbouring personas overlap.

    Attributes
    ----------
    name : str
        One of :data:`PERSONAS`.
    share : float
        Expected share of customers (the shares are drawn as one multinomial).
    age : tuple of float
        ``(mean, sd, low, high)`` of a normal clipped to ``[low, high]``.
    income : tuple of float
        ``(mean, sd)`` of annual income, clipped below at 9,000.
    location : tuple of float
        Probabilities of :data:`LOCATION_TYPES`.
    occupation : tuple of float
        Probabilities of :data:`OCCUPATIONS`.
    education : tuple of float
        Probabilities of :data:`EDUCATION_LEVELS`.
    children : tuple of float
        ``(base, poisson_lambda, max)``: children = min(base + Poisson(lambda), max).
    partner, extra_adult : float
        Probability of a second adult and of one more adult in the household.
    signup_years : tuple of float
        Signup date drawn uniformly this many years before the end date.
    orders_per_month : float
        Mean order rate while active (each customer's own rate is log-normal around it).
    line_amount : float
        Mean line amount (each customer's own mean is log-normal around it).
    discount : float
        Mean share of orders that use a discount (each customer's share is Beta around it).
    return_rate : float
        Mean share of orders with a returned line.
    categories : tuple of float
        Mean probabilities of :data:`CATEGORIES` (each customer draws a Dirichlet around them).
    channels : tuple of float
        Mean probabilities of :data:`CHANNELS` (each customer draws a Dirichlet around them).
    lapse_months : tuple of float or None
        When set, the customer stops buying this many months (uniform) before the end date.
    """

    name: str
    share: float
    age: tuple[float, float, float, float]
    income: tuple[float, float]
    location: tuple[float, ...]
    occupation: tuple[float, ...]
    education: tuple[float, ...]
    children: tuple[float, float, float]
    partner: float
    extra_adult: float
    signup_years: tuple[float, float]
    orders_per_month: float
    line_amount: float
    discount: float
    return_rate: float
    categories: tuple[float, ...]
    channels: tuple[float, ...]
    lapse_months: tuple[float, float] | None = None

    def as_dict(self) -> dict[str, Any]:
        """Return the parameters as a JSON-serialisable dict with named probabilities."""
        return {
            "share": self.share,
            "age": dict(zip(("mean", "sd", "min", "max"), self.age, strict=True)),
            "income": dict(zip(("mean", "sd"), self.income, strict=True)),
            "location_type": dict(zip(LOCATION_TYPES, self.location, strict=True)),
            "occupation": dict(zip(OCCUPATIONS, self.occupation, strict=True)),
            "education": dict(zip(EDUCATION_LEVELS, self.education, strict=True)),
            "children": dict(zip(("base", "poisson_lambda", "max"), self.children, strict=True)),
            "partner": self.partner,
            "extra_adult": self.extra_adult,
            "signup_years_before_end": list(self.signup_years),
            "orders_per_month": self.orders_per_month,
            "line_amount": self.line_amount,
            "discount_share": self.discount,
            "return_rate": self.return_rate,
            "categories": dict(zip(CATEGORIES, self.categories, strict=True)),
            "channels": dict(zip(CHANNELS, self.channels, strict=True)),
            "lapse_months_before_end": None if self.lapse_months is None else list(self.lapse_months),
        }


# The planted personas, in the order of PERSONAS.
#                     Prof  Tech  Mgmt  Serv  Manu  Reti  Stud  Self  Home
SPECS: tuple[PersonaSpec, ...] = (
    PersonaSpec(
        name="Young Professionals",
        share=0.20,
        age=(29, 4, 21, 40),
        income=(95_000, 18_000),
        location=(0.75, 0.20, 0.05),
        occupation=(0.36, 0.34, 0.20, 0.03, 0.00, 0.00, 0.02, 0.05, 0.00),
        education=(0.00, 0.03, 0.57, 0.35, 0.05),
        children=(0, 0.05, 1),
        partner=0.45,
        extra_adult=0.0,
        signup_years=(0.5, 3.0),
        orders_per_month=1.5,
        line_amount=90.0,
        discount=0.10,
        return_rate=0.06,
        #           Elec  Fash  Groc  Home  Kids  Beau  Spor  Book
        categories=(0.40, 0.25, 0.04, 0.06, 0.01, 0.04, 0.15, 0.05),
        channels=(0.40, 0.45, 0.10, 0.05),
    ),
    PersonaSpec(
        name="Family-Oriented",
        share=0.25,
        age=(41, 5, 25, 65),
        income=(70_000, 14_000),
        location=(0.15, 0.70, 0.15),
        occupation=(0.18, 0.06, 0.16, 0.18, 0.15, 0.00, 0.00, 0.07, 0.20),
        education=(0.15, 0.30, 0.38, 0.15, 0.02),
        children=(1, 1.2, 4),
        partner=0.92,
        extra_adult=0.08,
        signup_years=(1.0, 6.0),
        orders_per_month=2.0,
        line_amount=65.0,
        discount=0.25,
        return_rate=0.045,
        categories=(0.04, 0.04, 0.40, 0.22, 0.25, 0.02, 0.02, 0.01),
        channels=(0.35, 0.15, 0.45, 0.05),
    ),
    PersonaSpec(
        name="Budget-Conscious",
        share=0.22,
        age=(46, 13, 18, 85),
        income=(34_000, 9_000),
        location=(0.30, 0.28, 0.42),
        occupation=(0.02, 0.01, 0.02, 0.32, 0.30, 0.10, 0.12, 0.04, 0.07),
        education=(0.55, 0.35, 0.09, 0.01, 0.00),
        children=(0, 0.5, 3),
        partner=0.45,
        extra_adult=0.08,
        signup_years=(0.5, 5.0),
        orders_per_month=1.3,
        line_amount=22.0,
        discount=0.70,
        return_rate=0.10,
        categories=(0.03, 0.26, 0.30, 0.17, 0.03, 0.17, 0.02, 0.02),
        channels=(0.40, 0.10, 0.45, 0.05),
    ),
    PersonaSpec(
        name="Loyalists",
        share=0.18,
        age=(56, 8, 30, 85),
        income=(62_000, 14_000),
        location=(0.30, 0.45, 0.25),
        occupation=(0.14, 0.02, 0.14, 0.10, 0.08, 0.36, 0.00, 0.14, 0.02),
        education=(0.25, 0.30, 0.30, 0.12, 0.03),
        children=(0, 0.3, 3),
        partner=0.65,
        extra_adult=0.03,
        signup_years=(5.0, 10.0),
        orders_per_month=3.0,
        line_amount=55.0,
        discount=0.15,
        return_rate=0.03,
        categories=(0.04, 0.04, 0.30, 0.22, 0.02, 0.16, 0.02, 0.20),
        channels=(0.25, 0.05, 0.50, 0.20),
    ),
    PersonaSpec(
        name="At-Risk / Lapsed",
        share=0.15,
        age=(40, 10, 18, 85),
        income=(52_000, 14_000),
        location=(0.55, 0.35, 0.10),
        occupation=(0.10, 0.08, 0.06, 0.24, 0.12, 0.02, 0.18, 0.08, 0.12),
        education=(0.25, 0.30, 0.30, 0.12, 0.03),
        children=(0, 0.6, 3),
        partner=0.5,
        extra_adult=0.05,
        signup_years=(1.0, 4.0),
        orders_per_month=1.2,
        line_amount=45.0,
        discount=0.30,
        return_rate=0.04,
        categories=(0.20, 0.35, 0.10, 0.12, 0.04, 0.10, 0.06, 0.03),
        channels=(0.70, 0.15, 0.12, 0.03),
        lapse_months=(4.0, 9.0),
    ),
)


# ------------------------------------------------------------------------------------------
# planted drift: how the specs change from month to month

DRIFT_KINDS = ("none", "gradual", "shock")
GRADUAL_AMOUNT_PER_MONTH = 0.06   # basket value grows 6% a month (of the first month's level)
GRADUAL_APP_PER_MONTH = 0.03      # Young Professionals move 3 points a month from web to app
SHOCK_AMOUNT = 1.6                # from the shock month on, baskets are 60% larger
SHOCK_APP = 0.30                  # and Young Professionals move 30 points from web to app


def drifted_specs(kind: str, month: int, shock_month: int,
                  specs: tuple[PersonaSpec, ...] = SPECS) -> tuple[tuple[PersonaSpec, ...], dict]:
    """The persona specs of snapshot ``month`` (0-based) under drift ``kind``.

    Parameters
    ----------
    kind : str
        One of :data:`DRIFT_KINDS`.
    month : int
        Index of the snapshot; the first is month 0.
    shock_month : int
        First month of the ``shock`` (ignored by the other kinds).
    specs : tuple of PersonaSpec, default SPECS
        The undrifted personas.

    Returns
    -------
    specs : tuple of PersonaSpec
        Every persona's ``line_amount`` scaled by the month's factor; Young Professionals' channel
        mix moved from web to app (web keeps at least 0.02).
    factors : dict
        ``line_amount_factor`` and ``young_professionals_web_to_app`` of the month.
    """
    amount, app = _drift_factors(kind, month, shock_month)
    drifted = tuple(_drift_one(spec, amount, app) for spec in specs)
    return drifted, {"line_amount_factor": round(amount, 6),
                     "young_professionals_web_to_app": round(app, 6)}


def _drift_factors(kind: str, month: int, shock_month: int) -> tuple[float, float]:
    """``(line amount factor, web-to-app share moved)`` of one month."""
    if kind == "gradual":
        return 1.0 + GRADUAL_AMOUNT_PER_MONTH * month, GRADUAL_APP_PER_MONTH * month
    if kind == "shock" and month >= shock_month:
        return SHOCK_AMOUNT, SHOCK_APP
    return 1.0, 0.0


def _drift_one(spec: PersonaSpec, amount: float, app: float) -> PersonaSpec:
    new = replace(spec, line_amount=spec.line_amount * amount)
    if spec.name != "Young Professionals" or app <= 0:
        return new
    channels = list(spec.channels)
    web, app_i = CHANNELS.index("web"), CHANNELS.index("app")
    move = min(app, channels[web] - 0.02)
    channels[web] -= move
    channels[app_i] += move
    return replace(new, channels=tuple(channels))
