"""`python -m deflicker_impl batch`: many clips into one folder, resumable, the same results on
local workers and on a Ray cluster, every mistake refused before the work with one line."""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
from synthetic_clips import global_gain_flicker, panning_clip

from deflicker_impl import batch
from deflicker_impl.atlas import AtlasConfig
from deflicker_impl.cli import main as cli_main
from deflicker_impl.evaluation.metrics import flicker_index
from deflicker_impl.output_safety import OutputTransaction, output_target
from deflicker_impl.pipeline import PipelineConfig
from deflicker_impl.preflight import GIB, estimate_peak_bytes
from deflicker_impl.video_io import probe_clip, read_clip, write_clip

ROOT = Path(__file__).resolve().parent.parent
FAST = ("--iterations", "40", "--quiet")  # tiny clips, a short fit: seconds per clip


def run_batch_cli(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "deflicker_impl", "batch", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout, check=False)


def flickering(frames: int = 10, h: int = 48, w: int = 64, seed: int = 0):
    return global_gain_flicker(panning_clip(frames=frames, h=h, w=w, speed=1.0 + 0.5 * seed,
                                            seed=seed, detail=5), 0.3, seed=seed + 1)


def summary_rows(out: Path) -> dict[str, dict]:
    with open(out / "summary.csv", newline="") as f:
        return {row["clip"]: row for row in csv.DictReader(f)}


def manifest_statuses(out: Path) -> dict[str, str]:
    clips = json.loads((out / "manifest.json").read_text())["clips"]
    return {name: entry["status"] for name, entry in clips.items()}


def hidden_leftovers(out: Path) -> list[Path]:
    return [p for p in out.rglob(".*") if p.name != ".batch.lock"]


def output_mtimes(out: Path, names) -> dict[str, int]:
    return {name: (out / name).stat().st_mtime_ns for name in names}


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    """Two mp4 clips, a folder of PNG frames and a corrupt mp4; inputs named by a list file
    (with a comment) and a glob."""
    folder = tmp_path_factory.mktemp("batch_in")
    write_clip(folder / "a.mp4", flickering(seed=0), 12)
    write_clip(folder / "b.mp4", flickering(frames=8, h=40, w=56, seed=1), 15)
    write_clip(folder / "c_frames", flickering(seed=2))
    (folder / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"not a video" * 50)
    (folder / "list.txt").write_text("# the batch's clips\na.mp4\n\nc_frames\n")
    return folder


@pytest.fixture(scope="module")
def first_run(clips, tmp_path_factory):
    out = tmp_path_factory.mktemp("batch_out") / "out"
    res = run_batch_cli(str(clips / "list.txt"), str(clips / "b*.mp4"), "--out", str(out), *FAST)
    return out, res


def test_batch_deflickers_every_clip_and_reports_the_corrupt_one(clips, first_run):
    out, res = first_run

    assert res.returncode == 1, res.stderr  # one clip failed
    assert json.loads(res.stdout.strip().splitlines()[-1]) == {
        "clips": 4, "done": 3, "skipped": 0, "failed": 1,
        "summary": str(out / "summary.csv"), "manifest": str(out / "manifest.json")}
    for name in ("a.mp4", "b.mp4", "c_frames"):
        src, dst = read_clip(clips / name), read_clip(out / name)
        assert dst.frames.shape == src.frames.shape, name  # same count and size
        if name != "c_frames":
            assert dst.fps == src.fps, name
        assert flicker_index(dst.frames) < 0.3 * flicker_index(src.frames), name
    assert len(list((out / "c_frames").glob("*.png"))) == 10
    assert not (out / "broken.mp4").exists()
    assert hidden_leftovers(out) == []


