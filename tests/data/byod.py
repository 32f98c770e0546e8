"""Small reproductions of public customer and transaction tables custseg was not written
against ("bring your own data"): the published column names and value formats, with values
drawn from a seeded generator (see README.md in this folder for each table's origin).

Each function returns a DataFrame of text cells, as a CSV export would hold them; ``write``
saves one as CSV.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd


def _rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def islr_credit(n: int = 400) -> pd.DataFrame:
    """ISLR ``Credit`` as exported by Rdatasets: a ``rownames`` column and an ``ID`` (both 1..n)."""
    r = _rng(1)
    income = np.round(r.gamma(2.5, 18, n) + 10, 3)
    limit = np.round(income * 60 + r.normal(0, 800, n) + 1000).astype(int)
    return pd.DataFrame({
        "rownames": np.arange(1, n + 1), "ID": np.arange(1, n + 1),
        "Income": income, "Limit": limit, "Rating": (limit / 13 + r.normal(0, 20, n)).astype(int),
        "Cards": r.integers(1, 9, n), "Age": r.integers(23, 98, n),
        "Education": r.integers(5, 21, n),
        "Gender": r.choice([" Male", "Female"], n), "Student": r.choice(["No", "Yes"], n, p=[.9, .1]),
        "Married": r.choice(["Yes", "No"], n), "Ethnicity": r.choice(
            ["Caucasian", "Asian", "African American"], n),
        "Balance": np.maximum(0, (limit * 0.2 - 300 + r.normal(0, 300, n))).astype(int),
    })


def islr_default(n: int = 1000) -> pd.DataFrame:
    """ISLR ``Default`` (Rdatasets): rows numbered by ``rownames``, no other id."""
    r = _rng(2)
    student = r.choice(["No", "Yes"], n, p=[.7, .3])
    balance = np.round(np.abs(r.normal(835, 480, n)), 6)
    income = np.round(np.where(student == "Yes", r.normal(17700, 4000, n),
                               r.normal(40000, 10000, n)), 6)
    default = np.where(balance > 1800, "Yes", "No")
    return pd.DataFrame({"rownames": np.arange(1, n + 1), "default": default,
                         "student": student, "balance": balance, "income": income})


def aer_creditcard(n: int = 500) -> pd.DataFrame:
    """AER ``CreditCard`` (Rdatasets): income in USD 10,000, ``share`` = spend / income,
    ``dependents`` a count."""
    r = _rng(3)
    income = np.round(r.gamma(4, 0.85, n) + 0.2, 4)
    exp = np.round(np.abs(r.normal(180, 250, n)), 6)
    return pd.DataFrame({
        "rownames": np.arange(1, n + 1), "card": r.choice(["yes", "no"], n, p=[.78, .22]),
        "reports": r.poisson(0.45, n), "age": np.round(r.uniform(18, 80, n), 5),
        "income": income, "share": np.round(exp / (income * 10000 / 12), 6),
        "expenditure": exp, "owner": r.choice(["yes", "no"], n),
        "selfemp": r.choice(["no", "yes"], n, p=[.93, .07]), "dependents": r.integers(0, 6, n),
        "months": r.integers(0, 540, n), "majorcards": r.integers(0, 2, n),
        "active": r.integers(0, 46, n),
    })


def telco_churn(n: int = 500) -> pd.DataFrame:
    """IBM ``WA_Fn-UseC_-Telco-Customer-Churn`` (modeldata's ``wa_churn`` has the same
    columns): ``customerID`` like 7590-VHVEG, ``Dependents`` Yes/No, blank ``TotalCharges``
    for new customers."""
    r = _rng(4)
    letters = np.array(list("ABCDEFGHIJKLMNOPQRSTUVWXYZ"))
    ids = [f"{r.integers(1000, 9999)}-{''.join(r.choice(letters, 5))}" for _ in range(n)]
    tenure = r.integers(0, 73, n)
    monthly = np.round(r.uniform(18.25, 118.75, n), 2)
    total = np.where(tenure == 0, " ", np.round(monthly * np.maximum(tenure, 1), 2).astype(str))
    yn = ["Yes", "No"]
    svc = ["Yes", "No", "No internet service"]
    return pd.DataFrame({
        "customerID": ids, "gender": r.choice(["Female", "Male"], n),
        "SeniorCitizen": r.choice([0, 1], n, p=[.84, .16]), "Partner": r.choice(yn, n),
        "Dependents": r.choice(yn, n, p=[.3, .7]), "tenure": tenure,
        "PhoneService": r.choice(yn, n, p=[.9, .1]),
        "MultipleLines": r.choice(["No phone service", "No", "Yes"], n),
        "InternetService": r.choice(["DSL", "Fiber optic", "No"], n),
        "OnlineSecurity": r.choice(svc, n), "OnlineBackup": r.choice(svc, n),
        "DeviceProtection": r.choice(svc, n), "TechSupport": r.choice(svc, n),
        "StreamingTV": r.choice(svc, n), "StreamingMovies": r.choice(svc, n),
        "Contract": r.choice(["Month-to-month", "One year", "Two year"], n),
        "PaperlessBilling": r.choice(yn, n),
        "PaymentMethod": r.choice(["Electronic check", "Mailed check",
                                   "Bank transfer (automatic)", "Credit card (automatic)"], n),
        "MonthlyCharges": monthly, "TotalCharges": total,
        "Churn": r.choice(["No", "Yes"], n, p=[.73, .27]),
    })


def german_credit(n: int = 500) -> pd.DataFrame:
    """UCI Statlog German credit with the long column names of its common CSV export; no id,
    ``telephone`` is yes/none."""
    r = _rng(5)
    return pd.DataFrame({
        "checking_account_status": r.choice(["... < 0 DM", "0 <= ... < 200 DM",
                                             "no checking account"], n),
        "duration_in_month": r.integers(4, 72, n),
        "credit_history": r.choice(["existing credits paid back duly till now",
                                    "critical account", "delay in paying off in the past"], n),
        "purpose": r.choice(["car (new)", "radio/television", "furniture/equipment",
                             "business", "education"], n),
        "credit_amount": r.integers(250, 18424, n),
        "savings_account_bonds": r.choice(["... < 100 DM", "unknown/ no savings account",
                                           "100 <= ... < 500 DM"], n),
        "present_employment_since": r.choice(["1 <= ... < 4 years", "... >= 7 years",
                                              "unemployed", "... < 1 year"], n),
        "installment_rate_in_percentage_of_disposable_income": r.integers(1, 5, n),
        "personal_status_and_sex": r.choice(["male : single", "female : divorced/separated/married",
                                             "male : married/widowed"], n),
        "other_debtors_guarantors": r.choice(["none", "guarantor", "co-applicant"], n,
                                             p=[.9, .05, .05]),
        "present_residence_since": r.integers(1, 5, n),
        "property": r.choice(["real estate", "car or other", "unknown / no property"], n),
        "age_in_years": r.integers(19, 76, n),
        "other_installment_plans": r.choice(["none", "bank", "stores"], n),
        "housing": r.choice(["own", "rent", "for free"], n),
        "number_of_existing_credits_at_this_bank": r.integers(1, 5, n),
        "job": r.choice(["skilled employee / official", "unskilled - resident",
                         "management/ self-employed/ highly qualified employee/ officer"], n),
        "number_of_people_being_liable_to_provide_maintenance_for": r.integers(1, 3, n),
        "telephone": r.choice(["yes", "none"], n),
        "foreign_worker": r.choice(["yes", "no"], n, p=[.96, .04]),
        "credit_risk": r.choice(["good", "bad"], n, p=[.7, .3]),
    })


def mlc_churn(n: int = 500) -> pd.DataFrame:
    """modeldata ``mlc_churn`` (Rdatasets): ``account_length`` is not an id; rows numbered by
    ``rownames``."""
    r = _rng(6)
    out = {"rownames": np.arange(1, n + 1),
           "state": r.choice(["KS", "OH", "NJ", "OK", "AL", "MA"], n),
           "account_length": r.integers(1, 243, n),
           "area_code": r.choice(["area_code_415", "area_code_408", "area_code_510"], n),
           "international_plan": r.choice(["no", "yes"], n, p=[.9, .1]),
           "voice_mail_plan": r.choice(["no", "yes"], n, p=[.73, .27]),
           "number_vmail_messages": r.integers(0, 51, n)}
    for part in ("day", "eve", "night", "intl"):
        mins = np.round(r.uniform(0, 350 if part != "intl" else 20, n), 1)
        out[f"total_{part}_minutes"] = mins
        out[f"total_{part}_calls"] = r.integers(0, 165, n)
        out[f"total_{part}_charge"] = np.round(mins * 0.17, 2)
    out["number_customer_service_calls"] = r.integers(0, 10, n)
    out["churn"] = r.choice(["no", "yes"], n, p=[.86, .14])
    return pd.DataFrame(out)


def cdnow(n_customers: int = 300, *, money: bool = True) -> pd.DataFrame:
    """CDNOW purchase history (Fader & Hardie) in its CSV form ``customer_id, date,
    number_of_cds, dollar_value``; ``money=False`` keeps the classic id + date shape."""
    r = _rng(7)
    rows = []
    start = np.datetime64("1997-01-01")
    for cid in range(1, n_customers + 1):
        k = 1 + r.poisson(1.5 if cid % 3 else 6)
        days = np.sort(r.integers(0, 540, k))
        for d in days:
            cds = 1 + r.poisson(1.4)
            rows.append((cid, str(start + int(d)), cds, round(cds * r.uniform(9, 16), 2)))
    df = pd.DataFrame(rows, columns=["customer_id", "date", "number_of_cds", "dollar_value"])
    return df if money else df[["customer_id", "date"]]


def sales_log(n_customers: int = 200) -> pd.DataFrame:
    """A retail sales export: ``ClientKey, txn_datetime, net_sales, sku_group, promo_flag,
    order_status`` (returned lines marked in the status, amounts positive)."""
    r = _rng(8)
    rows = []
    for c in range(n_customers):
        key = f"CK{10000 + c}"
        heavy = c % 4 == 0
        for _ in range(1 + r.poisson(8 if heavy else 2)):
            ts = np.datetime64("2023-01-01T08:00") + int(r.integers(0, 365 * 24 * 60))
            group = r.choice(["Grocery", "Home", "Apparel", "Beauty"],
                             p=[.6, .2, .1, .1] if heavy else [.2, .2, .3, .3])
            rows.append((key, str(ts).replace("T", " ") + ":00",
                         f"{r.uniform(3, 120 if heavy else 40):.2f}", group,
                         r.choice(["Y", "N"], p=[.3, .7]),
                         r.choice(["completed", "returned", "cancelled"], p=[.9, .07, .03])))
    return pd.DataFrame(rows, columns=["ClientKey", "txn_datetime", "net_sales", "sku_group",
                                       "promo_flag", "order_status"])


def game_log(n_players: int = 200) -> pd.DataFrame:
    """A mobile game's purchase events: ``player_id, event_time`` (ISO), ``platform``,
    ``item_count``, ``revenue_usd``."""
    r = _rng(9)
    rows = []
    for p in range(n_players):
        whale = p % 10 == 0
        for _ in range(1 + r.poisson(12 if whale else 1.5)):
            ts = np.datetime64("2024-03-01T00:00:00") + int(r.integers(0, 90 * 86400))
            rows.append((f"p_{p:05d}", str(ts), r.choice(["ios", "android", "web"]),
                         int(1 + r.poisson(1)),
                         f"{r.choice([0.99, 4.99, 9.99, 19.99, 99.99], p=[.5, .25, .15, .07, .03]):.2f}"))
    return pd.DataFrame(rows, columns=["player_id", "event_time", "platform", "item_count",
                                       "revenue_usd"])


CUSTOMER_TABLES = {"islr_credit": islr_credit, "islr_default": islr_default,
                   "aer_creditcard": aer_creditcard, "telco_churn": telco_churn,
                   "german_credit": german_credit, "mlc_churn": mlc_churn}
TRANSACTION_LOGS = {"cdnow": cdnow, "cdnow_id_date": lambda: cdnow(money=False),
                    "sales_log": sales_log, "game_log": game_log}


def write(frame: pd.DataFrame, path: Path) -> Path:
    frame.to_csv(path, index=False)
    return path
