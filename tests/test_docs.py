"""Every code block of README.md and docs/**/*.md runs.

The language of a fenced block says what happens to it:

* ``python``: executed with ``exec``. The blocks of one page share one namespace and run in
  order, so a later block may use what an earlier one defined.
* ``bash``: every command (``\\`` continuations joined, ``&&`` chains split, ``#`` comments
  dropped) must be a ``robust-rl ...`` command; it is shlex-split and run in this process
  through :func:`robust_rl.cli.main`, and must exit with code 0.
* ``yaml``: parsed. A block whose first line is ``# file: NAME`` is written to ``NAME`` first, so
  that a later block of the page can use it; a sweep file (a mapping with ``variants``) is read
  with :func:`robust_rl.sweep.load_sweep` and a suite file (a mapping with ``nominal_id``) with
  :func:`robust_rl.evaluation.load_suite`, so both must be valid.
* ``console`` and ``text``: shown, never run. Use them for what must not run here: installs, the
  test command itself, cluster commands, reproductions that take hours, synopses.
* MyST directives (```` ```{toctree} ````, ```` ```{eval-rst} ````, ...) are Sphinx's, not code.

Any other language (or none) fails :func:`test_every_block_has_a_known_language`, so no block
escapes by accident. A page runs in its own temporary folder holding a copy of
``experiments/configs`` and ``experiments/sweeps`` (the paths the commands name from the root of
a clone), and declares in :data:`EXPECTED` the files its blocks must leave there and in
:data:`OBJECTS` the objects its python blocks must leave in their namespace. The install
command the README promises is a ``console`` block; :func:`test_promised_command` runs its
``robust-rl`` part with a small budget.
"""

from __future__ import annotations

import glob
import re
import shlex
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from robust_rl.cli import main

ROOT = Path(__file__).resolve().parents[1]
PAGES = sorted(
    [ROOT / "README.md", *(p for p in (ROOT / "docs").rglob("*.md") if "_build" not in p.parts)]
)
RUN = ("python", "bash", "yaml")
SHOW = ("console", "text")

#: files each page's blocks leave in its folder (a page with runnable blocks must be listed)
EXPECTED: dict[str, tuple[str, ...]] = {
    "README.md": (
        "robust_dqn_cartpole.zip",
        "ppo_cartpole.zip",
        "report/suite.md",
        "report/grid.png",
        "report/attack.csv",
        "tiny_sweep.yaml",
        "runs/tiny-sweep/summary.md",
        "runs/tiny-sweep/best/robust-dqn.yaml",
    ),
    "docs/installation.md": (),
    "docs/getting_started.md": (
        "robust_dqn_cartpole.zip",
        "runs/robust-dqn/model.zip",
        "runs/robust-dqn/eval/suite.md",
    ),
    "docs/estimators.md": (),
    "docs/guide/robust_agents.md": (
        "robust_sac_pendulum.zip",
        "robust_dqn_dynamics.zip",
    ),
    "docs/guide/perturbed_envs.md": ("heavy_cartpole.yaml",),
    "docs/guide/robustness_reports.md": (
        "ppo_report/report.md",
        "ppo_report/report.json",
        "dqn_cartpole.zip",
        "cli_report/suite.md",
        "cli_report/grid.png",
    ),
    "docs/guide/sweeps.md": (
        "tiny_sweep.yaml",
        "runs/tiny-sweep/summary.md",
        "runs/tiny-sweep/trials.csv",
        "runs/tiny-sweep/best/robust-dqn.yaml",
        "runs/tiny-sweep/best/dqn.yaml",
        "runs/best/model.zip",
    ),
    "docs/guide/trust.md": ("dqn_cartpole.zip",),
    "docs/guide/run_folders.md": (
        "runs/dqn/model.zip",
        "runs/dqn/checkpoint.pkl",
        "runs/dqn/train_info.json",
        "runs/dqn/config.yaml",
    ),
    "docs/algorithms/robust_dqn.md": ("robust_dqn_cartpole.zip",),
    "docs/algorithms/robust_sac.md": ("robust_sac_pendulum.zip",),
    "docs/algorithms/robust_td3.md": ("robust_td3_pendulum.zip",),
}

