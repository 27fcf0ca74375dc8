"""Transparency and team metrics: what the desk did, for its leads and, if the operator wishes, the public.

- figures.py: the definition of every figure, computed from the desk's tables;
- rollup.py: those figures per day, kept current by a 5-minute schedule (why, and how it stays
  correct through merges and reversals, is its docstring);
- queries.py: reads of the rollup for the pages; charts.py: SVG bar charts without JavaScript;
- dashboard.py: the leads' dashboard (/dashboard/); public.py and urls.py: the opt-in public page
  and JSON feed (/transparency/); report.py: the Art. 15/24 report
  (`manage.py transparency_report`).
"""
