"""bench/profile_pipeline.py's case syntax and its table (parents above their parts, the time the
marks leave out shown, shares of the whole run)."""

from __future__ import annotations

from bench.profile_pipeline import markdown, parse_case


def test_cases_are_frames_at_a_long_side_or_a_width_x_height():
    assert parse_case("32@320") == (32, 320)
    assert parse_case(" 81@832x480") == (81, (480, 832))


def test_the_table_lists_each_stage_above_its_phases_with_what_they_leave_out():
    case = {"frames": 10, "width": 320, "height": 180, "threads": 2, "segments": 1,
            "optimisation_steps": 300, "loadavg_before": [0.1], "loadavg_after": [0.2],
            "seconds": {"start (import)": 1.0, "pipeline": 8.0, "encode": 1.0},
            # as recorded: a phase ends after its parts
            "phases": {"atlas fit/flow": 1.0, "atlas fit/optimisation": 4.0, "atlas fit": 6.0,
                       "render": 0.5, "filter": 1.0},
            "total_seconds": 10.0, "seconds_per_frame": 1.0}
    rows = [line.split("|")[1].replace("&nbsp;", " ") for line in
            markdown(case).splitlines() if line.startswith("| ") and "---" not in line][1:]
    assert [r.strip() for r in rows] == [
        "start (import)", "pipeline", "atlas fit", "flow", "optimisation", "(rest)", "render",
        "filter", "(rest of the pipeline)", "encode"]
    assert rows[3].startswith(" " * 8) and rows[2].startswith(" " * 4)  # parts indented
    table = markdown(case)
    assert "| 1.00 | 10% | 100 |" in table  # 1 s of a 10 s run of 10 frames
    rest = next(line for line in table.splitlines() if "(rest)" in line)
    assert "| 1.00 |" in rest  # 6 s fit - 1 s flow - 4 s optimisation
    assert "0.10 before" in table and "300 optimisation steps" in table