#: objects the python blocks of a page must leave in its namespace: name -> type name
OBJECTS: dict[str, dict[str, str]] = {
    "README.md": {"model": "RobustDQN"},
    "docs/installation.md": {"robust_rl": "module"},
    "docs/getting_started.md": {"model": "RobustDQN"},
    "docs/estimators.md": {
        "spec": "EstimatorSpec",
        "res": "EntropicRiskResult",
        "mlmc": "EntropicRiskResult",
        "net": "SmallCNN",
    },
    "docs/guide/robust_agents.md": {"model": "RobustDQN"},
    "docs/guide/perturbed_envs.md": {"env": "DomainRandomization", "suite": "Suite"},
    "docs/guide/robustness_reports.md": {"report": "EvaluationResults", "c": "Comparison"},
    "docs/guide/sweeps.md": {"spec": "SweepSpec"},
    "docs/guide/trust.md": {"model": "DQN"},
    "docs/guide/run_folders.md": {"info": "dict"},
    "docs/algorithms/robust_dqn.md": {"model": "RobustDQN"},
    "docs/algorithms/robust_sac.md": {"model": "RobustSAC"},
    "docs/algorithms/robust_td3.md": {"model": "RobustTD3"},
}


@dataclass(frozen=True)
class Block:
    """One fenced code block of a page."""

    page: str
    line: int
    lang: str
    code: str

    @property
    def where(self) -> str:
        return f"{self.page}:{self.line}"


