"""The docs stay honest: named code exists, shown commands run, generated tables are current.

Algorithm files that have not been merged yet (a2c.py, ppo.py, ...) make the
checks that need them skip, with the reason, rather than fail.
"""
from __future__ import annotations

import ast
import builtins
import dataclasses
import functools
import importlib
import importlib.util
import re
import shlex
import shutil
import sys

import pytest

from conftest import ROOT, run_script
from rlsuite import algorithms

DOCS = ROOT / "docs"
MARKDOWN = sorted(DOCS.glob("*.md")) + [ROOT / "README.md"]
ALGOS = algorithms.NAMES
# which algorithm each page documents: its names may live in a module not merged yet
DOC_ALGO = {"04_a2c.md": "a2c", "05_a3c.md": "a3c", "06_ppo.md": "ppo", "07_trpo.md": "trpo",
            "08_ppo_in_rlhf.md": "ppo"}
# qualifiers that mark a name as another library's (np.mean(), torch.no_grad(), env.step())
FOREIGN = {"np", "numpy", "torch", "nn", "F", "optim", "gym", "gymnasium", "pd", "pandas", "plt",
           "matplotlib", "math", "random", "os", "sys", "json", "csv", "argparse", "dataclasses",
           "env", "envs", "dist", "tqdm", "imageio", "scipy"}
# bare library names a doc may mention
LIBRARY = {"Categorical", "Adam", "clip_grad_norm_", "log_softmax", "softmax", "argmax"}
NEEDS_DATA = ("--evaluate", "--report-dir", "--run-dir")


def _doc_id(path) -> str:
    return path.relative_to(ROOT).as_posix()


def _prose(text: str) -> str:
    """The Markdown without its fenced code blocks."""
    return re.sub(r"^(```|~~~).*?^\1\s*$", "", text, flags=re.DOTALL | re.MULTILINE)


def defined_names() -> set[str]:
    """Every function and class defined in the repository's own Python files (methods included)."""
    files = list(ROOT.glob("*.py")) + list((ROOT / "rlsuite").rglob("*.py"))
    files += list(DOCS.glob("*.py")) + list((ROOT / "bench").glob("*.py"))
    names = set()
    for path in files:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names.add(node.name)
    return names


def named_code(text: str) -> set[str]:
    """Names written as `name()` or `module.name(...)` in inline code spans of the prose."""
    found = set()
    for span in re.findall(r"`([^`\n]+)`", _prose(text)):
        m = re.fullmatch(r"([A-Za-z_][\w.]*)\(.*\)", span.strip())
        if m:
            found.add(m.group(1))
    return found


def missing_algorithms() -> list[str]:
    return [a for a in ALGOS if not (ROOT / f"{a}.py").is_file()]


@pytest.mark.parametrize("doc", MARKDOWN, ids=_doc_id)
def test_every_function_a_doc_names_exists_in_the_code(doc):
    defined = defined_names()
    unresolved = []
    for name in sorted(named_code(doc.read_text(encoding="utf-8"))):
        parts = name.split(".")
        if len(parts) > 1 and parts[0] in FOREIGN:
            continue
        last = parts[-1]
        if last in defined or last in LIBRARY or (len(parts) == 1 and hasattr(builtins, last)):
            continue
        unresolved.append(f"{name}()")
    algo = DOC_ALGO.get(doc.name)
    if unresolved and algo in missing_algorithms():
        pytest.skip(f"{algo}.py is not in this checkout yet; unresolved: {', '.join(unresolved)}")
    assert not unresolved, f"{_doc_id(doc)} names code that does not exist: {', '.join(unresolved)}"


def test_the_name_check_catches_a_misspelt_function():
    text = "Call `episode_weights()` and `np.mean()`, then `episode_wieghts()`.\n```bash\n`ignored()`\n```"
    assert named_code(text) == {"episode_weights", "np.mean", "episode_wieghts"}
    assert "episode_weights" in defined_names()
    assert "episode_wieghts" not in defined_names()


