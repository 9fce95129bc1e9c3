"""The statistics chart is plain SVG built on the server."""

from __future__ import annotations

from fer_site.charts import line_chart_svg


def test_it_draws_one_line_per_series_with_a_legend():
    svg = line_chart_svg(
        labels=["10:00", "11:00", "12:00"], series={"happy": [1, 5, 2], "sad": [0, 0, 0]}, title="Moods"
    )

    assert svg.startswith("<svg") and svg.endswith("</svg>")
    assert svg.count("<polyline") == 1
    assert "happy (8)" in svg and "sad (0)" in svg


def test_it_escapes_labels_and_survives_empty_data():
    svg = line_chart_svg(labels=["<b>"], series={"<script>": [0]}, title='a"b')

    assert "<script>" not in svg and "&lt;b&gt;" in svg
    assert line_chart_svg(labels=[], series={}).endswith("</svg>")