def _page_id(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


_FENCE = re.compile(r"^( {0,3})(`{3,}|~{3,})\s*([^`\s]*)[^`]*$")


def code_blocks(path: Path) -> list[Block]:
    """The fenced code blocks of a Markdown file, in order (language: first word of the info)."""
    page = _page_id(path)
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        m = _FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        indent, fence, lang = m.groups()
        start = i + 1
        body: list[str] = []
        i += 1
        while i < len(lines):
            closing = lines[i].strip()
            if closing.startswith(fence[0] * len(fence)) and set(closing) == {fence[0]}:
                break
            body.append(lines[i][len(indent) :] if lines[i].startswith(indent) else lines[i])
            i += 1
        blocks.append(Block(page, start, lang.lower(), "\n".join(body) + "\n"))
        i += 1
    return blocks


def commands(code: str) -> list[str]:
    """The commands of a ``bash`` block: continuations joined, ``&&`` split, comments dropped."""
    joined = re.sub(r"\\\n", " ", code)
    out = []
    for line in joined.splitlines():
        line = line.split(" #", 1)[0].strip() if not line.lstrip().startswith("#") else ""
        out += [part.strip() for part in line.split("&&") if part.strip()]
    return out


def run_cli(command: str, capsys: pytest.CaptureFixture[str]) -> str:
    """Run one ``robust-rl ...`` command in this process (wildcards expanded as a shell
    would); return its standard output."""
    argv = [m for a in shlex.split(command) for m in (sorted(glob.glob(a)) if "*" in a else [a])]
    assert argv and argv[0] == "robust-rl", (
        f"a bash block may only hold robust-rl commands (mark others `console`): {command!r}"
    )
    try:
        code = main(argv[1:])
    except SystemExit as exc:  # argparse refused the arguments
        code = exc.code if isinstance(exc.code, int) else 2
    out, err = capsys.readouterr()
    assert code == 0, f"{command!r} exited with {code}:\n{err[-2000:]}"
    return out


def check_yaml(block: Block, folder: Path) -> None:
    """Parse a yaml block, write it when it names a file, and read sweep and suite files."""
    from robust_rl.evaluation import load_suite
    from robust_rl.sweep import load_sweep

    data = yaml.safe_load(block.code)
    first = block.code.splitlines()[0] if block.code.strip() else ""
    m = re.match(r"#\s*file:\s*(\S+)\s*$", first)
    if m:
        path = folder / m.group(1)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(block.code, encoding="utf-8")
    else:  # relative paths in a shown sweep file start from experiments/sweeps/, as shipped
        path = folder / "experiments" / "sweeps" / f"_docs_{block.line}.yaml"
        path.write_text(block.code, encoding="utf-8")
    if isinstance(data, dict) and "variants" in data:
        spec = load_sweep(path)
        assert spec.variants, block.where
    elif isinstance(data, dict) and "nominal_id" in data:
        suite = load_suite(path)
        assert suite.test, block.where
    if not m:
        path.unlink()


def _workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for sub in ("configs", "sweeps"):
        src = ROOT / "experiments" / sub
        assert src.is_dir(), f"the pages name {src.relative_to(ROOT)}, which is missing"
        shutil.copytree(src, tmp_path / "experiments" / sub)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_pages_are_found() -> None:
    names = {_page_id(p) for p in PAGES}
    assert {"README.md", "docs/index.md", "docs/benchmarks.md"} <= names
    assert set(EXPECTED) <= names, f"EXPECTED names missing pages: {set(EXPECTED) - names}"


@pytest.mark.parametrize("path", PAGES, ids=_page_id)
def test_every_block_has_a_known_language(path: Path) -> None:
    for block in code_blocks(path):
        assert block.lang in RUN + SHOW or block.lang.startswith("{"), (
            f"{block.where}: fenced block with language {block.lang!r}; use one of "
            f"{RUN + SHOW} (see this module's docstring)"
        )


@pytest.mark.parametrize("path", PAGES, ids=_page_id)
def test_page_code_runs(
    path: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    page = _page_id(path)
    blocks = [b for b in code_blocks(path) if b.lang in RUN]
    if not blocks:
        assert not EXPECTED.get(page), f"{page} lists expected files but has no runnable block"
        return
    assert page in EXPECTED, f"{page} has runnable blocks: list the files they leave in EXPECTED"
    folder = _workdir(tmp_path, monkeypatch)
    namespace: dict[str, Any] = {"__name__": "__main__"}
    for block in blocks:
        if block.lang == "python":
            exec(compile(block.code, block.where, "exec"), namespace)
        elif block.lang == "bash":
            cmds = commands(block.code)
            assert cmds, f"{block.where}: empty bash block"
            for command in cmds:
                run_cli(command, capsys)
        else:
            check_yaml(block, folder)
    missing = [f for f in EXPECTED[page] if not (folder / f).is_file()]
    assert not missing, f"{page}: its examples did not write {missing}"
    made = {k: type(namespace[k]).__name__ for k in OBJECTS.get(page, {}) if k in namespace}
    assert made == OBJECTS.get(page, {}), f"{page}: its examples left {made}"


def _promised(readme: str) -> str:
    blocks = [b for b in code_blocks(ROOT / "README.md") if b.lang == "console"]
    found = [b.code.strip() for b in blocks if b.code.strip().startswith(readme)]
    assert len(found) == 1, f"README has no single console block starting {readme!r}"
    return found[0]


def test_readme_promises_the_test_command() -> None:
    assert _promised('pip install -e ".[test,all]"') == (
        'pip install -e ".[test,all]" && python -m pytest -q'
    )


def test_promised_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The README's one command: its install part is not run here; its ``robust-rl`` part runs
    as written, with a small budget added (``--timesteps`` for train, ``--episodes`` and
    ``--grid-episodes`` for evaluate), and must write the model and the report."""
    line = _promised("pip install torch==2.13.0 &&")
    parts = [p.strip() for p in line.split("&&")]
    assert parts[:2] == ["pip install torch==2.13.0", 'pip install -e ".[test,all]"']
    cli = parts[2:]
    assert [shlex.split(c)[:2] for c in cli] == [
        ["robust-rl", "train"],
        ["robust-rl", "evaluate"],
    ]
    folder = _workdir(tmp_path, monkeypatch)
    run_cli(cli[0] + " --timesteps 1500", capsys)
    out = run_cli(cli[1] + " --episodes 3 --grid-episodes 1", capsys)
    assert "heavy pole" in out and "Grid over the uncertainty set" in out
    argv = shlex.split(cli[1])
    model, report = Path(argv[2]), Path(argv[argv.index("--out") + 1])
    assert (folder / model).is_file()
    assert (folder / report / "suite.md").is_file() and (folder / report / "grid.md").is_file()
