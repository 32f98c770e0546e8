"""Why a customer is in its segment: the features it shares the segment's departure on."""

from __future__ import annotations

import numpy as np
import pandas as pd

from custseg.explain import why_placed


def test_shared_departures_name_the_features() -> None:
    # two segments: high and low on "orders"; "age" is noise; column "c=x" is a one-hot level
    X = np.array([[2.5, 0.1, 1.0],     # a high-orders customer: orders places it
                  [1.0, 1.5, 1.0],     # high orders and older than the base (segment too)
                  [-0.1, 0.0, 0.0],    # in the low segment but barely below the base
                  [-2.0, -0.6, 0.0]])  # low orders and young, as its segment
    centroids = np.array([[2.0, 0.8, 1.0], [-2.0, -0.5, 0.0]])
    rows = np.array([0, 0, 1, 1])
    values = {"frequency": np.array([40.0, 12.0, 3.0, 1.0]), "age": np.array([41, 60, 38, 22.0])}
    medians = [{"frequency": 30.0, "age": 50.0}, {"frequency": 1.0, "age": 30.0}]
    base = {"frequency": 4.0, "age": 40.0}
    texts = why_placed(X, rows, centroids, ["frequency", "age", "c=x"], ["frequency", "age"],
                       values, medians, base)
    assert texts[0] == "Orders 40.0 (segment 30.0, all 4.00)"
    assert texts[1] == "Orders 12.0 (segment 30.0, all 4.00); Age 60.0 (segment 50.0, all 40.0)"
    assert texts[2] == ""   # nothing it shares with its segment by a quarter SD
    assert texts[3].startswith("Orders 1.00 (segment 1.00, all 4.00); Age 22.0")


def test_segments_csv_and_scoring_say_why(tmp_path, synth_files) -> None:
    from custseg.outputs import write_outputs
    from custseg.pipeline import run_segmentation
    from custseg.score import score

    result = run_segmentation(synth_files["customers"], synth_files["transactions"])
    write_outputs(result, tmp_path)
    seg = pd.read_csv(tmp_path / "segments.csv", dtype={"customer_id": str}, keep_default_na=False)
    assert (seg["why"] != "").mean() > 0.8
    # a Budget-Conscious customer is placed there by its discount use, a lapsed one by recency
    for name, word in (("Budget-Conscious", "Discount use"), ("At-Risk / Lapsed", "Recency")):
        rows = seg[seg["segment_name"] == name]
        assert rows["why"].str.contains(word, regex=False).mean() > 0.5, name
    scored = score(tmp_path / "model", synth_files["customers"],
                   synth_files["transactions"]).assignments
    m = seg.merge(scored, on="customer_id", suffixes=("", "_scored"))
    assert (m["why"] == m["why_scored"].fillna("")).all()
