"""The command-line contract (docs/formats.md): bad input gives one line on stderr and a non-zero exit.

One malformed-instance case of ``test_instance.py`` per kind of problem (missing file, not JSON,
missing field, wrong type, zero / negative length, negative arrival, duplicate id, empty list, peak
too big; CSV: missing column, non-integer cell, missing --memory) is run through
``scripts/solve.py`` in a real subprocess (the library-level tests cover every case).  The
subprocesses are started together in a module fixture, as they are mostly interpreter start-up;
each case is still its own test.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from scheduler_milp.model.instance import load_instance
from tests.model.test_instance import BAD_CSV_CASES, BAD_JSON_CASES, write_case

ROOT = Path(__file__).resolve().parent.parent
CLI_JSON_CASES = [
    c
    for c in BAD_JSON_CASES
    if c[0]
    in {
        "not-json",
        "missing-prompt",
        "prompt-string",
        "zero-output",
        "negative-output",
        "negative-arrival",
        "duplicate-id",
        "empty-requests",
        "peak-too-big",
    }
]
CLI_CSV_CASES = [
    c
    for c in BAD_CSV_CASES
    if c[0]
    in {
        "csv-missing-output-column",
        "csv-non-integer",
        "csv-missing-memory",
    }
]
SOLVE = ROOT / "scripts" / "solve.py"
MAKE = ROOT / "scripts" / "make_instances.py"


def run(script: Path, *args: str | Path) -> subprocess.CompletedProcess[str]:
    """Run a project script with this interpreter; never raises on a non-zero exit."""
    return subprocess.run(
        [sys.executable, str(script), *map(str, args)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )


def run_many(jobs: dict[str, tuple[Any, ...]]) -> dict[str, subprocess.CompletedProcess[str]]:
    """Run several commands concurrently (they are mostly interpreter start-up)."""
    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = {key: pool.submit(run, *cmd) for key, cmd in jobs.items()}
        return {key: f.result() for key, f in futures.items()}


def assert_one_line_error(proc: subprocess.CompletedProcess[str], *fragments: str) -> None:
    """Non-zero exit, exactly one line on stderr, no traceback, and the given fragments in it."""
    assert proc.returncode != 0, proc.stdout
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    for fragment in fragments:
        assert fragment in lines[0]


@pytest.fixture(scope="module")
def bad_instance_runs(tmp_path_factory) -> dict[str, tuple[Path, subprocess.CompletedProcess[str]]]:
    tmp = tmp_path_factory.mktemp("bad")
    jobs: dict[str, tuple[Any, ...]] = {}
    paths: dict[str, Path] = {}
    for case, content, _, _ in CLI_JSON_CASES:
        paths[case] = write_case(tmp, case, content)
        jobs[case] = (SOLVE, paths[case])
    for case, text, memory, _, _ in CLI_CSV_CASES:
        paths[case] = write_case(tmp, case, text, suffix=".csv")
        jobs[case] = (
            SOLVE,
            paths[case],
            *(["--memory", str(memory)] if memory is not None else []),
        )
    paths["missing-file"] = tmp / "does-not-exist.json"
    jobs["missing-file"] = (SOLVE, paths["missing-file"])
    results = run_many(jobs)
    return {case: (paths[case], results[case]) for case in jobs}


def _named(request_id: str | None) -> list[str]:
    if request_id is None:
        return []
    return [f"request {request_id}" if request_id.startswith("#") else f"'{request_id}'"]


@pytest.mark.parametrize(
    ("case", "request_id", "fragment"),
    [(c[0], c[2], c[3]) for c in CLI_JSON_CASES],
    ids=[c[0] for c in CLI_JSON_CASES],
)
def test_solve_bad_json(bad_instance_runs, case, request_id, fragment):
    path, proc = bad_instance_runs[case]
    assert_one_line_error(proc, str(path), fragment, *_named(request_id))


@pytest.mark.parametrize(
    ("case", "request_id", "fragment"),
    [(c[0], c[3], c[4]) for c in CLI_CSV_CASES],
    ids=[c[0] for c in CLI_CSV_CASES],
)
def test_solve_bad_csv(bad_instance_runs, case, request_id, fragment):
    path, proc = bad_instance_runs[case]
    assert_one_line_error(proc, str(path), fragment, *_named(request_id))


def test_solve_missing_file(bad_instance_runs):
    path, proc = bad_instance_runs["missing-file"]
    assert_one_line_error(proc, str(path), "no such file")


def test_output_is_not_clobbered_by_a_failed_solve(tmp_path):
    bad = write_case(
        tmp_path, "bad", {"memory": 4, "requests": [{"id": "big", "prompt": 9, "output": 1}]}
    )
    good = write_case(
        tmp_path,
        "good",
        {
            "memory": 24,
            "requests": [
                {"id": "a", "prompt": 5, "output": 3},
                {"id": "b", "prompt": 9, "output": 1},
            ],
        },
    )
    plan = tmp_path / "plan.json"
    plan.write_text('{"previous": "plan"}\n')
    proc = run(SOLVE, bad, "--method", "sf", "--output", plan)
    assert_one_line_error(proc, str(bad), "'big'")
    assert plan.read_text() == '{"previous": "plan"}\n'
    proc = run(SOLVE, good, "--method", "sf", "--output", plan)
    assert proc.returncode == 0, proc.stderr
    written = json.loads(plan.read_text())
    assert set(written["starts"]) == {"a", "b"} and written["objective"] >= 4
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.json", "good.json", "plan.json"]


def test_a_reader_closing_stdout_early_costs_neither_the_plan_nor_a_traceback(tmp_path):
    """``solve.py ... | head -0``: the pipe is closed before anything is printed."""
    good = write_case(
        tmp_path,
        "good",
        {
            "memory": 24,
            "requests": [
                {"id": "a", "prompt": 5, "output": 3},
                {"id": "b", "prompt": 9, "output": 1},
            ],
        },
    )
    plan = tmp_path / "plan.json"
    proc = subprocess.Popen(
        [sys.executable, str(SOLVE), str(good), "--method", "sf", "--output", str(plan)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # before the child can print: its first write meets a broken pipe
    err = proc.stderr.read()
    proc.wait(timeout=120)
    assert "Traceback" not in err and "BrokenPipeError" not in err, err
    assert proc.returncode == 1
    written = json.loads(plan.read_text())
    assert set(written["starts"]) == {"a", "b"}


# ---------------------------------------------------------------------- make_instances.py


def test_make_instances_bad_arguments(tmp_path):
    out = tmp_path / "x.json"
    cases = {
        "unknown-trace": (
            (MAKE, "--mix", "nope=1", "--n", "5", "--out", out),
            "unknown trace 'nope'",
        ),
        "memory-and-factor": (
            (
                MAKE,
                "--mix",
                "conv",
                "--n",
                "5",
                "--memory",
                "9000",
                "--memory-factor",
                "2",
                "--out",
                out,
            ),
            "not both",
        ),
        "no-timestamps": (
            (MAKE, "--mix", "arxiv", "--n", "5", "--arrivals", "trace", "--out", out),
            "no timestamps",
        ),
        "no-source": ((MAKE, "--out", out), "one of the arguments"),
        "bad-int": ((MAKE, "--mix", "conv", "--n", "ten", "--out", out), "invalid int value"),
        "memory-too-small": (
            (MAKE, "--mix", "conv", "--n", "50", "--memory", "100", "--out", out),
            "does not fit",
        ),
        "csv-no-memory": ((MAKE, "--csv", tmp_path / "t.csv", "--out", out), "--memory"),
    }
    results = run_many({k: v[0] for k, v in cases.items()})
    for key, (_, fragment) in cases.items():
        assert_one_line_error(results[key], fragment)
    assert not out.exists()


def test_make_instances_csv_converter(tmp_path):
    trace = tmp_path / "azure-like.csv"
    trace.write_text(
        "TIMESTAMP,ContextTokens,GeneratedTokens\n"
        "2023-11-16 18:15:46.6805900,374,44\n"
        "2023-11-16 18:15:50.9951690,396,109\n"
        "2023-11-16 18:15:51.22246,879,55\n"
    )
    out = tmp_path / "converted.json"
    proc = run(
        MAKE,
        "--csv",
        trace,
        "--memory",
        "4096",
        "--timestamp-column",
        "TIMESTAMP",
        "--round-seconds",
        "0.5",
        "--out",
        out,
    )
    assert proc.returncode == 0, proc.stderr
    inst = load_instance(out)
    assert inst.prompt_len.tolist() == [374, 396, 879]
    assert inst.output_len.tolist() == [44, 109, 55]
    # 0 s, 4.31 s and 4.54 s after the first request, in rounds of 0.5 s
    assert inst.arrival.tolist() == [0, 8, 9]
    assert inst.meta["meta"]["params"]["prompt_column"] == "ContextTokens"

    bad = tmp_path / "bad-cell.csv"
    bad.write_text("num_prefill_tokens,num_decode_tokens\n12,4\n7,x\n")
    proc = run(MAKE, "--csv", bad, "--memory", "99", "--out", out)
    assert_one_line_error(proc, str(bad), "'r1'", "line 3", "must be an integer")


def test_make_instances_sample_matches_library(tmp_path):
    from scheduler_milp.traces import sample_backlog

    out = tmp_path / "mix.json"
    proc = run(
        MAKE,
        "--mix",
        "conv=0.5,bwb=0.5",
        "--n",
        "40",
        "--seed",
        "3",
        "--scale",
        "8",
        "--memory-factor",
        "3",
        "--out",
        out,
    )
    assert proc.returncode == 0, proc.stderr
    expected = sample_backlog({"conv": 0.5, "bwb": 0.5}, 40, 3, memory_factor=3, scale=8)
    assert load_instance(out).to_dict() == expected.to_dict()


def test_ctrl_c_during_auto_keeps_the_best_plan_and_stops_the_second_process(tmp_path):
    """SIGINT to the whole process group (as Ctrl-C in a terminal) while auto runs on two processes:
    the best plan so far is written (valid, stop reason ``interrupted``), exit 130, no traceback."""
    import os
    import signal
    import time

    from scheduler_milp.model.plan import validate

    out_file = tmp_path / "plan.json"
    instance = ROOT / "instances" / "traces" / "mix-conv70-arxiv30-n1000-M65536.json"
    proc = subprocess.Popen(
        [
            sys.executable,
            str(SOLVE),
            str(instance),
            "--time-limit",
            "600",
            "-v",
            "--output",
            str(out_file),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        preexec_fn=lambda: signal.signal(
            signal.SIGINT, signal.SIG_DFL
        ),  # a background shell may ignore it
    )
    assert proc.stderr is not None and proc.stdout is not None
    seen = []
    for line in proc.stderr:  # wait until the second process is running
        seen.append(line)
        if "bound phases in a second process" in line:
            break
    else:
        raise AssertionError("".join(seen))
    os.killpg(proc.pid, signal.SIGINT)
    rest_err = proc.stderr.read()
    summary = proc.stdout.read()
    proc.wait(timeout=120)
    assert proc.returncode == 130, rest_err
    assert "Traceback" not in rest_err
    assert "stopping: keeping the best plan" in rest_err
    plan = json.loads(out_file.read_text())
    assert plan["stop_reason"] == "interrupted" and plan["status"] in ("feasible", "optimal")
    assert validate(load_instance(instance), plan["starts"]) == []
    assert "certified" in summary
    for _ in range(100):  # the group (the spawned worker included) ends with the parent
        left = subprocess.run(
            ["ps", "-o", "pid=,args=", "-g", str(proc.pid)], capture_output=True, text=True
        ).stdout
        if not left.strip():
            break
        time.sleep(0.1)
    assert not left.strip(), left


def test_a_stop_request_ends_auto_with_its_best_plan():
    """``SolveOptions.stop`` (what the first Ctrl-C sets) ends every phase; the plan is kept."""
    from scheduler_milp.model.result import SolveOptions, StopReason
    from scheduler_milp.registry import solve

    instance = load_instance(ROOT / "instances" / "traces" / "mix-conv70-arxiv30-n100-M65536.json")
    res = solve(instance, "auto", SolveOptions(time_limit=600, threads=1, stop=lambda: True))
    assert res.plan is not None and res.stop_reason is StopReason.STOPPED
    assert res.stats["phase_seconds"].get("repack-2") is None  # no search ran after the request


@pytest.fixture(scope="module")
def bad_option_runs(tmp_path_factory) -> dict[str, subprocess.CompletedProcess[str]]:
    """``solve.py`` with one bad option each, run together."""
    tmp = tmp_path_factory.mktemp("options")
    toy = ROOT / "instances" / "toy" / "toy-3.json"
    nested = tmp / "nested.json"
    nested.write_text("[" * 100_000 + "]" * 100_000)
    short_row = tmp / "short.csv"
    short_row.write_text("prompt,output,arrival\n3,4,0\n5,6\n")
    read_only = tmp / "read-only"
    read_only.mkdir()
    read_only.chmod(0o500)
    jobs: dict[str, tuple[Any, ...]] = {
        "time-nan": (SOLVE, toy, "--time-limit", "nan"),
        "time-inf": (SOLVE, toy, "--time-limit", "inf"),
        "time-zero": (SOLVE, toy, "--time-limit", "0"),
        "threads-zero": (SOLVE, toy, "--threads", "0"),
        "threads-negative": (SOLVE, toy, "--threads", "-1"),
        "param-no-key": (SOLVE, toy, "--method", "sf", "--param", "=3"),
        "param-misspelt": (SOLVE, toy, "--method", "repack", "--param", "kmn=3"),
        "param-ill-typed": (SOLVE, toy, "--method", "repack", "--param", "kmin=many"),
        "solver-without-solver": (SOLVE, toy, "--method", "sf", "--solver", "cbc"),
        "block-size-zero-json": (SOLVE, toy, "--block-size", "0"),
        "output-directory": (SOLVE, toy, "--method", "sf", "--output", tmp),
        "plot-no-directory": (
            SOLVE,
            toy,
            "--method",
            "sf",
            "--plot",
            tmp / "no" / "such" / "p.png",
        ),
        "nested-json": (SOLVE, nested, "--method", "sf"),
        "csv-short-row": (SOLVE, short_row, "--memory", "100", "--method", "sf"),
        "solver-missing": (SOLVE, toy, "--method", "milp", "--solver", "nosuch"),
    }
    if os.geteuid() != 0:  # root may write anywhere
        jobs["output-read-only"] = (
            SOLVE,
            toy,
            "--method",
            "sf",
            "--output",
            read_only / "plan.json",
        )
    return run_many(jobs)


@pytest.mark.parametrize(
    ("case", "fragment"),
    [
        ("time-nan", "--time-limit"),
        ("time-inf", "--time-limit"),
        ("time-zero", "--time-limit"),
        ("threads-zero", "--threads"),
        ("threads-negative", "--threads"),
        ("param-no-key", "no key"),
        ("param-misspelt", "valid: "),
        ("param-ill-typed", "kmin"),
        ("solver-without-solver", "milp only"),
        ("block-size-zero-json", "--block-size"),
        ("output-directory", "is a directory"),
        ("plot-no-directory", "no such directory"),
        ("nested-json", "nested too deeply"),
        ("csv-short-row", "fewer cells"),
        ("solver-missing", "no such solver"),
        ("output-read-only", "not writable"),
    ],
)
def test_bad_options_give_one_line(bad_option_runs, case, fragment):
    if case not in bad_option_runs:
        pytest.skip("running as root: every directory is writable")
    proc = bad_option_runs[case]
    assert proc.returncode in (1, 2)
    lines = [ln for ln in proc.stderr.splitlines() if not ln.startswith(("usage:", " "))]
    assert "Traceback" not in proc.stderr
    assert len(lines) == 1 and fragment in lines[0], proc.stderr


def test_help_shows_every_default():
    proc = run(SOLVE, "--help")
    assert proc.returncode == 0
    text = " ".join(proc.stdout.split())
    for fragment in ("(default: auto)", "(default: 2)", "(default: 0)"):
        assert fragment in text


def test_a_warm_start_from_a_plan_file_and_a_summary_that_says_what_is_certified(tmp_path):
    toy = ROOT / "instances" / "toy" / "toy-pack4.json"
    first = run(SOLVE, toy, "--method", "fcfs", "--output", tmp_path / "fcfs.json", "-q")
    assert first.returncode == 0, first.stderr
    proc = run(
        SOLVE,
        toy,
        "--method",
        "repack",
        "--param",
        "kmax=4",
        "--time-limit",
        "1",
        "--warm-start",
        tmp_path / "fcfs.json",
        "--output",
        tmp_path / "repack.json",
        "-q",
    )
    assert proc.returncode == 0, proc.stderr
    plan = json.loads((tmp_path / "repack.json").read_text())
    assert plan["stats"]["start_method"] == "warm_start"
    assert plan["objective"] <= json.loads((tmp_path / "fcfs.json").read_text())["objective"]
    assert "certified" in proc.stdout and "proved by" in proc.stdout
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps({"starts": {"nobody": 0}}))
    bad = run(SOLVE, toy, "--method", "repack", "--warm-start", wrong)
    assert_one_line_error(bad, "--warm-start")
