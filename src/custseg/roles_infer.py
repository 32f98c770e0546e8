"""Role inference: which column of a table plays which role, from its name *and* its content.

A column's name is split into tokens (``ClientKey`` -> client, key; ``txn_datetime`` -> txn,
datetime; ``number_of_cds`` -> number, of, cds) and matched against synonym sets; a sample of its
rows is profiled (share of distinct values, integer / float / text, dates, levels, negatives,
row numbers 1..n). Each role's candidates are scored (name evidence x content fit); every
decision carries a confidence in [0, 1] and the evidence for it, and columns that play no role
get a *hint* (row numbers, an outcome, a coded category, a category-like column a transactions
log cannot use). When two candidates for a required role are too close to call, an
:class:`~custseg.errors.InputError` lists both and the config line that settles it.

Config overrides always win; the exact names of :mod:`custseg.roles` rank first, so tables the
name lists already knew keep their roles.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from custseg.config import TableConfig
from custseg.derive import OUTCOME_NAMES
from custseg.errors import InputError

SAMPLE_ROWS = 5000       # rows profiled per column (the first ones: deterministic)
MARGIN = 0.1             # two candidates for a required role closer than this are a tie
MIN_SCORE = 0.5          # a candidate below this never takes a role
EXACT = 0.95             # a name on the role's list of exact names

# ------------------------------------------------------------------------------- tokens

_STOP = {"of", "the", "in", "at", "on", "a", "to", "for", "per", "by", "is", "was", "has"}


def tokens(name: str) -> list[str]:
    """Split a column name into lower-case tokens: snake, camel, space and digit boundaries.

    >>> tokens("ClientKey"), tokens("txn_datetime"), tokens("Annual Income (k$)")
    (['client', 'key'], ['txn', 'datetime'], ['annual', 'income', 'k'])
    """
    s = re.sub(r"([a-z])([A-Z])", r"\1 \2", str(name))
    s = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1 \2", s)
    s = re.sub(r"([A-Za-z])(\d)|(\d)([A-Za-z])", lambda m: " ".join(g for g in m.groups() if g),
               s)
    return [t for t in re.split(r"[^a-z0-9]+", s.lower()) if t]


def _norm(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", str(name).lower())


# ------------------------------------------------------------------------------- synonyms

ENTITY = {"customer", "customers", "cust", "client", "clients", "member", "account", "user",
          "player", "buyer", "shopper", "subscriber", "patron", "consumer", "guest", "cid",
          "masterid", "userid", "custid", "clientid", "memberid"}
ID_TOKENS = {"id", "ids", "key", "no", "nr", "num", "number", "code", "ref", "uid", "uuid",
             "guid", "identifier"}
ORDER = {"order", "orders", "invoice", "transaction", "txn", "trx", "tx", "receipt", "basket",
         "ticket", "purchase", "sale", "bill"}
DATE = {"date", "time", "ts", "dt", "datetime", "timestamp", "created", "purchased", "day",
        "when", "ordered", "at", "on"}
MONEY = {"amount", "amt", "value", "revenue", "sales", "sale", "spend", "spent", "charges",
         "charge", "total", "net", "gross", "paid", "payment", "dollar", "dollars", "usd", "eur",
         "gbp", "money", "turnover", "cost", "subtotal", "sum"}
PRICE = {"price", "unitprice", "each"}
QTY = {"quantity", "qty", "units", "items", "item", "count", "pieces", "pcs", "volume", "cds",
       "copies", "n"}
CATEGORY = {"category", "categories", "cat", "sku", "product", "products", "family", "group",
            "department", "dept", "class", "line", "brand", "genre", "section", "subcategory",
            "type", "kind", "segment", "aisle", "range"}
CHANNEL = {"channel", "source", "medium", "store", "online", "platform", "device", "via",
           "shop", "outlet", "web"}
PROMO = {"promo", "promotion", "promotions", "coupon", "voucher", "discount", "discounted",
         "deal", "deals", "offer", "markdown"}
RETURN = {"return", "returned", "returns", "refund", "refunded", "cancelled", "canceled",
          "cancel", "isreturn"}
STATUS = {"status", "state", "outcome"}
RETURN_VALUES = {"returned", "return", "refunded", "refund", "cancelled", "canceled", "void",
                 "voided"}
SIGNUP = {"signup", "joined", "join", "since", "registration", "registered", "enrollment",
          "enrolled", "opened", "start", "created", "first", "onboarded", "activation"}
RATE_VETO = {"rate", "percent", "percentage", "pct", "ratio", "share", "installment", "prop",
             "proportion", "index"}
ROW_NUMBER_NAMES = {"rownames", "rowname", "index", "unnamed0", "unnamed", "row", "rowid",
                    "rownum", "rownumber", "x", "x1", "", "level0", "idx"}
CODE_CATEGORY = {"region", "channel", "segment", "zone", "area", "code", "type", "class",
                 "group", "category", "country", "state", "city", "store", "branch", "plan",
                 "tier", "contract", "cluster", "district", "territory"}

# customer-table roles: (role, token sets all of which must be hit, tokens that veto, content)
CUSTOMER_TOKEN_RULES: dict[str, list[tuple[set[str], ...]]] = {
    "age": [({"age"},)],
    "birth_year": [({"birth", "born", "yob"}, {"year", "yr", "yob"})],
    "birth_date": [({"birth", "dob", "born", "birthday"},)],
    "gender": [({"gender", "sex", "genre"},)],
    "occupation": [({"occupation", "job", "profession", "jobtitle", "employment", "work"},)],
    "income": [({"income", "salary", "earnings", "wage", "wages"},)],
    "education": [({"education", "edu", "degree", "schooling", "qualification"},)],
    "marital_status": [({"marital", "married", "maritalstatus"},)],
    "location_type": [({"urbanicity", "urban", "rural", "settlement"},)],
    "household_size": [({"household", "family", "hh"}, {"size", "members", "people", "persons"})],
    "children": [({"children", "kids", "child", "dependents", "dependants"},)],
    "signup_date": [(SIGNUP,)],
    "recency_days": [({"recency"},), ({"days", "since"}, {"last"})],
}
VETOED_BY_RATE = {"income", "age", "amount", "children", "household_size"}
NUMBER_ROLES = {"age", "birth_year", "income", "household_size", "children", "recency_days"}
DATE_ROLES = {"birth_date", "signup_date", "timestamp"}


# ------------------------------------------------------------------------------- profiles


@dataclass
class ColumnProfile:
    """What a sample of a column's values looks like."""

    name: str
    tokens: list[str]
    n: int
    missing_share: float
    distinct: int
    kind: str                      # empty / integer / float / date / text
    distinct_share: float          # distinct values / non-missing values
    negative_share: float = 0.0
    date_share: float = 0.0        # share of values that read as dates
    number_share: float = 0.0      # share of values that read as numbers
    example: str = ""
    row_number: bool = False       # consecutive integers from 0 or 1, in row order
    levels: frozenset[str] = frozenset()   # lower-case values, when there are few

    @property
    def numeric(self) -> bool:
        return self.kind in ("integer", "float")

    @property
    def binary(self) -> bool:
        return self.numeric and self.levels <= {"0", "1", "0.0", "1.0"} and self.distinct <= 2


