"""Column roles: which column of a raw table plays which part (customer id, order date, amount,
age, income …).

Roles are found from common column names (the candidate lists below), overridden by the config;
when a required role is missing the error lists the columns that were seen. Columns of
pre-aggregated customer tables (spend per category, purchases per channel, as in
``marketing_campaign.csv``) are recognised by pattern.

Nothing here reads a value: typing is :mod:`custseg.parsing`, cleaning :mod:`custseg.cleaning`.
"""

from __future__ import annotations

import json
import re

import pandas as pd

from custseg.config import TableConfig
from custseg.errors import ConfigError, InputError
from custseg.roles_infer import Decision, Inference, choose_customer_id, infer_roles

# --------------------------------------------------------------------------------------------
# role tables: role -> normalised column names that play it (lower case, letters and digits only)

ID_NAMES = ["customerid", "customer", "custid", "customerno", "customernumber", "clientid",
            "client", "userid", "memberid", "accountid", "id"]

CUSTOMER_ROLES: dict[str, list[str]] = {
    "customer_id": ID_NAMES,
    "age": ["age", "customerage", "agey", "ageyears"],
    "birth_year": ["yearbirth", "birthyear", "yearofbirth", "yob"],
    "birth_date": ["birthdate", "dateofbirth", "dob"],
    "gender": ["gender", "sex", "genre"],
    "occupation": ["occupation", "job", "profession", "jobtitle", "employment"],
    "income": ["income", "annualincome", "annualincomek", "householdincome", "salary", "yearlyincome"],
    "education": ["education", "educationlevel", "edu", "degree"],
    "marital_status": ["maritalstatus", "marital", "married"],
    "location_type": ["locationtype", "urbanicity", "areatype", "urbanrural", "settlement"],
    "household_size": ["householdsize", "familysize", "household", "hhsize"],
    "children": ["children", "kids", "numchildren", "childrencount", "nchildren", "dependents"],
    "signup_date": ["signupdate", "dtcustomer", "customersince", "joindate", "joineddate",
                    "registrationdate", "registered", "enrollmentdate", "signup"],
    "recency_days": ["recency", "recencydays", "dayssincelastpurchase", "dayssincelastorder"],
}

TRANSACTION_ROLES: dict[str, list[str]] = {
    "customer_id": ID_NAMES[:-1],  # a bare "id" in a transactions log is usually the line id
    "order_id": ["orderid", "invoice", "invoiceno", "invoicenumber", "invoiceid", "transactionid",
                 "order", "orderno", "ordernumber", "receiptid", "txnid", "basketid"],
    "timestamp": ["invoicedate", "orderdate", "timestamp", "transactiondate", "datetime",
                  "purchasedate", "date", "orderdatetime", "time", "ts"],
    "amount": ["amount", "total", "linetotal", "lineamount", "sales", "revenue", "totalamount",
               "netamount", "value", "spend", "totalprice"],
    "quantity": ["quantity", "qty", "units", "unitsold", "quantityordered"],
    "unit_price": ["unitprice", "price", "itemprice", "priceeach"],
    "category": ["category", "productcategory", "department", "productline", "categoryname"],
    "channel": ["channel", "purchasechannel", "saleschannel", "orderchannel"],
    "discount": ["discountused", "discount", "promo", "promoused", "coupon", "couponused",
                 "promotion", "ondiscount"],
    "is_return": ["returned", "isreturn", "return", "returnflag"],
}

# substring fallbacks for a few roles whose names vary a lot: (role, needle in the name)
SUBSTRING_FALLBACKS = (("income", "income"), ("timestamp", "date"), ("customer_id", "customerid"))

# columns of pre-aggregated customer tables, recognised by pattern (e.g. marketing_campaign.csv)
CATEGORY_SPEND = re.compile(r"^mnt[_ ]?(?P<name>.+?)(?:_?prods?|_?products)?$", re.IGNORECASE)
CHANNEL_PURCHASES = re.compile(r"^num[_ ]?(?P<name>.+?)[_ ]?purchases$", re.IGNORECASE)
DEAL_CHANNELS = ("deals", "deal", "discount", "discounts", "promo")  # purchases on a deal
KIDS_PARTS = {"kidhome", "teenhome"}  # children at home, counted in parts: summed


def normalise(name: str) -> str:
    """Lower-case a column name and keep letters and digits only.

    >>> normalise("Annual Income (k$)")
    'annualincomek'
    """
    return re.sub(r"[^a-z0-9]", "", str(name).lower())


def slug(text: str) -> str:
    """A safe lower-case identifier for a category or channel level.

    >>> slug("Home & Garden")
    'home_garden'
    """
    s = re.sub(r"[^a-z0-9]+", "_", str(text).strip().lower()).strip("_")
    return s or "blank"


# --------------------------------------------------------------------------------------------
# detection


def detect_roles(columns: list[str], table: dict[str, list[str]], cfg: TableConfig,
                 file: str, sample: pd.DataFrame | None = None) -> dict[str, str]:
    """Map roles to column names: config overrides first, then the inference of
    :mod:`custseg.roles_infer` (exact names, name tokens, and the content of ``sample``)."""
    return infer(columns, table, cfg, file, sample).roles


