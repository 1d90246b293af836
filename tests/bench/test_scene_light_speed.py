"""bench/scene_light_speed.py: one table row per shot length, both estimates timed."""

from __future__ import annotations

import re

from bench.scene_light_speed import main


def test_the_table_has_a_row_of_two_times_per_shot_length(capsys):
    main(["--frames", "24,40", "--repeats", "1", "--threads", "1"])
    rows = [line for line in capsys.readouterr().out.splitlines() if re.match(r"\| \d+ \|", line)]
    assert [row.split("|")[1].strip() for row in rows] == ["24", "40"]
    for row in rows:
        times = [float(x) for x in re.findall(r"([\d.]+) ms", row)]
        assert len(times) == 2 and all(t >= 0 for t in times)
