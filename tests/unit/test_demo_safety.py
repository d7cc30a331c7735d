"""scripts/demo --work/--json never empty or overwrite what the demo did not create (issue 8, data safety).

The demo runs as a user runs it (`python -m edgeml.demo`, and scripts/demo itself) against a stand-in
repository (EDGEML_ROOT), so a regression deletes a temporary folder, never the checkout. Each refusal
happens before any work, so these runs take a second.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from edgeml.demo.workdir import (
    MARKER,
    UnsafeSummaryPath,
    UnsafeWorkFolder,
    check_summary_path,
    check_work_folder,
    prepare_work_folder,
)

REPO = Path(__file__).resolve().parents[2]


def _snapshot(root: Path) -> dict[str, bytes]:
    return {str(path.relative_to(root)): path.read_bytes() for path in root.rglob("*") if path.is_file()}


@pytest.fixture()
def fake_repo(tmp_path: Path) -> Path:
    """A stand-in checkout: the demo's EDGEML_ROOT, with a .git folder and a source file."""
    repo = tmp_path / "checkout"
    (repo / ".git").mkdir(parents=True)
    (repo / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (repo / "README.md").write_text("mine\n")
    return repo


def _demo(cwd: Path, repo: Path, *args: str, caller: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("AWS_ENDPOINT_URL")}
    env["EDGEML_ROOT"] = str(repo)
    env.pop("EDGEML_CALLER_CWD", None)
    if caller is not None:
        env["EDGEML_CALLER_CWD"] = str(caller)
    return subprocess.run(
        [sys.executable, "-m", "edgeml.demo", *args],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=120, check=False,
    )


def _refused(result: subprocess.CompletedProcess[str], expected: str) -> None:
    assert result.returncode == 1, result.stdout + result.stderr
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("error: --") and expected in line, line


def test_work_dot_from_the_repository_root_is_refused_and_the_checkout_stays(fake_repo: Path) -> None:
    before = _snapshot(fake_repo)
    result = _demo(fake_repo, fake_repo, "--work", ".", "--images", "3")
    _refused(result, "refusing to empty the repository")
    assert _snapshot(fake_repo) == before


@pytest.mark.parametrize("target", ["parent", "home", "root"])
def test_ancestors_of_the_repository_home_and_root_are_refused(fake_repo: Path, target: str) -> None:
    work = {"parent": fake_repo.parent, "home": Path.home(), "root": Path("/")}[target]
    before = _snapshot(fake_repo)
    result = _demo(fake_repo, fake_repo, "--work", str(work), "--images", "3")
    _refused(result, "refusing to empty")
    assert _snapshot(fake_repo) == before


def test_a_folder_holding_a_user_file_is_refused_and_untouched(fake_repo: Path, tmp_path: Path) -> None:
    mine = tmp_path / "my-results"
    (mine / "sub").mkdir(parents=True)
    (mine / "notes.txt").write_text("keep me\n")
    (mine / "sub" / "data.csv").write_text("1,2\n")
    before = _snapshot(mine)
    result = _demo(fake_repo, fake_repo, "--work", str(mine), "--images", "3")
    _refused(result, f"--work {mine}: holds files the demo did not create")
    assert _snapshot(mine) == before


def test_relative_work_and_json_resolve_against_the_callers_cwd(fake_repo: Path, tmp_path: Path) -> None:
    caller = tmp_path / "caller"
    (caller / "rel").mkdir(parents=True)
    (caller / "rel" / "notes.txt").write_text("keep me\n")
    (fake_repo / "rel").mkdir()  # the same name in the repository, where scripts/demo runs python
    result = _demo(fake_repo, fake_repo, "--work", "rel", caller=caller)
    _refused(result, f"--work {caller / 'rel'}: holds files the demo did not create")

    (caller / "mine.json").write_text('{"not": "a summary"}\n')
    result = _demo(fake_repo, fake_repo, "--work", "new-work", "--json", "mine.json", caller=caller)
    _refused(result, f"--json {caller / 'mine.json'}: exists and is not a demo summary")
    assert (caller / "mine.json").read_text() == '{"not": "a summary"}\n'
    assert not (caller / "new-work").exists() and not (fake_repo / "new-work").exists()


def test_scripts_demo_passes_the_callers_directory(fake_repo: Path, tmp_path: Path) -> None:
    """scripts/demo itself, with its venv step replaced by one that only names the repo and interpreter."""
    scripts = fake_repo / "scripts"
    scripts.mkdir()
    shutil.copy2(REPO / "scripts" / "demo", scripts / "demo")
    (scripts / "_venv.sh").write_text(
        f'ROOT="{fake_repo}"\nexport EDGEML_ROOT="$ROOT"\nexport PATH="{Path(sys.executable).parent}:$PATH"\n'
    )
    caller = tmp_path / "caller"
    (caller / "out").mkdir(parents=True)
    (caller / "out" / "notes.txt").write_text("keep me\n")
    env = {key: value for key, value in os.environ.items() if key != "EDGEML_CALLER_CWD"}
    result = subprocess.run(
        [str(scripts / "demo"), "--work", "out"],
        cwd=caller, env=env, capture_output=True, text=True, timeout=120, check=False,
    )
    _refused(result, f"--work {caller / 'out'}: holds files the demo did not create")
    assert (caller / "out" / "notes.txt").read_text() == "keep me\n"


def test_a_marked_folder_is_emptied_and_stays_marked(tmp_path: Path, fake_repo: Path) -> None:
    work = check_work_folder(tmp_path / "work", fake_repo)
    prepare_work_folder(work)
    assert (work / MARKER).is_file()
    (work / "device" / "packages").mkdir(parents=True)
    (work / "summary.json").write_text("{}")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "kept.txt").write_text("kept")
    (work / "link").symlink_to(outside, target_is_directory=True)

    prepare_work_folder(check_work_folder(work, fake_repo))
    assert sorted(path.name for path in work.iterdir()) == [MARKER]
    assert (outside / "kept.txt").read_text() == "kept"  # a link is removed, not followed


def test_an_empty_folder_is_adopted_a_link_to_the_repo_is_not(tmp_path: Path, fake_repo: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    assert check_work_folder(empty, fake_repo) == empty.resolve()
    link = tmp_path / "link"
    link.symlink_to(fake_repo, target_is_directory=True)
    with pytest.raises(UnsafeWorkFolder, match="refusing to empty the repository"):
        check_work_folder(link, fake_repo)
    with pytest.raises(UnsafeWorkFolder, match="exists and is not a folder"):
        check_work_folder(fake_repo / "README.md", fake_repo)


def test_json_may_replace_an_earlier_summary_only(tmp_path: Path) -> None:
    earlier = tmp_path / "summary.json"
    earlier.write_text(json.dumps({"variants": [], "components": {}, "results": None, "app_exit_code": 0}))
    assert check_summary_path(earlier) == earlier
    assert check_summary_path(tmp_path / "new" / "summary.json") == tmp_path / "new" / "summary.json"
    with pytest.raises(UnsafeSummaryPath, match="is a folder"):
        check_summary_path(tmp_path)
    (tmp_path / "list.json").write_text('["variants", "components", "results", "app_exit_code"]')
    with pytest.raises(UnsafeSummaryPath, match="not a demo summary"):
        check_summary_path(tmp_path / "list.json")