def infer(columns: list[str], table: dict[str, list[str]], cfg: TableConfig, file: str,
          sample: pd.DataFrame | None = None, required: tuple[str, ...] = ()) -> Inference:
    """Every column's role (or what it is when it plays none), with confidence and evidence."""
    kind = "transactions" if "order_id" in table else "customers"
    return infer_roles(columns, table, cfg, file, kind, sample, fallbacks=SUBSTRING_FALLBACKS,
                       config_roles=_config_roles(columns, table, cfg, file), required=required)


def _config_roles(columns: list[str], table: dict[str, list[str]], cfg: TableConfig,
                  file: str) -> dict[str, str]:
    """The roles the config sets (``[table.columns]`` and ``id``), each checked to be a known
    role and a column of the file."""
    roles: dict[str, str] = {}
    overrides = dict(cfg.columns)
    if cfg.id:
        overrides["customer_id"] = cfg.id
    for role, col in overrides.items():
        if role not in table:
            raise ConfigError(
                f"{file}: unknown column role '{role}'; available roles: {', '.join(sorted(table))}")
        if col not in columns:
            raise ConfigError(
                f"{file}: role '{role}' is set to column '{col}', which is not in the file; "
                f"columns seen: {', '.join(columns)}")
        roles[role] = col
    return roles


def check_config_columns(columns: list[str], cfg: TableConfig, file: str) -> None:
    """Every column the config names in ``ignore``, ``categorical`` or ``numeric`` is in the
    file (a ConfigError listing the columns seen otherwise)."""
    for c in [*cfg.ignore, *cfg.categorical, *cfg.numeric]:
        if c not in columns:
            raise ConfigError(f"{file}: column '{c}' named in the config is not in the file; "
                              f"columns seen: {', '.join(columns)}")


def customer_roles(columns: list[str], cfg: TableConfig, file: str,
                   sample: pd.DataFrame | None = None) -> dict[str, str]:
    """The roles of a customers table's columns, or an error naming what is wrong.

    Without ``row_ids`` the id is the customer id column; when there is none, a row-number
    column (``rownames``, 1..n) is, and without one the rows are numbered (see
    :func:`customer_inference`). With ``row_ids``, any id column is not a role.
    """
    return customer_inference(columns, cfg, file, sample).roles


def customer_inference(columns: list[str], cfg: TableConfig, file: str,
                       sample: pd.DataFrame | None = None) -> Inference:
    """The inference for a customers table: its roles, and a decision for every column."""
    check_config_columns(columns, cfg, file)
    inf = infer(columns, CUSTOMER_ROLES, cfg, file, sample, required=("customer_id",))
    if cfg.row_ids:
        col = inf.roles.pop("customer_id", None)
        if col is not None and inf.decisions[col].source != "config":
            inf.decisions[col] = Decision(col, None, 1.0, "row_ids = true in the config: rows "
                                          "are numbered instead", hint="row_number")
    else:
        choose_customer_id(inf, cfg)
    return inf


def transaction_roles(columns: list[str], cfg: TableConfig, file: str,
                      sample: pd.DataFrame | None = None) -> dict[str, str]:
    """The roles of a transactions log's columns, or an InputError naming what is missing
    (every engine reads the roles through this)."""
    return transaction_inference(columns, cfg, file, sample).roles


def transaction_inference(columns: list[str], cfg: TableConfig, file: str,
                          sample: pd.DataFrame | None = None) -> Inference:
    """The inference for a transactions log (an InputError names a missing required role).

    The amount is optional: a log of ids and dates (and perhaps a count) still gives
    recency, frequency and tenure; money features are then absent.
    """
    inf = infer(columns, TRANSACTION_ROLES, cfg, file, sample,
                required=("customer_id", "timestamp", "amount"))
    roles = inf.roles
    for need in ("customer_id", "timestamp"):
        if need not in roles:
            what = "customer id" if need == "customer_id" else "order date/time"
            raise InputError(f"no {what} column found; name it in the config "
                             f"([transactions.columns] {need} = \"...\"). "
                             f"Columns seen: {', '.join(columns)}", file=file)
    return inf


def has_money(roles: dict[str, str]) -> bool:
    """Whether a transactions log's roles give each line's money: an amount, or a quantity
    and a unit price."""
    return "amount" in roles or {"quantity", "unit_price"} <= roles.keys()


def kids_columns(columns: list[str], used: set[str]) -> list[str]:
    """Columns counting children at home in parts (``Kidhome``, ``Teenhome``) not yet used."""
    return [c for c in columns if normalise(c) in KIDS_PARTS and c not in used]