def shell_commands():
    """(doc, command) for every `python <script>.py ...` in a ```bash block of the docs and README."""
    out = []
    for doc in MARKDOWN:
        blocks = re.findall(r"^```bash\s*\n(.*?)^```", doc.read_text(encoding="utf-8"),
                            flags=re.DOTALL | re.MULTILINE)
        for block in blocks:
            for line in block.replace("\\\n", " ").splitlines():
                for segment in re.split(r"&&|;|\|\|", line):
                    try:
                        words = shlex.split(segment, comments=True)
                    except ValueError:
                        continue
                    if len(words) >= 2 and words[0] in ("python", "python3") and words[1].endswith(".py"):
                        command = " ".join(shlex.quote(w) for w in words)
                        if command not in {c for _, c in out}:
                            out.append((doc, command))
    return out


COMMANDS = shell_commands()


@functools.lru_cache(maxsize=None)
def script_help(script: str) -> str:
    """`python <script> --help`, run once per script."""
    proc = run_script(script, "--help", timeout=120)
    assert proc.returncode == 0, f"`python {script} --help` failed:\n{proc.stderr}"
    assert "usage:" in proc.stdout
    return proc.stdout


@pytest.mark.parametrize("doc,command", COMMANDS, ids=[f"{_doc_id(d)}: {c}" for d, c in COMMANDS])
def test_every_command_in_the_docs_runs(doc, command):
    words = shlex.split(command)
    script, args = words[1], words[2:]
    if not (ROOT / script).is_file():
        algo = script.removesuffix(".py").removesuffix("_benchmark")
        if algo in missing_algorithms():
            pytest.skip(f"{script} is not in this checkout yet ({algo}.py not merged)")
        pytest.fail(f"{_doc_id(doc)} shows `{command}` but {script} does not exist")
    help_text = script_help(script)
    # argparse acts on --help before it complains about unknown flags: check them against the help
    unknown = unknown_flags(args, help_text)
    assert not unknown, f"{_doc_id(doc)}: `{command}` uses flags {script} does not have: {unknown}"
    if "--help" in args or "-h" in args:
        return
    algo = script.removesuffix("_benchmark.py")
    if algo in ALGOS:
        # a runner: parse and validate the arguments exactly as the runner would, without training
        # (in this process: one torch import for all commands instead of one per command)
        from rlsuite.cli import UsageError, parse_args

        module = importlib.import_module(algo)
        config_cls = generate_module().config_class(module)
        try:
            parse_args(args, script, algo, config_cls)
        except UsageError as exc:
            pytest.fail(f"{_doc_id(doc)}: `{command}` is rejected: {exc}")
        except SystemExit as exc:
            pytest.fail(f"{_doc_id(doc)}: `{command}` does not parse (exit {exc.code})")
    elif not any(a in NEEDS_DATA for a in args):
        proc = run_script(script, *args, "--help", timeout=120)
        assert proc.returncode == 0, f"`{command} --help` failed:\n{proc.stderr}"


def unknown_flags(args, help_text: str) -> list[str]:
    flags = [a.split("=")[0] for a in args if a.startswith("--")]
    return [f for f in flags if not re.search(rf"(?<![\w-]){re.escape(f)}(?![\w-])", help_text)]


def test_the_flag_check_catches_a_flag_the_script_does_not_have():
    help_text = "  --seed N  seeds\n  --anneal-lr, --no-anneal-lr  decay\n  --total-steps N"
    assert unknown_flags(["--seed", "3", "--no-anneal-lr", "--total-steps=5"], help_text) == []
    assert unknown_flags(["--steps", "5", "--anneal"], help_text) == ["--steps", "--anneal"]


def test_the_docs_show_commands_to_check():
    scripts = {shlex.split(c)[1] for _, c in COMMANDS}
    assert {"policy_gradient_benchmark.py", "docs/generate.py", "policy_evolution.py"} <= scripts


def test_generated_doc_sections_are_up_to_date():
    proc = run_script("docs/generate.py", "--check", timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def table_rows(text: str, algo: str) -> dict[str, tuple[str, str]]:
    """flag -> (default, meaning) from the generated hyperparameter table of ``algo``."""
    m = re.search(rf"<!-- hyperparameters:{algo}:start -->\n(.*?)<!-- hyperparameters:{algo}:end -->",
                  text, re.DOTALL)
    assert m, f"no hyperparameter markers for {algo}"
    rows = {}
    for line in m.group(1).splitlines():
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]]
        if len(cells) == 3 and cells[0].startswith("`--"):
            rows[cells[0].strip("`").split("`")[0]] = (cells[1].strip("`"), cells[2])
    return rows