def test_each_clip_has_a_report_with_size_stages_and_metrics(clips, first_run):
    out, _ = first_run
    report = json.loads((out / "reports" / "b.mp4.json").read_text())

    assert report["status"] == "done"
    assert (report["frames"], report["width"], report["height"], report["fps"]) == (8, 56, 40, 15)
    assert report["shots"] == 1 and report["shot_starts"] == [0]
    assert set(report["seconds_per_stage"]) == {"atlas", "filter", "refine"}
    before = flicker_index(read_clip(clips / "b.mp4").frames)
    assert report["flicker_index"]["before"] == pytest.approx(before, rel=1e-6)
    assert report["flicker_index"]["after"] < 0.3 * before
    assert report["warping_error"]["after"] < report["warping_error"]["before"]
    broken = json.loads((out / "reports" / "broken.mp4.json").read_text())
    assert broken["status"] == "failed" and "broken.mp4" in broken["error"]
    assert "corrupt" in broken["error"]


def test_summary_and_manifest_list_every_clip(first_run):
    out, _ = first_run
    rows = summary_rows(out)

    assert set(rows) == {"a.mp4", "b.mp4", "c_frames", "broken.mp4"}
    assert {n: r["status"] for n, r in rows.items()} == {
        "a.mp4": "done", "b.mp4": "done", "c_frames": "done", "broken.mp4": "failed"}
    assert "corrupt" in rows["broken.mp4"]["error"] and rows["broken.mp4"]["output"] == ""
    assert int(rows["a.mp4"]["frames"]) == 10 and int(rows["b.mp4"]["width"]) == 56
    assert float(rows["a.mp4"]["flicker_index_after"]) < float(rows["a.mp4"]
                                                               ["flicker_index_before"])
    assert manifest_statuses(out) == {"a.mp4": "done", "b.mp4": "done", "c_frames": "done",
                                      "broken.mp4": "failed"}


def test_rerun_skips_finished_clips_and_redoes_the_failed_one(clips, first_run):
    out, _ = first_run
    done = ("a.mp4", "b.mp4", "c_frames")
    before = output_mtimes(out, done)
    inputs = (str(clips / "list.txt"), str(clips / "b*.mp4"), "--out", str(out), *FAST)

    again = run_batch_cli(*inputs)

    assert again.returncode == 1, again.stderr
    assert json.loads(again.stdout.splitlines()[-1])["skipped"] == 3
    assert output_mtimes(out, done) == before  # not redone
    assert summary_rows(out)["a.mp4"]["status"] == "skipped"
    assert summary_rows(out)["broken.mp4"]["status"] == "failed"

    write_clip(clips / "broken.mp4", flickering(frames=8, seed=3), 12)  # the user fixes it
    fixed = run_batch_cli(*inputs[:-1])  # with progress this time

    assert fixed.returncode == 0, fixed.stderr
    assert "batch: 4 clips, 3 finished earlier, 1 to do" in fixed.stderr
    assert "[1/1] broken.mp4 ..." in fixed.stderr  # the current clip
    assert "[1/1] broken.mp4: done" in fixed.stderr
    assert output_mtimes(out, done) == before
    assert manifest_statuses(out)["broken.mp4"] == "done"
    assert read_clip(out / "broken.mp4").frames.shape[0] == 8
    assert {r["status"] for n, r in summary_rows(out).items() if n != "broken.mp4"} == {"skipped"}


def test_fingerprints_follow_the_input_and_the_options(tmp_path):
    clip = write_clip(tmp_path / "x.mp4", flickering(frames=4), 12)
    first = batch.input_fingerprint(clip)
    os.utime(clip, ns=(clip.stat().st_atime_ns, clip.stat().st_mtime_ns + 10**9))

    assert batch.input_fingerprint(clip) != first
    base = PipelineConfig()
    other_seed = PipelineConfig(atlas=AtlasConfig(seed=1))
    assert batch.options_fingerprint(base) == batch.options_fingerprint(PipelineConfig())
    assert batch.options_fingerprint(base) != batch.options_fingerprint(other_seed)
    assert batch.options_fingerprint(base) != batch.options_fingerprint(
        PipelineConfig(stop_after="filter"))


@pytest.mark.slow
@pytest.mark.parametrize("stop_signal, workers", [(signal.SIGTERM, "1"), (signal.SIGINT, "2")],
                         ids=["TERM-in-process", "INT-two-workers"])
