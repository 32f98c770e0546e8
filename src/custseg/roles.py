"""Column roles: which column of a raw table plays which part (customer id, order date, amount,
age, income …).

Roles are found from common column names (the candidate lists below), overridden by the config;
when a required role is missing the error lists the columns that were seen. Columns of
pre-aggregated customer tables (spend per category, purchases per channel, as in
``marketing_campaign.csv``) are recognised by pattern.

Nothing here reads a value: typing is :mod:`custseg.parsing`, cleaning :mod:`custseg.cleaning`.
"""

from __future__ import annotations

import re

from custseg.config import TableConfig
from custseg.errors import ConfigError, InputError

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
                 file: str) -> dict[str, str]:
    """Map roles to column names: config overrides first, then exact synonyms, then substrings."""
    roles = _config_roles(columns, table, cfg, file)
    taken = set(roles.values()) | set(cfg.ignore) | set(cfg.categorical) | set(cfg.numeric)
    by_norm = {normalise(c): c for c in columns if c not in taken}
    for role, names in table.items():
        if role in roles:
            continue
        for n in names:
            if n in by_norm and by_norm[n] not in roles.values():
                roles[role] = by_norm[n]
                break
    for role, needle in SUBSTRING_FALLBACKS:
        if role in table and role not in roles:
            for norm, col in by_norm.items():
                if needle in norm and col not in roles.values():
                    roles[role] = col
                    break
    return roles


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


def customer_roles(columns: list[str], cfg: TableConfig, file: str) -> dict[str, str]:
    """The roles of a customers table's columns, or an error naming what is wrong.

    Without ``row_ids`` the table must have a customer id; with it, any id column is not a
    role (row numbers are the ids).
    """
    check_config_columns(columns, cfg, file)
    roles = detect_roles(columns, CUSTOMER_ROLES, cfg, file)
    if cfg.row_ids:
        roles.pop("customer_id", None)
    elif "customer_id" not in roles:
        raise InputError(
            "no customer id column found; name it in the config ([customers] id = \"...\") "
            f"or set row_ids = true. Columns seen: {', '.join(columns)}", file=file)
    return roles


def transaction_roles(columns: list[str], cfg: TableConfig, file: str) -> dict[str, str]:
    """The roles of a transactions log's columns, or an InputError naming what is missing
    (every engine reads the roles through this)."""
    roles = detect_roles(columns, TRANSACTION_ROLES, cfg, file)
    for need in ("customer_id", "timestamp"):
        if need not in roles:
            what = "customer id" if need == "customer_id" else "order date/time"
            raise InputError(f"no {what} column found; name it in the config "
                             f"([transactions.columns] {need} = \"...\"). "
                             f"Columns seen: {', '.join(columns)}", file=file)
    if "amount" not in roles and not {"quantity", "unit_price"} <= roles.keys():
        raise InputError("no amount column found, and no quantity and unit price to compute it "
                         "from; name it in the config ([transactions.columns] amount = \"...\"). "
                         f"Columns seen: {', '.join(columns)}", file=file)
    return roles


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