def _number_text(text: pd.Series) -> pd.Series:
    cleaned = text.str.replace(r"^[£$€¥]\s*|(?<=\d),(?=\d{3}(\D|$))", "", regex=True)
    return pd.to_numeric(cleaned, errors="coerce")


_DATE_LIKE = r"^\s*(\d{1,4}[-/.]\d{1,2}[-/.]\d{1,4}|\d{1,2}[-/ ][A-Za-z]{3}[-/ ]\d{2,4})"


def profile_column(name: str, values: pd.Series) -> ColumnProfile:
    """Profile a column's sample: kind, missing share, distinct values, dates, row numbers."""
    n = len(values)
    if pd.api.types.is_datetime64_any_dtype(values):
        present = values.dropna()
        return ColumnProfile(name, tokens(name), n, 1 - len(present) / max(n, 1),
                             int(present.nunique()), "date",
                             present.nunique() / max(len(present), 1), date_share=1.0,
                             example=str(present.iloc[0]) if len(present) else "")
    text = values.astype("string").str.strip()
    text = text.where(text != "")
    present = text.dropna()
    missing = 1 - len(present) / max(n, 1)
    if len(present) == 0:
        return ColumnProfile(name, tokens(name), n, 1.0, 0, "empty", 0.0)
    distinct = int(present.nunique())
    example = str(present.iloc[0])
    levels = frozenset(present.str.lower().unique()) if distinct <= 30 else frozenset()
    nums = (values.astype("float64") if pd.api.types.is_numeric_dtype(values)
            and not pd.api.types.is_bool_dtype(values) else _number_text(present))
    nums = nums.dropna()
    prof = ColumnProfile(name, tokens(name), n, missing, distinct, "text",
                         distinct / len(present), example=example, levels=levels,
                         number_share=len(nums) / len(present))
    if len(nums) == len(present):
        arr = nums.to_numpy(dtype="float64")
        whole = bool(np.all(np.isfinite(arr)) and np.all(arr == np.round(arr)))
        prof.kind = "integer" if whole else "float"
        prof.negative_share = float((arr < 0).mean())
        if whole and missing == 0 and len(arr) > 2:
            steps = np.diff(arr)
            prof.row_number = bool(arr[0] in (0.0, 1.0) and np.all(steps == 1))
        if whole and np.all((arr >= 1900_01_01) & (arr <= 2100_12_31)):
            parsed = pd.to_datetime(pd.Series(arr.astype("int64")).astype(str), format="%Y%m%d",
                                    errors="coerce")
            prof.date_share = float(parsed.notna().mean())
        return prof
    like = present.iloc[:500]
    looks = like.str.match(_DATE_LIKE)
    if looks.mean() > 0.5:
        try:  # (utc: a column may mix offsets, "Z" and naive times)
            parsed = pd.to_datetime(like[looks], format="mixed", errors="coerce", utc=True)
        except (ValueError, TypeError, OverflowError):  # profiling never stops a run
            parsed = pd.Series(pd.NaT, index=like[looks].index)
        prof.date_share = float(parsed.notna().sum() / len(like))
        if prof.date_share >= 0.9:
            prof.kind = "date"
    return prof


