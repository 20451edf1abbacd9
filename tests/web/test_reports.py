"""The shared pieces of analytics for people (web/reports/charts.py) and the self-contained HTML
report of `seamline analytics report` (web/reports/report.py)."""

from __future__ import annotations

import json
import re

from typer.testing import CliRunner

from seamline.analytics import service, tasks
from seamline.cli import app as cli
from seamline.web import i18n
from seamline.web.reports import charts, report
from tests.analytics import world


def _dashboard(database, settings, tmp_path) -> dict:  # noqa: ANN001
    from datetime import date

    world.build(database)
    settings.analytics_mirror_path = str(tmp_path / "mirror.duckdb")
    tasks.sync(database, settings)
    return service.dashboard(settings, database, service.filters(start=date(2026, 11, 1), end=date(2026, 11, 30)))


def test_every_string_of_the_charts_has_a_russian_translation():
    catalog = i18n.translations("ru")._catalog  # noqa: SLF001
    missing = sorted(m for m in set(charts.msgids()) if m not in catalog)
    assert not missing, "add these to web/locale/ru/LC_MESSAGES/analytics.po:\n" + "\n".join(missing)


def test_the_report_is_self_contained_in_each_language(database, settings, tmp_path):
    data = _dashboard(database, settings, tmp_path)
    for language, words in (("ru", ("Кросс-канальная конверсия", "Период: 1 нояб. 2026 г. – 30 нояб. 2026 г.", "Сайт")),
                            ("en", ("Cross-channel conversion", "Period: Nov 1, 2026 – Nov 30, 2026", "Website"))):
        html = report.render(data, language=language).replace("\u202f", " ").replace("\xa0", " ")
        for word in words:
            assert word in html, (language, word)
        # nothing is fetched when it is opened: no external script, style, image, font or frame
        assert not re.search(r'(?:src|href)\s*=\s*["\']?(?:https?:)?//', html, re.I)
        assert not re.search(r"url\(\s*['\"]?(?:https?:)?//|@import", html, re.I)
        assert "echarts.init" in html and "Licensed to the Apache Software Foundation" in html  # inlined, licence kept
        options = [json.loads(m.replace("&#39;", "'")) for m in re.findall(r"data-chart='([^']*)'", html)]
        assert any((o.get("series") or o["baseOption"]["series"])[0]["type"] == "sankey" for o in options)
        assert len(options) >= 7
        for metric in charts.METRICS:
            assert f'<section id="{metric}">' in html


def test_cli_writes_the_report(database, tmp_path, monkeypatch):
    world.build(database)
    monkeypatch.setenv("SEAMLINE_DATABASE_URL", database.url)
    monkeypatch.setenv("SEAMLINE_ANALYTICS_MIRROR_PATH", str(tmp_path / "cli.duckdb"))
    from seamline.core.config import get_settings

    get_settings.cache_clear()
    out = tmp_path / "report.html"
    try:
        result = CliRunner().invoke(cli, ["analytics", "report", "--from", "2026-11-01", "--to", "2026-11-30",
                                          "--language", "en", "-o", str(out)])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    assert json.loads(result.output.strip().splitlines()[-1])["written"] == str(out)
    html = out.read_text(encoding="utf-8")
    assert "Cross-channel conversion" in html and "Purchases started" in html


def test_chart_options_are_plain_json_and_tables_keep_numbers():
    words = charts.Words("en")
    data = {"started": 6, "completed": 4, "rate": 66.67, "cross_channel": 2, "cross_channel_share": 50.0,
            "by_channel": [{"started_channel": "web", "started": 2, "completed": 1, "rate": 50.0}],
            "matrix": [{"started_channel": "web", "placed_channel": "app", "handed_over": "store", "purchases": 1,
                        "revenue": 1000}], "click_and_collect": {}}
    main, pickup = charts.sections("conversion", data, words)
    json.dumps(main.charts[0].option)
    assert main.table("by_channel").rows[0].values == {"channel": "Website", "started": 2, "completed": 1, "rate": 50.0}
    assert main.table("matrix").rows[0].drill["purchases"] == {
        "metric": "conversion", "started_channel": "web", "placed_channel": "app", "completed": "true", "handed_over": "store"}
    assert charts.csv_bytes(main.table("matrix"), words).decode("utf-8-sig").splitlines()[1] == \
        "Website,Mobile app,Store,1,10"
    assert pickup.empty


def test_a_csv_cell_an_attacker_wrote_is_never_a_formula():
    """A campaign source comes from any visitor's tracker (the public write key): in a CSV a
    marketer opens in Excel, it stays text."""
    words = charts.Words("en")
    table = charts.Table("paths", "Paths", [charts.Column("source", "Source", "text"), charts.Column("n", "Purchases")],
                         [charts.Row({"source": '=HYPERLINK("http://evil.example","x")', "n": 1}),
                          charts.Row({"source": "@SUM(1)", "n": 2}), charts.Row({"source": "google", "n": 3})])
    lines = charts.csv_bytes(table, words).decode("utf-8-sig").splitlines()
    assert lines[1].startswith('"\'=HYPERLINK(') and lines[2] == "'@SUM(1),2" and lines[3] == "google,3"