def aggregate_columns(columns: list[str], skip: set[str]
                      ) -> tuple[dict[str, str], dict[str, str], str | None]:
    """Columns of a pre-aggregated customer table, by pattern (``MntWines``,
    ``NumWebPurchases``, ``NumDealsPurchases``), leaving out those in ``skip``.

    Returns (spend per category: level -> column, purchases per channel: level -> column,
    the column of purchases made on a deal or None).
    """
    category_spend: dict[str, str] = {}
    channel_purchases: dict[str, str] = {}
    deal_purchases = None
    for c in columns:
        if c in skip:
            continue
        m_ch = CHANNEL_PURCHASES.match(normalise(c)) or CHANNEL_PURCHASES.match(c)
        m_sp = CATEGORY_SPEND.match(c)
        if m_ch:
            name = slug(m_ch.group("name"))
            if name in DEAL_CHANNELS:
                deal_purchases = c
            else:
                channel_purchases[name] = c
        elif m_sp and normalise(c).startswith("mnt"):
            category_spend[slug(m_sp.group("name"))] = c
    return category_spend, channel_purchases, deal_purchases


# --------------------------------------------------------------------------------------------
# inspecting a table (`custseg inspect`): the role table and a config that reproduces it


#: how `inspect` shows a column that plays no role but got a hint
HINT_LABELS = {"row_number": "(row numbers)", "outcome": "(outcome: profiled)",
               "coded_category": "(category codes)", "informative": "(unused)"}


def inspect_rows(frame: pd.DataFrame, inf: Inference) -> list[dict]:
    """One row per column: role (or what it is), confidence, type, missing share, distinct
    values and an example, with the evidence."""
    rows = []
    for col in frame.columns:
        col = str(col)
        d = inf.decisions.get(col)
        p = inf.profiles.get(col)
        values = frame[col]
        present = values.dropna()
        text = present.astype(str).str.strip()
        present = present[text != ""]
        role = d.role if d and d.role else (HINT_LABELS.get(d.hint) if d and d.hint else None)
        rows.append({
            "column": col, "role": role or "-",
            "confidence": round(d.confidence, 2) if d else None,
            "type": p.kind if p else str(values.dtype),
            "missing": 1 - len(present) / max(len(values), 1),
            "distinct": int(present.nunique()),
            "example": (str(present.iloc[0]) if len(present) else ""),
            "evidence": d.evidence if d else "",
        })
    if inf.implicit_row_ids:
        rows.insert(0, {"column": "(row number)", "role": "customer_id", "confidence": 1.0,
                        "type": "integer", "missing": 0.0, "distinct": len(frame),
                        "example": "1", "evidence": "no id column: rows are numbered 1..n"})
    return rows


def _q(text: str) -> str:
    """A TOML basic string."""
    return json.dumps(str(text), ensure_ascii=False)


def _comment(d: Decision | None) -> str:
    if d is None:
        return ""
    ev = " ".join(d.evidence.split())
    return f"  # {d.confidence:.2f}: {ev}"


def config_toml(tables: list[tuple[str, str, Inference]], version: str = "") -> str:
    """A complete, commented ``custseg.toml`` that reproduces the inferred roles.

    ``tables``: (``customers`` or ``transactions``, the file's path, its inference).
    """
    lines = [f"# custseg.toml written by `custseg inspect`{' ' + version if version else ''}.",
             "# Every column's inferred role is set explicitly, with its confidence and the",
             "# evidence in a comment. Edit a line to change a role, then run:",
             "#   custseg segment --config custseg.toml --out results/",
             ""]
    for table, path, inf in tables:
        lines.append(f"[{table}]")
        lines.append(f"path = {_q(path)}")
        roles = dict(inf.roles)
        if table == "customers":
            cid = roles.pop("customer_id", None)
            if cid is not None:
                lines.append(f"id = {_q(cid)}{_comment(inf.decisions.get(cid))}")
            else:
                lines.append("row_ids = true  # no id column: customers are numbered by row "
                             "(1..n)")
            coded = inf.hinted("coded_category")
            if coded:
                lines.append(f"categorical = [{', '.join(_q(c) for c in coded)}]"
                             "  # integer codes read as categories")
        ignore = [c for c in inf.hinted("row_number") if c not in inf.roles.values()]
        if ignore:
            lines.append(f"ignore = [{', '.join(_q(c) for c in ignore)}]"
                         "  # row numbers: never a feature")
        rest = [c for c in inf.decisions if c not in inf.roles.values()
                and c not in ignore and c not in inf.hinted("coded_category")]
        if rest:
            lines.append("# the other columns play no role"
                         + (" (typed from their content: number, 0/1 flag or category):"
                            if table == "customers" else " in a transactions log:"))
            for c in rest:
                d = inf.decisions[c]
                what = {"outcome": "an outcome, profiled per segment, not clustered",
                        "informative": "looks informative: give it a role to use it"}.get(
                            d.hint or "", " ".join(d.evidence.split()))
                lines.append(f"#   {c}: {what}")
        lines.append("")
        lines.append(f"[{table}.columns]")
        for role, col in roles.items():
            lines.append(f"{role} = {_q(col)}{_comment(inf.decisions.get(col))}")
        if table == "transactions" and not has_money(inf.roles):
            lines.append('# amount = "..."  # none found: money features are left out')
        lines.append("")
    return "\n".join(lines)
