"""The repository stands alone: no text cites a document it does not hold, none narrates the work."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TEXT_SUFFIXES = {".py", ".md", ".toml", ".txt", ".cfg", ".json", ".jsonl", ".csv", ""}


def _tracked_text_files() -> list[Path]:
    """The files git knows of (plus new ones not ignored), text only, shipped data traces excluded."""
    try:
        out = subprocess.run(
            ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    files = []
    for name in out.splitlines():
        path = ROOT / name
        if path.suffix not in TEXT_SUFFIXES or not path.is_file():
            continue
        if (
            "data/traces" in name
            or name.startswith("instances/")
            or path.stat().st_size > 2_000_000
        ):
            continue
        files.append(path)
    return files


def test_no_text_cites_a_document_outside_the_repository() -> None:
    missing = re.compile(r"\b(MODEL|FORMATS|ALGORITHMS)\.md\b|\.\./shared\b")
    hits = [
        f"{p.relative_to(ROOT)}:{i}: {line.strip()[:90]}"
        for p in _tracked_text_files()
        if p.name != "test_repository.py"
        for i, line in enumerate(p.read_text(errors="replace").splitlines(), 1)
        if missing.search(line)
    ]
    assert not hits, "citations of documents that are not in the repository:\n" + "\n".join(hits)


def test_markdown_links_resolve() -> None:
    link = re.compile(r"\]\(([^)#\s]+)(#[^)]*)?\)")
    broken = []
    for p in _tracked_text_files():
        if p.suffix != ".md":
            continue
        for i, line in enumerate(p.read_text().splitlines(), 1):
            for target, _ in link.findall(line):
                if re.match(r"[a-z]+:", target):  # http:, https:, mailto:
                    continue
                if not (p.parent / target).exists():
                    broken.append(f"{p.relative_to(ROOT)}:{i}: {target}")
    assert not broken, "links to files that do not exist:\n" + "\n".join(broken)


def test_no_text_narrates_the_work_in_sessions() -> None:
    word = re.compile(r"session", re.IGNORECASE)
    allowed = re.compile(r"start_new_session")
    hits = [
        f"{p.relative_to(ROOT)}:{i}: {line.strip()[:90]}"
        for p in _tracked_text_files()
        if p.name != "test_repository.py"
        for i, line in enumerate(p.read_text(errors="replace").splitlines(), 1)
        if word.search(allowed.sub("", line))
    ]
    assert not hits, (
        "text that tells the story of the work (it belongs in git history):\n" + "\n".join(hits)
    )


def test_the_readme_python_example_runs_from_any_directory(tmp_path: Path) -> None:
    """The README's Python snippet loads what it needs from the package, not from the working directory."""
    readme = (ROOT / "README.md").read_text()
    snippet = re.search(r"```python\n(.*?)```", readme, re.S)
    assert snippet is not None
    proc = subprocess.run(
        [sys.executable, "-c", snippet.group(1)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("optimal ")