def test_reinforce_hyperparameter_table_matches_the_dataclass_defaults():
    import policy_gradient

    rows = table_rows((DOCS / "03_policy_gradient.md").read_text(encoding="utf-8"), "policy_gradient")
    fields = dataclasses.fields(policy_gradient.PolicyGradientConfig)
    assert len(rows) == len(fields)
    for f in fields:
        default, _ = rows["--" + f.name.replace("_", "-")]
        if isinstance(f.default, bool):
            assert default == ("on" if f.default else "off")
        elif isinstance(f.default, tuple):
            assert tuple(int(x) for x in default.split(",")) == f.default
        else:
            assert type(f.default)(default) == f.default, (f.name, default)


@functools.lru_cache(maxsize=None)
def generate_module():
    spec = importlib.util.spec_from_file_location("docs_generate", DOCS / "generate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def generate(*args) -> int:
    """docs/generate.py's main() in this process (torch is imported once, not per call)."""
    return generate_module().main([str(a) for a in args])


def copy_docs(tmp_path):
    target = tmp_path / "docs"
    shutil.copytree(DOCS, target, ignore=shutil.ignore_patterns("__pycache__"))
    return target


def test_check_mode_fails_when_a_table_default_is_edited(tmp_path, capsys):
    docs = copy_docs(tmp_path)
    page = docs / "03_policy_gradient.md"
    text = page.read_text(encoding="utf-8")
    assert "| `--gamma` | `0.99` |" in text
    page.write_text(text.replace("| `--gamma` | `0.99` |", "| `--gamma` | `0.95` |"), encoding="utf-8")
    assert generate("--check", "--docs-dir", docs) == 1
    assert "03_policy_gradient.md" in capsys.readouterr().err
    assert generate("--docs-dir", docs) == 0
    assert page.read_text(encoding="utf-8") == text


def test_results_section_is_filled_from_the_aggregator_report(tmp_path):
    docs = copy_docs(tmp_path)
    report = tmp_path / "report"
    (report / "curves").mkdir(parents=True)
    (report / "summary.csv").write_text(
        "env_id,algo,runs,runs_solved,steps_to_solve_median,time_to_solve_s_median,final_eval_mean\n"
        "CartPole-v1,policy_gradient,3,3,20854.0,6.43,500.0\n"
        "Acrobot-v1,policy_gradient,3,0,,,-90.5\n", encoding="utf-8")
    png = b"\x89PNG\r\n\x1a\n fake learning curve"
    (report / "curves" / "CartPole-v1_steps.png").write_bytes(png)
    assert generate("--report-dir", report, "--docs-dir", docs) == 0
    text = (docs / "03_policy_gradient.md").read_text(encoding="utf-8")
    section = text.split("<!-- results:policy_gradient:start -->")[1].split("<!-- results:policy_gradient:end -->")[0]
    assert "| `runs_solved` | 3 |" in section and "| `steps_to_solve_median` | 20,854 |" in section
    assert "-90.5" not in section  # another env's row
    ppo_page = docs / "08_ppo_in_rlhf.md"
    # the report has no ppo row: that section is left exactly as it was
    assert ppo_page.read_text(encoding="utf-8") == (DOCS / "08_ppo_in_rlhf.md").read_text(encoding="utf-8")
    assert "img/report_CartPole-v1_steps.png" in section
    assert (docs / "img" / "report_CartPole-v1_steps.png").read_bytes() == png
    assert generate("--check", "--report-dir", report, "--docs-dir", docs) == 0


def test_a_machine_dependent_default_is_shown_as_its_expression(tmp_path, monkeypatch):
    # a table generated on a 2-core machine must still pass --check on an 8-core one
    source = tmp_path / "fake_algo.py"
    source.write_text(
        "import os\nfrom dataclasses import dataclass\n\n\n@dataclass\nclass FakeConfig:\n"
        "    total_steps: int = 100\n    \"\"\"budget\"\"\"\n"
        "    num_workers: int = os.cpu_count() or 1\n    \"\"\"workers\"\"\"\n", encoding="utf-8")
    spec = importlib.util.spec_from_file_location("fake_algo", source)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "fake_algo", module)  # inspect finds the source through it
    spec.loader.exec_module(module)
    table = generate_module().hyperparameter_table(module.FakeConfig)
    assert "| `--num-workers` | `os.cpu_count() or 1` | workers |" in table
    assert "| `--total-steps` | `100` | budget |" in table


