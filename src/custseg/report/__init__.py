"""Rendering of result objects into HTML and Markdown (no computation here).

:func:`custseg.report.render.render_report` gives the self-contained HTML report of a
segmentation run and :func:`custseg.report.render.render_summary_md` its short Markdown summary;
:mod:`custseg.report.plots` draws the charts (matplotlib + seaborn, PNG bytes).
"""