def profile_table(frame: pd.DataFrame) -> dict[str, ColumnProfile]:
    """Profiles of every column of (the first rows of) a table."""
    sample = frame.iloc[:SAMPLE_ROWS]
    return {str(c): profile_column(str(c), sample[c]) for c in frame.columns}


# ------------------------------------------------------------------------------- decisions


@dataclass
class Decision:
    """One column's role (or what it is when it plays none) with confidence and evidence."""

    column: str
    role: str | None               # a role of the table, or None
    confidence: float
    evidence: str
    hint: str | None = None        # row_number / outcome / coded_category / informative / None
    source: str = "inferred"       # config / inferred


@dataclass
class Inference:
    """A table's roles and the decision for every column."""

    table: str                                     # "customers" or "transactions"
    roles: dict[str, str]
    decisions: dict[str, Decision]
    profiles: dict[str, ColumnProfile] = field(default_factory=dict)
    row_number_id: str | None = None   # the id is a row-number column (nothing better existed)
    implicit_row_ids: bool = False     # no id column at all: rows are numbered 1..n

    def hinted(self, hint: str) -> list[str]:
        return [c for c, d in self.decisions.items() if d.hint == hint and d.role is None]


@dataclass
class _Cand:
    role: str
    column: str
    score: float
    evidence: str
    exact: bool = False


