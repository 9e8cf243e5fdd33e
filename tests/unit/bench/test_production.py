"""The production suite's table (bench/production.py, bench/run.py --suite production): the
ratios and the verdicts against issue 16's targets; never a server here."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

# No database: run in the SQLite pass only (tests/conftest.py).
pytestmark = pytest.mark.pure

BENCH = Path(__file__).resolve().parents[3] / "bench"


def _bench(name: str):
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # puts bench/ on sys.path for its own imports
    return module


@pytest.fixture(scope="module")
def production():
    return _bench("production")


def _results(rates: dict[int, float], *, embedded_p99=3.0, static_p99=1.0, static_rps=900.0,
             ceiling_rps=1000.0, non_200=0) -> dict:
    return {
        "uploads": {str(w): {"files_per_s": r, "non_200": non_200} for w, r in rates.items()},
        "scale": {"projects": 100_000,
                  "embedded": {"simple": {"p99_ms": embedded_p99}, "json_api": {"p99_ms": 9.0}},
                  "static": {"simple": {"p99_ms": static_p99, "rps": static_rps},
                             "ceiling": {"p99_ms": 0.5, "rps": ceiling_rps}}},
    }


def _row(rows, start: str) -> list[str]:
    return next(row for row in rows if row[0].startswith(start))


def test_uploads_scale_with_the_cores_up_to_their_number(production):
    rows = production.production_table(_results({1: 10.0, 2: 15.0, 4: 14.0}), cpus=2)
    assert _row(rows, "uploads, 1 worker ") == ["uploads, 1 worker on PostgreSQL (files/s)", "10.0",
                                                "", "-", "", "-"]
    # 2 workers on 2 cores: at least 0.7 x 2 x 10 = 14 files/s.
    assert _row(rows, "uploads, 2 workers")[2:] == ["1 worker", "1.50", ">= 0.7x 2 x 1 worker", "yes"]
    # 4 workers on 2 cores are held to the cores' count, not the workers'.
    assert _row(rows, "uploads, 4 workers")[3:] == ["1.40", ">= 0.7x 2 x 1 worker", "yes"]
    on_four = production.production_table(_results({1: 10.0, 2: 15.0, 4: 14.0}), cpus=4)
    assert _row(on_four, "uploads, 4 workers")[4:] == [">= 0.7x 4 x 1 worker", "NO"]


def test_an_upload_refused_misses_the_target_whatever_the_rate(production):
    rows = production.production_table(_results({1: 10.0, 2: 20.0}, non_200=1), cpus=2)
    assert _row(rows, "uploads, 2 workers")[-1] == "NO"
    assert _row(rows, "uploads, 1 worker ")[-1] == "NO"


def test_p99_targets_hold_for_the_cached_page_embedded_and_on_the_static_path(production):
    rows = production.production_table(_results({1: 1.0}, embedded_p99=5.0, static_p99=5.1),
                                       cpus=2)
    embedded = _row(rows, "cached simple JSON p99 at 100,000 projects, embedded")
    assert embedded[1:] == ["5.0", "", "-", "<= 5 ms", "yes"]
    assert _row(rows, "simple JSON p99 at 100,000 projects, static path")[-2:] == ["<= 5 ms", "NO"]
    # Reported, not judged: the issue sets no target for these.
    assert _row(rows, "cached /pypi/<p>/json p99")[-2:] == ["", "-"]
    assert _row(rows, "same bytes p99, nginx's ceiling")[-2:] == ["", "-"]


def test_the_static_path_is_judged_as_a_share_of_nginx_s_own_ceiling(production):
    rows = production.production_table(_results({1: 1.0}, static_rps=499.0), cpus=2)
    assert _row(rows, "simple JSON at 100,000 projects, static path (req/s)")[1:] == [
        "499", "nginx's ceiling", "0.50", ">= 0.5x ceiling", "NO"]
    rows = production.production_table(_results({1: 1.0}, static_rps=500.0), cpus=2)
    assert _row(rows, "simple JSON at 100,000 projects, static path (req/s)")[-1] == "yes"
    assert _row(rows, "same bytes, nginx's ceiling (req/s)")[1] == "1000"


def test_a_section_not_run_or_failed_leaves_dashes_not_verdicts(production):
    rows = production.production_table({"uploads": {"error": "PostgreSQL did not start"},
                                        "scale": {"error": "nginx did not start"}}, cpus=2)
    assert not any(row[0].startswith("uploads") for row in rows)
    assert all(row[-1] == "-" for row in rows)
    assert all(row[1] == "-" for row in rows)


def test_run_prints_the_rows_under_one_header(production):
    run = _bench("run")
    report = run.production_report(_results({1: 10.0, 2: 15.0}), cpus=2)
    lines = report.splitlines()
    assert lines[0].split()[:2] == ["metric", "value"] and set(lines[1]) <= {"-", " "}
    assert len(lines) == 2 + len(production.production_table(_results({1: 10.0, 2: 15.0}), 2))


def test_quick_shrinks_only_what_was_not_given(production):
    run = _bench("run")
    args = run.parse_args(["--suite", "production", "--quick", "--upload-files", "7"])
    assert args.sections == {"peers", "uploads", "scale"}
    assert (args.scale_projects, args.upload_files, args.install_rounds) == (1000, 7, 1)
    assert run.parse_args(["--sections", "scale"]).sections == {"scale"}
    with pytest.raises(SystemExit):
        run.parse_args(["--sections", "peers,nope"])
    with pytest.raises(SystemExit):
        run.parse_args(["--upload-workers", "1,x"])