def test_killed_batch_leaves_no_partial_output_and_resumes(tmp_path, stop_signal, workers):
    """A real signal once the first clip is in the manifest; the rerun does not redo it."""
    names = ("k0.mp4", "k1.mp4", "k2.mp4")
    for seed, name in enumerate(names):
        write_clip(tmp_path / name, flickering(frames=10, h=48, w=80, seed=seed), 12)
    out = tmp_path / "out"
    options = ("--iterations", "80", "--quiet", "--workers", workers)
    args = [sys.executable, "-m", "deflicker_impl", "batch", *(str(tmp_path / n) for n in names),
            "--out", str(out), *options]
    with open(tmp_path / "log.txt", "w") as log:
        proc = subprocess.Popen(args, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and proc.poll() is None:
            if (out / "manifest.json").is_file() and "done" in manifest_statuses(out).values():
                break
            time.sleep(0.05)
        assert proc.poll() is None, (tmp_path / "log.txt").read_text()
        proc.send_signal(stop_signal)
        code = proc.wait(timeout=60)

    assert code == 130, (tmp_path / "log.txt").read_text()
    assert "run the same command again" in (tmp_path / "log.txt").read_text()
    statuses = manifest_statuses(out)
    finished = [n for n in names if statuses[n] == "done"]
    assert finished and len(finished) < 3, statuses
    assert sorted(p.name for p in out.glob("*.mp4")) == finished  # no output of a killed clip
    assert hidden_leftovers(out) == []
    before = output_mtimes(out, finished)

    rerun = run_batch_cli(*(str(tmp_path / n) for n in names), "--out", str(out), *options)

    assert rerun.returncode == 0, rerun.stderr
    assert json.loads(rerun.stdout.splitlines()[-1])["skipped"] == len(finished)
    assert output_mtimes(out, finished) == before
    assert set(manifest_statuses(out).values()) == {"done"}
    for name in names:
        assert read_clip(out / name).frames.shape == (10, 48, 80, 3)


@pytest.mark.slow
def test_a_worker_killed_by_the_system_fails_its_clip_only(tmp_path):
    """What the OOM killer does to a clip too large for the machine: SIGKILL to its worker."""
    names = ("w0.mp4", "w1.mp4", "w2.mp4")
    for seed, name in enumerate(names):
        write_clip(tmp_path / name, flickering(frames=10, h=48, w=80, seed=seed), 12)
    out = tmp_path / "out"
    args = [sys.executable, "-m", "deflicker_impl", "batch", *(str(tmp_path / n) for n in names),
            "--out", str(out), "--iterations", "300", "--quiet", "--workers", "2"]
    victim = None
    with open(tmp_path / "log.txt", "w") as log:
        proc = subprocess.Popen(args, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 300
        while victim is None and time.monotonic() < deadline and proc.poll() is None:
            for report in (out / "reports").glob("w1.mp4.json"):
                started = json.loads(report.read_text())
                if started["status"] == "running":
                    victim = started["worker"]["pid"]
            time.sleep(0.05)
        assert victim is not None, (tmp_path / "log.txt").read_text()
        time.sleep(0.5)
        os.kill(victim, signal.SIGKILL)
        code = proc.wait(timeout=300)

    assert code == 1, (tmp_path / "log.txt").read_text()
    rows = summary_rows(out)
    assert rows["w1.mp4"]["status"] == "failed" and "worker process died" in rows["w1.mp4"]["error"]
    assert rows["w0.mp4"]["status"] == rows["w2.mp4"]["status"] == "done"
    assert not (out / "w1.mp4").exists() and hidden_leftovers(out) == []
    assert read_clip(out / "w2.mp4").frames.shape == (10, 48, 80, 3)


@pytest.fixture(scope="module")
def workers_run(clips, tmp_path_factory):
    """The clean clips on two local worker processes, one thread each, as PNG folders."""
    out = tmp_path_factory.mktemp("batch_workers") / "out"
    res = run_batch_cli(str(clips / "a.mp4"), str(clips / "b.mp4"), str(clips / "c_frames"),
                        "--out", str(out), "--workers", "2", "--threads", "1", "--ext", "folder",
                        "--suffix", "_df", *FAST)
    return out, res


def png_folders(out: Path) -> dict[str, dict[str, bytes]]:
    return {d.name: {p.name: p.read_bytes() for p in sorted(d.glob("*.png"))}
            for d in sorted(out.iterdir()) if d.is_dir() and d.name != "reports"}


@pytest.mark.slow
def test_two_workers_load_the_networks_once_each(clips, workers_run):
    out, res = workers_run

    assert res.returncode == 0, res.stderr
    folders = png_folders(out)
    assert sorted(folders) == ["a_df", "b_df", "c_frames_df"]
    assert [len(f) for f in folders.values()] == [10, 8, 10]
    reports = [json.loads(p.read_text()) for p in (out / "reports").glob("*.json")]
    pids = [r["worker"]["pid"] for r in reports]
    assert len(set(pids)) == 2 and os.getpid() not in pids  # both workers, not this process
    assert {r["worker"]["threads"] for r in reports} == {1}
    # filter + refine networks: read once by each worker, however many clips it did.
    assert {r["worker"]["networks_loaded"] for r in reports} == {2}
    single = read_clip(out / "b_df").frames
    assert single.shape == read_clip(clips / "b.mp4").frames.shape


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def ray_cluster():
    """A one-node Ray cluster on 127.0.0.1 (2 CPUs) in its own process group; its address."""
    ray_cli = Path(sys.executable).with_name("ray")
    assert ray_cli.is_file(), ("Ray is not installed in this environment: the batch tests need "
                               "the [ray] extra (scripts/setup_env.sh installs it)")
    port = _free_port()
    temp = tempfile.mkdtemp(prefix="ray", dir="/tmp")  # short: Ray's socket paths must fit
    proc = subprocess.Popen([str(ray_cli), "start", "--head", "--block", "--port", str(port),
                             "--num-cpus", "2", "--node-ip-address", "127.0.0.1",
                             "--include-dashboard", "false", "--disable-usage-stats",
                             "--temp-dir", temp], stdout=subprocess.DEVNULL,
                            stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            assert proc.poll() is None, "ray start --head exited"
            probe = subprocess.run([str(ray_cli), "status", "--address", f"127.0.0.1:{port}"],
                                   capture_output=True, text=True, check=False)
            if probe.returncode == 0:
                break
            time.sleep(1)
        yield f"127.0.0.1:{port}"
    finally:
        proc.send_signal(signal.SIGTERM)  # `--block` stops the node's processes on SIGTERM
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(temp, ignore_errors=True)


@pytest.mark.slow
def test_ray_cluster_gives_bit_identical_outputs_to_local_workers(clips, workers_run,
                                                                 ray_cluster, tmp_path):
    local_out, local = workers_run
    assert local.returncode == 0, local.stderr
    out = tmp_path / "ray_out"

    res = run_batch_cli(str(clips / "a.mp4"), str(clips / "b.mp4"), str(clips / "c_frames"),
                        "--out", str(out), "--ray", ray_cluster, "--ext", "folder",
                        "--suffix", "_df", *FAST)

    assert res.returncode == 0, res.stderr
    ray_folders, local_folders = png_folders(out), png_folders(local_out)
    assert sorted(ray_folders) == ["a_df", "b_df", "c_frames_df"]
    assert ray_folders == local_folders  # every PNG byte for byte
    reports = [json.loads(p.read_text()) for p in (out / "reports").glob("*.json")]
    assert all(r["status"] == "done" and r["worker"]["pid"] != os.getpid() for r in reports)
    assert {r["worker"]["networks_loaded"] for r in reports} == {2}
    assert set(manifest_statuses(out).values()) == {"done"}


# -- bad input: one line, exit 2, nothing written ---------------------------------------------

def refused(capsys, *args: str) -> str:
    """Run `batch ARGS` in this process; assert exit 2 and a one-line error; return it."""
    code = cli_main(["batch", *args])
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert len(err.splitlines()) == 1 and err.startswith("error: "), err
    return err


@pytest.fixture
def one_clip(tmp_path):
    return write_clip(tmp_path / "in" / "take.mp4", flickering(frames=4, h=24, w=32), 12)


def test_missing_path_in_a_list_is_refused_with_its_line(tmp_path, one_clip, capsys):
    listing = tmp_path / "clips.txt"
    listing.write_text(f"{one_clip}\nnot_there.mp4\n")

    err = refused(capsys, str(listing), "--out", str(tmp_path / "out"))

    assert "not_there.mp4" in err and "line 2" in err and str(listing) in err
    assert not (tmp_path / "out").exists()


def test_folder_without_clips_and_empty_glob_are_refused(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.md").write_text("no clips here")

    assert "holds no clips" in refused(capsys, str(tmp_path / "empty"), "--out",
                                       str(tmp_path / "out"))
    assert "matches nothing" in refused(capsys, str(tmp_path / "*.mkv"), "--out",
                                        str(tmp_path / "out"))
    assert not (tmp_path / "out").exists()


def test_output_folder_that_is_a_file_or_cannot_be_written_is_refused(tmp_path, one_clip,
                                                                      capsys):
    a_file = tmp_path / "out.txt"
    a_file.write_text("keep me")

    assert "is a file" in refused(capsys, str(one_clip), "--out", str(a_file))
    assert "cannot be written" in refused(capsys, str(one_clip), "--out", str(a_file / "sub"))
    assert a_file.read_text() == "keep me"
    if os.geteuid() != 0:  # root writes anywhere
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        assert "cannot be written" in refused(capsys, str(one_clip), "--out", str(locked))


def test_two_inputs_with_the_same_output_name_are_refused(tmp_path, one_clip, capsys):
    other = write_clip(tmp_path / "other" / "take.mp4", flickering(frames=4, h=24, w=32), 12)

    err = refused(capsys, str(one_clip), str(other), "--out", str(tmp_path / "out"))

    assert "would both write" in err and str(tmp_path / "out" / "take.mp4") in err
    assert not (tmp_path / "out").exists()


def test_output_over_the_input_is_refused(one_clip, capsys):
    err = refused(capsys, str(one_clip), "--out", str(one_clip.parent))

    assert "would overwrite the input" in err and "--suffix" in err
    assert read_clip(one_clip).frames.shape[0] == 4


def test_zero_workers_and_an_unreachable_ray_cluster_are_refused(tmp_path, one_clip, capsys):
    assert "--workers must be at least 1" in refused(capsys, str(one_clip), "--out",
                                                     str(tmp_path / "out"), "--workers", "0")
    err = refused(capsys, str(one_clip), "--out", str(tmp_path / "out"), "--ray",
                  f"127.0.0.1:{_free_port()}")
    assert "Cannot reach a Ray cluster" in err and "ray start --head" in err
    assert not (tmp_path / "out").exists()


def test_clip_too_large_for_memory_fails_alone(tmp_path, one_clip):
    other = write_clip(tmp_path / "in" / "small.mp4", flickering(frames=3, h=16, w=16), 12)
    # Between the two clips' estimates (the deflicker command's, plus the second decoding the
    # batch makes for its report): take.mp4 (4 frames of 32x24) needs more than small.mp4.
    need = {path: estimate_peak_bytes(probe_clip(path), stop_after="atlas", measure_input=True)
            for path in (one_clip, other)}
    assert need[one_clip] > need[other]
    limit = (need[one_clip] + need[other]) / 2 / GIB

    result = batch.run_batch([str(one_clip), str(other)], tmp_path / "out", PipelineConfig(
        stop_after="atlas"), max_clip_gb=limit)

    assert (result.done, result.failed) == (1, 1)
    report = json.loads((tmp_path / "out" / "reports" / "take.mp4.json").read_text())
    assert report["status"] == "failed" and "need about" in report["error"]
    assert "--max-clip-gb" in report["error"] and not (tmp_path / "out" / "take.mp4").exists()
    assert (tmp_path / "out" / "small.mp4").is_file()


def test_damaged_manifest_is_refused(tmp_path, one_clip, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "manifest.json").write_text("{ half a manifest")

    err = refused(capsys, str(one_clip), "--out", str(out))

    assert "manifest.json" in err and "delete it" in err
    assert (out / "manifest.json").read_text() == "{ half a manifest"


def test_outputs_with_the_same_stem_in_another_format_do_not_collide(tmp_path):
    a = write_clip(tmp_path / "take.mp4", flickering(frames=3, h=16, w=16), 12)
    b = write_clip(tmp_path / "take.gif", flickering(frames=3, h=16, w=16), 12)

    jobs = batch.plan_jobs([a, b], tmp_path / "out", suffix="_df")
    assert [Path(j.output).name for j in jobs] == ["take_df.mp4", "take_df.gif"]
    with pytest.raises(batch.DeflickerInputError, match="would both write"):
        batch.plan_jobs([a, b], tmp_path / "out", output_format=".mp4")
    assert np.unique([j.report for j in jobs]).size == 2


def test_ray_is_an_optional_extra_that_the_pack_never_imports():
    import tomllib

    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert [r.split(">")[0] for r in meta["optional-dependencies"]["ray"]] == ["ray"]
    assert not any(r.startswith("ray") for r in meta["dependencies"])
    assert "ray" not in (ROOT / "requirements.txt").read_text()
    code = ("import sys, deflicker_impl.cli, deflicker_impl.batch; "
            "print('ray' in sys.modules)")
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, check=True)
    assert run.stdout.strip() == "False"  # imported only by `batch --ray`


def write_output(target_path: Path, frames, overwrite: bool = True) -> None:
    """The batch's way of writing a clip's output (output_safety, as every command)."""
    target = output_target("OUTPUT", target_path, frames.shape[0], overwrite=overwrite)
    with OutputTransaction() as outputs:
        outputs.write(target, frames, 12)
        outputs.commit()


def test_a_frame_folder_output_is_replaced_whole_or_not_at_all(tmp_path):
    target = tmp_path / "take_frames"
    write_output(target, flickering(frames=6, h=16, w=16))
    write_output(target, flickering(frames=4, h=16, w=16))  # a shorter redo

    assert len(list(target.glob("*.png"))) == 4  # no stale frames of the older result
    with pytest.raises(batch.DeflickerInputError):
        write_output(target, flickering(frames=4, h=16, w=16)[..., :2])
    assert len(list(target.glob("*.png"))) == 4  # a failed write keeps the previous result
    assert sorted(p.name for p in tmp_path.iterdir()) == ["take_frames"]


def test_an_existing_frame_folder_in_out_is_replaced_only_when_the_batch_made_it(tmp_path):
    clip = write_clip(tmp_path / "in" / "take", flickering(frames=3, h=16, w=16))
    users = write_clip(tmp_path / "out" / "take_df", flickering(frames=5, h=16, w=16))

    with pytest.raises(batch.DeflickerInputError, match="already holds 5 frame"):
        batch.plan_jobs([clip], tmp_path / "out", suffix="_df")
    assert batch.plan_jobs([clip], tmp_path / "out", suffix="_df", overwrite=True)[0].overwrite
    assert batch.plan_jobs([clip], tmp_path / "out", suffix="_df",
                           batch_outputs={"take_df"})[0].overwrite  # its own earlier output
    assert len(list(users.glob("*.png"))) == 5


def test_an_output_that_resolves_to_an_input_through_a_link_is_refused(tmp_path):
    clip = write_clip(tmp_path / "in" / "take.mp4", flickering(frames=3, h=16, w=16), 12)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "take.mp4").symlink_to(clip)  # writing through it would replace the input

    with pytest.raises(batch.DeflickerInputError, match="inputs are never overwritten"):
        batch.plan_jobs([clip], tmp_path / "out")
    assert read_clip(clip).num_frames == 3
