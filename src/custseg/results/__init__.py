"""Result types: what the stages compute and everything downstream reads.

These modules sit at the bottom of the import graph: they import no stage (pipeline, model,
profile, drift, evolution …) and no renderer, only each other, :mod:`custseg.labels`,
:mod:`custseg._version`, :mod:`custseg.errors`, numpy and pandas (stage types appear in
annotations only). The pipeline, drift and evolution stages produce them; the report, the CLI, the
run store and the API read them (``tests/test_architecture.py`` enforces the direction).

* :mod:`~custseg.results.segmentation`: :class:`SegmentationResult` and its k-selection evidence
  (:class:`KSelection`, :class:`KScore`) and silhouette profile;
* :mod:`~custseg.results.profiles`: per-segment profiles and the 2-D segment map;
* :mod:`~custseg.results.drift`: :class:`DriftReport` and its per-feature and per-segment parts;
* :mod:`~custseg.results.evolution`: :class:`EvolutionReport`, migrations, retraining advice.
"""
