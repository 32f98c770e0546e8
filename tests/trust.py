"""What a marketer must be able to rely on in any run: shared by the real-data and the
synthetic-persona tests."""

from __future__ import annotations

from pathlib import Path

GENERIC = ("{", "}", "their favourite", "their preferred", "n/a", "nan", "None", "[", "]")


def check_trust(result, out: Path | None = None) -> None:
    """What a marketer must be able to rely on, on any table: every archetype name's absolute
    checks hold on the segment's own customers (re-evaluated here, and the key facts recomputed
    by hand), names are unique and short, no action or insight carries an unfilled or generic
    slot, every action is sized, and outcome columns are profiled but never clustered on."""
    from custseg.profile import SegmentFacts, load_rules

    rules = {r.name: r for r in load_rules()}
    facts = SegmentFacts(result.features, result.labels)
    frame, labels = result.features.frame, result.labels
    segs = result.profiles.segments
    assert len({s.name for s in segs}) == len(segs)
    for s in segs:
        members = frame[labels == s.segment_id]
        assert len(s.name) <= 40, s.name
        if s.name_rule:
            rule = rules[s.name_rule]
            assert rule.checks, s.name_rule
            for c in rule.checks:
                assert c.evaluate(facts, s.segment_id)["holds"], (s.name, c.text)
        # the same facts by hand, for the names a glance at the table would refute
        if s.name == "Champions":
            assert members["recency_days"].median() <= frame["recency_days"].median() / 2
            assert (members["frequency"] <= 1).mean() <= 0.1
        if s.name == "At-Risk / Lapsed":
            assert members["recency_days"].median() >= 1.5 * frame["recency_days"].median()
        if s.name == "Seniors":
            assert (members["age"] >= 60).mean() >= 0.5
        if s.name == "Occasional Buyers":
            assert (members["recency_days"] > 365).mean() <= 0.25
        texts = [*s.insights, *(r["action"] for r in s.recommendations), *s.evidence, s.name]
        for t in texts:
            assert not any(g in t for g in GENERIC), (s.name, t)
        for r in s.recommendations:
            assert r["customers"] == s.size and r["priority"] == s.opportunity["rank"]
            assert (r["value_at_stake"] is not None) == (result.features.value_column is not None)
    assert sorted(s.opportunity["rank"] for s in segs) == list(range(1, len(segs) + 1))
    f = result.features
    for c in f.outcomes:
        assert c not in f.model_columns and c in segs[0].means
        assert all(c in seg.means for seg in segs)
    if out is not None:  # the report opens on the executive summary, the segments next
        page = (out / "report.html").read_text(encoding="utf-8")
        at = [page.index(f'<section id="{sid}">')
              for sid in ("segments", "cards", "map", "k", "overview")]
        assert at == sorted(at), at
        assert page.index('id="structure"') < at[0]  # the structure verdict above it all
