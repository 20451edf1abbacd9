"""What people read of analytics, shared by the console's Analytics area and the HTML report.

- `charts.py`: pure functions, a metric's result (`seamline.analytics.service`) -> a `Section`:
  its key figures, ECharts option dicts and the tables behind them (CSV rows too), every word in
  the reader's language.
- `report.py`: `render(dashboard, language=...)`, one self-contained HTML file (ECharts inlined,
  no network at view time), for `seamline analytics report`.

Analytics sits below the web layer and never imports it; this package reads its results.
"""