def _content(role: str, p: ColumnProfile | None, table: str) -> tuple[float, str]:
    """How well a column's content fits a role: (factor in [0, 1], evidence)."""
    if p is None:
        return 1.0, "no sample"
    if p.kind == "empty":
        return 0.8, "no values in the sample"
    if role == "customer_id":
        if p.kind == "float":
            return 0.0, "fractional numbers"
        if p.kind == "date" or p.date_share > 0.9:
            return 0.0, "dates"
        if table == "customers":
            if p.distinct_share >= 0.99:
                return 1.0, f"{p.distinct_share:.0%} distinct"
            if p.distinct_share >= 0.9:
                return 0.6, f"only {p.distinct_share:.0%} distinct"
            return 0.0, f"values repeat ({p.distinct_share:.0%} distinct)"
        return (0.3, "every value distinct") if p.distinct_share == 1.0 and p.n > 50 else \
            (1.0, f"{p.distinct} distinct ids in the sample")
    if role == "order_id":
        return ((0.0, "fractional numbers") if p.kind == "float"
                else (1.0, f"{p.distinct} distinct in the sample"))
    if role in DATE_ROLES:
        if p.date_share >= 0.9:
            return 1.0, f"{p.date_share:.0%} parse as dates"
        return 0.0, "does not parse as dates"
    if role in NUMBER_ROLES or role in ("amount", "unit_price", "quantity"):
        if not p.numeric:
            if p.number_share >= 0.9:  # a few bad cells: the cleaning rules name them
                return 1.0, f"{p.number_share:.0%} numbers"
            return 0.0, f"not numbers (e.g. {p.example!r})"
        if role == "birth_year":
            return 1.0, "numbers"
        if p.date_share > 0.9:
            return 0.0, "numbers that read as dates"
        if role == "quantity" and p.kind == "float":
            return 0.6, "fractional numbers"
        if role == "age" and p.kind == "float":
            return 0.8, "fractional numbers"
        what = {"integer": "integers", "float": "decimal numbers"}[p.kind]
        neg = f", {p.negative_share:.0%} negative" if p.negative_share else ""
        return 1.0, f"{what}{neg}"
    if role == "education" and p.numeric and p.distinct > 8:
        return 0.0, "numbers (years of schooling?), not levels"
    if role in ("category", "channel", "gender", "marital_status", "education", "occupation",
                "location_type"):
        if p.kind == "float":
            return 0.0, "decimal numbers"
        if p.distinct > 200 or (p.distinct > 50 and p.distinct_share > 0.5):
            return 0.0, f"{p.distinct} distinct values (identifier-like)"
        return 1.0, f"{p.distinct} levels"
    if role == "discount":
        if p.numeric or p.levels and len(p.levels) <= 6:
            return 1.0, "a flag or an amount"
        return 0.0, f"{p.distinct} text values"
    if role == "is_return":
        if p.levels & RETURN_VALUES or p.binary or (p.levels and p.levels <= {
                "yes", "no", "y", "n", "true", "false", "t", "f", "0", "1"}):
            return 1.0, "values: " + ", ".join(sorted(p.levels)[:6])
        return 0.0, "no returned / cancelled values"
    return 1.0, ""