def test_missing_report_is_a_usage_error(tmp_path, capsys):
    docs = copy_docs(tmp_path)
    before = {p.name: p.read_bytes() for p in docs.glob("*.md")}
    assert generate("--report-dir", tmp_path / "nowhere", "--docs-dir", docs) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "--report-dir" in err
    assert {p.name: p.read_bytes() for p in docs.glob("*.md")} == before


def test_glossary_explains_every_logged_column():
    from rlsuite import records

    glossary = (DOCS / "README.md").read_text(encoding="utf-8").split("## Glossary of logged metrics")[1]
    columns = set(records.EPISODE_COLUMNS + records.UPDATE_COLUMNS + records.EVAL_COLUMNS + records.SUMMARY_KEYS)
    for algo in ALGOS:
        if (ROOT / f"{algo}.py").is_file():
            module = __import__(algo)
            columns |= set(getattr(module, "UPDATE_COLUMNS", [])) | set(getattr(module, "EPISODE_COLUMNS", []))
    missing = sorted(c for c in columns if f"`{c}`" not in glossary)
    assert not missing, f"docs/README.md glossary lacks: {missing}"


def test_every_updates_column_has_exactly_one_definition():
    """One row per column in the updates.csv glossary, whichever algorithms log it: a column
    means the same thing everywhere, so cross-algorithm plots compare like with like."""
    from rlsuite import algorithms, records

    section = (DOCS / "README.md").read_text(encoding="utf-8").split("### `updates.csv`")[1].split("\n### ")[0]
    rows = re.findall(r"^\| `(\w+)` \|", section, flags=re.MULTILINE)
    logged = list(records.UPDATE_COLUMNS)
    for name in algorithms.NAMES:
        logged += algorithms.get(name).module().UPDATE_COLUMNS
    for column in set(logged):
        assert rows.count(column) == 1, f"updates.csv column {column!r} has {rows.count(column)} glossary rows"
    for name in algorithms.NAMES:  # an algorithm's own column never repeats a common one
        assert not set(algorithms.get(name).module().UPDATE_COLUMNS) & set(records.UPDATE_COLUMNS), name


