"""The demo's HTML page: self-contained, escaped, one number format a column."""

import base64

import pandas as pd

from disagree.demo.html import Section, write_report

PNG = base64.b64decode(  # a 1 x 1 white PNG
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGP4//8/AAX+Av4N70a4AAAAAElFTkSuQmCC")


def test_page_embeds_figures_escapes_text_and_rounds_each_number_once(tmp_path):
    (tmp_path / "f.png").write_bytes(PNG)
    frame = pd.DataFrame({"comparison": ["a", "b"], "estimate": [3.6506447, -10.1874],
                          "share": [0.12345, 0.5]})
    page = write_report(tmp_path / "report.html", "T <1>", "lead & more", [Section(
        "S", ["x < y", "NOTE: careful"], [(tmp_path / "f.png", "cap")],
        [("t.csv", frame, "numbers")])])
    text = page.read_text(encoding="utf-8")
    assert "<h1>T &lt;1&gt;</h1>" in text and "<p>x &lt; y</p>" in text
    assert "<p class='note'>careful</p>" in text
    assert f"src='data:image/png;base64,{base64.b64encode(PNG).decode()}'" in text
    assert "src='http" not in text and "<a href='t.csv'>t.csv</a>" in text
    # a column reaching 10 gets 1 decimal (3.6506 -> 3.7, as the report's sentences say),
    # others 3 decimals
    assert "<td>3.7</td>" in text and "<td>-10.2</td>" in text
    assert "<td>0.123</td>" in text and "<td>0.500</td>" in text
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.png", "report.html"]  # no temp