def _name_candidates(col: str, toks: list[str], norm: str, role_names: dict[str, list[str]],
                     table: str) -> list[tuple[str, float, str, bool]]:
    """(role, name score, evidence, exact) for every role a column's name points to."""
    out: list[tuple[str, float, str, bool]] = []
    tset = set(toks) - _STOP
    for role, names in role_names.items():
        if norm in names:
            out.append((role, EXACT - 0.001 * names.index(norm), f"name '{col}'", True))
    has = tset.__and__

    def add(role: str, score: float, why: str) -> None:
        out.append((role, score, why, False))

    ent, ids = has(ENTITY), has(ID_TOKENS)
    other = tset - ENTITY - ID_TOKENS
    if ent and not other:
        add("customer_id", 0.85 if ids else 0.75,
            f"name token '{sorted(ent)[0]}' -> customer id")
    dateish = has(DATE)
    if table == "transactions":
        if has(ORDER) and not dateish and not (tset & (MONEY | QTY | PRICE | RETURN | STATUS)):
            add("order_id", 0.8 if ids or len(tset) == 1 else 0.6,
                f"name token '{sorted(has(ORDER))[0]}' -> order id")
        if dateish:
            add("timestamp", 0.8, f"name token '{sorted(dateish)[0]}' -> order date")
        money = has(MONEY) - ({"value"} if has(PRICE) else set())
        if money and not has(PRICE - {"price"}) and not has(RATE_VETO - {"rate"}) and not has(QTY):
            add("amount", 0.8, f"name token '{sorted(money)[0]}' -> amount")
        if has(PRICE) and "total" not in tset:
            add("unit_price", 0.8, f"name token '{sorted(has(PRICE))[0]}' -> unit price")
        q = has(QTY)
        if q or {"number", "of"} <= set(toks) or (tset & {"num", "n"} and len(tset) == 2):
            add("quantity", 0.75, "name " + (f"token '{sorted(q)[0]}'" if q else "'number of'")
                + " -> quantity")
        c = has(CATEGORY)
        if c and not ids - {"code"}:
            add("category", 0.75, f"name token '{sorted(c)[0]}' -> product category")
        ch = has(CHANNEL)
        if ch and not ids:
            add("channel", 0.75, f"name token '{sorted(ch)[0]}' -> channel")
        pr = has(PROMO)
        if pr:
            add("discount", 0.8, f"name token '{sorted(pr)[0]}' -> discount / promotion")
        rt = has(RETURN)
        if rt:
            add("is_return", 0.8, f"name token '{sorted(rt)[0]}' -> returns flag")
        elif has(STATUS):
            add("is_return", 0.6, "name 'status' -> returns when its values say so")
    else:
        for role, rules in CUSTOMER_TOKEN_RULES.items():
            for rule in rules:
                if all(tset & s for s in rule):
                    hit = sorted(tset & rule[0])[0]
                    add(role, 0.75, f"name token '{hit}' -> {role.replace('_', ' ')}")
                    break
    if "id" in tset and table == "customers" and not ent and len(tset) <= 2 and not out:
        add("customer_id", 0.6, f"name '{col}' looks like an id")
    return out


def infer_roles(columns: list[str], role_names: dict[str, list[str]], cfg: TableConfig,
                file: str, table: str, sample: pd.DataFrame | None = None,
                fallbacks: tuple[tuple[str, str], ...] = (),
                config_roles: dict[str, str] | None = None,
                required: tuple[str, ...] = ()) -> Inference:
    """Decide every column's role from its name tokens and (when given) a sample of its rows.

    ``role_names``: role -> exact normalised names (strongest evidence, in priority order);
    ``config_roles``: the roles the config sets (always kept); ``required``: roles whose tie
    between two close candidates stops with an InputError naming the config line to add.
    """
    profiles = profile_table(sample) if sample is not None and len(sample) else {}
    roles = dict(config_roles or {})
    decisions: dict[str, Decision] = {}
    for role, col in roles.items():
        decisions[col] = Decision(col, role, 1.0, "set in the config", source="config")
    taken = set(roles.values()) | set(cfg.ignore) | set(cfg.categorical) | set(cfg.numeric)
    cands: list[_Cand] = []
    for col in columns:
        if col in taken:
            continue
        p = profiles.get(col)
        toks, norm = tokens(col), _norm(col)
        named = _name_candidates(col, toks, norm, role_names, table)
        if not any(r for r, *_ in named):
            for role, needle in fallbacks:
                if role in role_names and needle in norm:
                    named.append((role, 0.6, f"'{needle}' in the name", False))
        if set(toks) & RATE_VETO:  # a rate or a share of something is not the thing itself
            named = [o for o in named if o[0] not in VETOED_BY_RATE or o[3]]
        for role, score, why, exact in named:
            if role not in role_names:
                continue
            fit, cwhy = _content(role, p, table)
            # an exact name keeps its rank unless the content contradicts it (Yes/No
            # "dependents" are not a count of children)
            s = score * fit if not exact else (0.0 if fit == 0 and _clearly_other(role, p)
                                               else score)
            cands.append(_Cand(role, col, round(s, 3), why + (f"; {cwhy}" if cwhy else ""),
                               exact))
    cands.sort(key=lambda c: (-c.score, columns.index(c.column)))
    for c in cands:
        if c.score < MIN_SCORE or c.role in roles or c.column in roles.values():
            continue
        roles[c.role] = c.column
        decisions[c.column] = Decision(c.column, c.role, min(c.score, 1.0), c.evidence)
    for role in required:
        _check_tie(role, roles, cands, file, table)
    inf = Inference(table, roles, decisions, profiles)
    _hints(inf, columns, cfg, cands)
    return inf


