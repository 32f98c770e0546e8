"""Write a segmentation run's contract outputs: the files, the model and the rendered report.

:func:`custseg.pipeline.run_segmentation` computes a
:class:`~custseg.results.segmentation.SegmentationResult`; :func:`write_outputs` writes it (this
is where results meet the renderer, so that no stage imports :mod:`custseg.report`).
:func:`selection_charts` is the callback a caller hands the pipeline to draw the k-selection
chart while a big run's final K-Means runs.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from custseg.io.writers import OutputDir, write_csv, write_json, write_text
from custseg.model import save_model
from custseg.results.segmentation import KSelection, SegmentationResult

Progress = Callable[[str, int, int], None]

#: the files and folder :func:`write_outputs` writes into ``out``
OUTPUT_NAMES = ["segments.csv", "excluded.csv", "profiles.json", "summary.json", "report.html",
                "summary.md", "model"]


def selection_charts(selection: KSelection) -> dict[str, bytes]:
    """The report's charts that need only the k selection, by name (PNG bytes): what the
    report would draw itself, drawn early (pass it as the pipeline's ``selection_charts``)."""
    from custseg.report.render import k_selection_png

    return {"k_selection": k_selection_png(selection)}


def write_outputs(result: SegmentationResult, out: str | Path,
                  progress: Progress | None = None) -> dict[str, Path]:
    """Write segments.csv, excluded.csv, profiles.json, summary.json, report.html and model/.

    Everything is staged and moved into ``out`` only when complete.
    """
    from custseg.report.render import render_report, render_summary_md

    t0 = time.perf_counter()
    done = iter(range(8))

    def tick() -> None:
        if progress:
            progress("write", next(done), 7)

    tick()
    with OutputDir(Path(out)) as od, ThreadPoolExecutor(max_workers=1) as pool:
        p = od.path
        # the big CSV is assembled (numpy) and serialised by pyarrow, which release the GIL:
        # it is written on a second thread while this one draws the report (a million rows:
        # ~2 s saved)
        segments = pool.submit(lambda: write_csv(p / "segments.csv", result.assignments()))
        write_csv(p / "excluded.csv", result.ledger.excluded_frame())
        tick()
        write_json(p / "profiles.json", result.profiles.to_dict())
        save_model(p / "model", result.model, result.preprocessor, _model_extra(result))
        tick()
        write_text(p / "report.html", render_report(result))
        tick()
        write_text(p / "summary.md", render_summary_md(result))
        tick()
        segments.result()
        tick()
        result.timings["write"] = time.perf_counter() - t0
        write_json(p / "summary.json", result.summary())
        tick()
    tick()
    return {n: Path(out) / n for n in OUTPUT_NAMES}


def _model_extra(result: SegmentationResult) -> dict:
    """What the saved model's manifest records beyond the model itself."""
    f = result.features
    return {
        "features": {"numeric": f.numeric, "binary": f.binary, "categorical": f.categorical,
                     "value_column": f.value_column, "groups": f.groups,
                     "descriptive": f.descriptive},
        "config": result.config.model_dump(mode="json"),
        "as_of": result.as_of.isoformat() if result.as_of else None,
        "cleaning_fences": result.fences,
        "segments": [{"segment_id": s.segment_id, "name": s.name, "description": s.description,
                      "evidence": s.evidence, "recommendations": s.recommendations,
                      "size": s.size, "share": s.share}
                     for s in result.profiles.segments],
        "training": {"n_customers": int(len(result.labels)), "k_selection_reason":
                     result.selection.reason, "inputs": result.inputs},
        "value_model": result.value_model if (result.value_model or {}).get("bgnbd") else None,
    }