def github_anchor(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[`*]", "", heading.strip().lower())
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


@pytest.mark.parametrize("doc", MARKDOWN, ids=_doc_id)
def test_every_link_between_docs_points_at_an_existing_heading(doc):
    broken = []
    for target, anchor in re.findall(r"\]\(([\w./-]*\.md)?#([\w-]+)\)", _prose(doc.read_text(encoding="utf-8"))):
        path = (doc.parent / target) if target else doc
        if not path.is_file():
            continue  # a page not written yet; the name and command checks cover the rest
        headings = re.findall(r"^#{1,6} (.+)$", _prose(path.read_text(encoding="utf-8")), flags=re.MULTILINE)
        if anchor not in {github_anchor(h) for h in headings}:
            broken.append(f"{target}#{anchor}")
    assert not broken, f"{_doc_id(doc)} links to missing headings: {broken}"


def test_github_anchor_matches_githubs_rule():
    assert github_anchor("14. How the policy sharpens during training") == "14-how-the-policy-sharpens-during-training"
    assert github_anchor("Measured: how much each estimator lowers variance") == \
        "measured-how-much-each-estimator-lowers-variance"
    assert github_anchor("`episodes.csv`: one row per finished training episode") == \
        "episodescsv-one-row-per-finished-training-episode"


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-v"]))


def test_the_cross_env_page_becomes_a_readme_section(tmp_path):
    gen = generate_module()
    report = tmp_path / "report"
    report.mkdir()
    (report / "cross_env.md").write_text(
        "# Across environments\n\nScores from 2 environments.\n\n## Probability of improvement\n\n"
        "| P | a |\n|---|---|\n\n![Profile](performance_profile_all_envs.png)\n\n"
        "Machine-readable: [cross_env.csv](cross_env.csv), [Agarwal](https://arxiv.org/abs/2108.13264), "
        "[above](#probability-of-improvement).\n", encoding="utf-8")
    (report / "performance_profile_all_envs.png").write_bytes(b"not really a png")
    committed = gen.DOCS / "img" / "report_box2d_performance_profile_all_envs.png"
    before = committed.read_bytes() if committed.exists() else None
    body, changed = gen.cross_env_section(report, "box2d", "python run_all_comparison.py --suite box2d",
                                          write=False)
    assert "# Across environments" not in body and "Scores from 2 environments." in body
    # two levels down: the README's ## section holds a ### subsection per suite
    assert "\n#### Probability of improvement\n" in body
    # each suite's plots under their own names, so two suites' sections do not overwrite each other's
    assert "![Profile](docs/img/report_box2d_performance_profile_all_envs.png)" in body
    assert changed == ["img/report_box2d_performance_profile_all_envs.png"]
    assert "python run_all_comparison.py --suite box2d\n" in body
    assert f"python docs/generate.py --suite box2d --suite-report-dir {report.as_posix()}\n" in body
    # the report folder is not committed: a link to its CSV would be broken in the README
    assert f"Machine-readable: `{report.as_posix()}/cross_env.csv`," in body
    assert "[Agarwal](https://arxiv.org/abs/2108.13264)" in body and "[above](#probability-of-improvement)" in body
    # write=False reports the change and leaves the README's copy as it was
    assert (committed.read_bytes() if committed.exists() else None) == before
    with pytest.raises(gen.DocsError, match="cross_env.md not found"):
        gen.cross_env_section(tmp_path / "nothing", "box2d", None, write=False)


def test_a_suite_section_needs_a_known_suite_and_its_markers(tmp_path, capsys):
    report = tmp_path / "report"
    report.mkdir()
    (report / "cross_env.md").write_text("# Across environments\n\nScores.\n", encoding="utf-8")
    assert generate("--check", "--suite", "nope", "--suite-report-dir", report) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown suite 'nope'; known: cartpole, classic, box2d" in err
    assert generate("--check", "--suite", "nope") == 2  # checked even when no suite section is asked for
    assert "unknown suite 'nope'" in capsys.readouterr().err
    # the named suite exists but the README has no section for it
    assert "cross-env:cartpole:" not in (ROOT / "README.md").read_text(encoding="utf-8")
    assert generate("--check", "--suite", "cartpole", "--suite-report-dir", report) == 2
    assert "README.md has no <!-- cross-env:cartpole:start -->" in capsys.readouterr().err
    # --check: the real README's mujoco section differs from this page; nothing is written, and the
    # hint repeats the flags that would regenerate it
    before = (ROOT / "README.md").read_bytes()
    assert generate("--check", "--suite", "mujoco", "--suite-report-dir", report,
                    "--suite-report-command", "python run_all_comparison.py --suite mujoco --jobs 2") == 1
    assert (ROOT / "README.md").read_bytes() == before
    assert (f"../README.md (cross-env:mujoco); run: python docs/generate.py --suite mujoco --suite-report-dir "
            f"{report} --suite-report-command 'python run_all_comparison.py --suite mujoco --jobs 2'"
            ) in capsys.readouterr().err


def test_every_cross_env_section_of_the_readme_names_a_suite_and_its_images_exist():
    gen = generate_module()
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    names = re.findall(r"<!-- cross-env:([\w-]+):start -->", text)
    assert names and set(names) <= set(gen.suites.load_suites())
    for name in names:
        body = gen.cross_env_marker(name).search(text).group(2)
        for image in re.findall(r"\]\((docs/img/[^)]+\.png)\)", body):
            assert image.startswith(f"docs/img/report_{name}_") and (ROOT / image).is_file(), image