def _clearly_other(role: str, p: ColumnProfile | None) -> bool:
    """Whether content contradicts an exact name beyond a few bad cells (those the cleaning
    rules report): a column of a few text levels (Yes/No) for a number or a date, numbers
    for education levels."""
    if p is None:
        return False
    if role == "education":
        return p.numeric
    present = round(p.n * (1 - p.missing_share))
    return (p.kind == "text" and p.number_share == 0 and p.date_share == 0
            and 2 <= p.distinct <= 30 and present >= 10)


def _check_tie(role: str, roles: dict[str, str], cands: list[_Cand], file: str,
               table: str) -> None:
    col = roles.get(role)
    if col is None:
        return
    mine = [c for c in cands if c.role == role and c.column == col]
    if not mine or mine[0].exact:
        return
    best = mine[0]
    rivals = [c for c in cands if c.role == role and c.column != col
              and c.column not in roles.values() and c.score >= MIN_SCORE and not c.exact]
    if rivals and best.score - rivals[0].score < MARGIN:
        other = rivals[0]
        section = f"[{table}] id" if role == "customer_id" and table == "customers" \
            else f"[{table}.columns] {role}"
        raise InputError(
            f"cannot tell which column is the {role.replace('_', ' ')}: '{best.column}' "
            f"(confidence {best.score:.2f}: {best.evidence}) or '{other.column}' "
            f"(confidence {other.score:.2f}: {other.evidence}); settle it in the config with "
            f"{section} = \"{best.column}\" (run `custseg inspect` to write one)",
            file=file, column=best.column)


def _hints(inf: Inference, columns: list[str], cfg: TableConfig, cands: list[_Cand]) -> None:
    """Decisions for the columns that play no role: row numbers, outcomes, coded categories,
    informative-looking columns a transactions log cannot use."""
    listed = set(cfg.ignore) | set(cfg.categorical) | set(cfg.numeric) | set(cfg.outcomes or ())
    for col in columns:
        if col in inf.decisions:
            continue
        if col in listed:
            what = ("ignored" if col in cfg.ignore else
                    "a category" if col in cfg.categorical else
                    "a number" if col in cfg.numeric else "an outcome")
            inf.decisions[col] = Decision(col, None, 1.0, f"{what} in the config",
                                          source="config")
            continue
        p = inf.profiles.get(col)
        tset = set(tokens(col))
        lost = [c for c in cands if c.column == col and c.score >= MIN_SCORE]
        if p is not None and p.kind == "integer" and _row_name(col) and p.distinct_share == 1.0:
            inf.decisions[col] = Decision(col, None, 0.9 if p.row_number else 0.7,
                                          f"name '{col}' with row numbers (consecutive "
                                          "integers in row order)" if p.row_number
                                          else f"row labels named '{col}'", hint="row_number")
        elif OUTCOME_NAMES.match(_norm(col)) and inf.table == "customers":
            inf.decisions[col] = Decision(col, None, 0.7, f"name '{col}' -> an outcome "
                                          "(profiled per segment when yes/no-like or numeric)",
                                          hint="outcome")
        elif (inf.table == "customers" and p is not None and p.kind == "integer"
              and tset & CODE_CATEGORY and tset <= CODE_CATEGORY | ID_TOKENS
              and p.distinct <= 20):
            inf.decisions[col] = Decision(col, None, 0.7, f"name token "
                                          f"'{sorted(tset & CODE_CATEGORY)[0]}' with "
                                          f"{p.distinct} integer codes -> a category",
                                          hint="coded_category")
        elif inf.table == "transactions" and (lost or _informative(p, tset)):
            why = lost[0].evidence if lost else f"{p.distinct} levels" if p else ""
            inf.decisions[col] = Decision(col, None, lost[0].score if lost else 0.5,
                                          f"looks informative ({why}) but plays no role",
                                          hint="informative")
        else:
            inf.decisions[col] = Decision(col, None, 0.5, _plain(p))
    inf.decisions = {c: inf.decisions[c] for c in columns if c in inf.decisions}


def _row_name(col: str) -> bool:
    """Whether a name is one that row numbers get (``rownames``, ``Unnamed: 0``, ``...1``,
    ``index``, an empty header)."""
    norm = _norm(col)
    return (norm in ROW_NUMBER_NAMES or re.fullmatch(r"unnamed\d*|v1|x\d?|sno|slno|serial(no)?"
                                                     r"|rowno|rownumber|level\d", norm)
            is not None or re.fullmatch(r"\.{3}\d+|#|\s*", str(col)) is not None)


def name_hint(col: str) -> str | None:
    """The hint a column *may* get from its name alone (row numbers, an outcome, integer codes
    of a category), before its content is seen: a scorer that reads names only must leave
    such columns to the full cleaning path."""
    tset = set(tokens(col))
    if _row_name(col):
        return "row_number"
    if OUTCOME_NAMES.match(_norm(col)):
        return "outcome"
    if tset & CODE_CATEGORY and tset <= CODE_CATEGORY | ID_TOKENS:
        return "coded_category"
    return None


def _informative(p: ColumnProfile | None, tset: set[str]) -> bool:
    if p is None:
        return bool(tset & (CATEGORY | PROMO | CHANNEL))
    if tset & (CATEGORY | PROMO | CHANNEL) and p.distinct <= 200:
        return True
    return p.kind == "text" and 2 <= p.distinct <= 50


def _plain(p: ColumnProfile | None) -> str:
    if p is None:
        return "no role by its name"
    if p.kind == "text" and p.distinct > 50 and p.distinct_share > 0.05:
        return f"free text or identifier ({p.distinct} distinct values in the sample)"
    return {"integer": "integers", "float": "numbers", "date": "dates", "empty": "empty",
            "text": f"text with {p.distinct} levels"}[p.kind]


def choose_customer_id(inf: Inference, cfg: TableConfig) -> None:
    """A customers table without an id column: a row-number column becomes the id (recorded);
    without one, the rows are numbered 1..n (recorded)."""
    if "customer_id" in inf.roles or cfg.row_ids:
        return
    rows = inf.hinted("row_number")
    if rows:
        col = rows[0]
        inf.roles["customer_id"] = col
        inf.row_number_id = col
        d = inf.decisions[col]
        inf.decisions[col] = Decision(col, "customer_id", 0.5, d.evidence + "; used as the id "
                                      "because no better id column exists", hint="row_number")
    else:
        inf.implicit_row_ids = True


def settle_line(table: str, role: str | None, column: str) -> str:
    """The config line that sets ``column`` to ``role``."""
    if role == "customer_id" and table == "customers":
        return f'[customers] id = "{column}"'
    return f'[{table}.columns] {role} = "{column}"'
