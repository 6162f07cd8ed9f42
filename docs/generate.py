"""Regenerate the generated sections of the docs in place, or check that they are current.

Two kinds of section are generated, each between a pair of HTML comment markers
that GitHub does not render:

    <!-- hyperparameters:ALGO:start --> ... <!-- hyperparameters:ALGO:end -->
        one row per field of ALGO's config dataclass: the command-line flag, its
        default, and the field's docstring (the same text --help prints).

    <!-- results:ALGO:start --> ... <!-- results:ALGO:end -->
        ALGO's CartPole-v1 row of the aggregator's summary.csv as a table, and
        the learning-curve PNG found in the report folder, copied to docs/img/.

    <!-- sensitivity:ALGO:start --> ... <!-- sensitivity:ALGO:end -->
        ALGO's answer to the sensitivity exercise (sensitivity_study.py's doc_ALGO.md
        in --sensitivity-dir: which cells diverged, were unstable, slow, solved), its
        heat map copied to docs/img/sensitivity_ALGO.png; ALGO ``all``: the five
        algorithms side by side and the entropy sweep.

    <!-- variance-study:start --> ... <!-- variance-study:end -->
        the table variance_study.py wrote (variance.md in --variance-dir) and its
        plot, copied to docs/img/variance_study_cartpole.png.

    <!-- cross-env:SUITE:start --> ... <!-- cross-env:SUITE:end -->   (README.md only)
        the aggregator's cross-environment page (cross_env.md in --suite-report-dir)
        of a run of `run_all_comparison.py --suite SUITE`, its plots copied to
        docs/img/report_SUITE_<name>.png; SUITE is a name in suites.toml.

ALGO is a name in the registry (rlsuite/algorithms.py); its module is imported
from the repository root. A module that does not exist yet is skipped
with a warning and its sections are left as they are.

    python docs/generate.py                               # hyperparameter tables
    python docs/generate.py --report-dir results/report   # and the measured results
    python docs/generate.py --sensitivity-dir report/sensitivity   # the sensitivity sections
    python docs/generate.py --suite mujoco --suite-report-dir report/mujoco   # a suite's README section
    python docs/generate.py --check                       # exit 1 if a section is stale
"""
from __future__ import annotations

import ast
import csv
import dataclasses
import inspect
import math
import re
import shlex
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCS = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))

from rlsuite import algorithms, suites  # noqa: E402  (needs the repository root on sys.path)
from rlsuite.cli import OneLineParser, field_docs, flag  # noqa: E402
RESULTS_ENV = "CartPole-v1"
MARKER = re.compile(
    r"(<!-- (?P<kind>hyperparameters|results):(?P<algo>[\w-]+):start -->\n)(?P<body>.*?)"
    r"(<!-- (?P=kind):(?P=algo):end -->)",
    re.DOTALL,
)


class DocsError(Exception):
    """Bad input: printed as one line, exit status 2."""


def warn(message: str) -> None:
    print(f"generate.py: warning: {message}", file=sys.stderr)


# -- hyperparameter tables ----------------------------------------------------

def load_algorithm(algo: str):
    """The algorithm module, or None if its file is not in the repository yet."""
    if algo not in algorithms.ALGORITHMS:
        raise DocsError(f"marker names algorithm {algo!r}; known: {', '.join(algorithms.NAMES)}")
    try:
        return algorithms.get(algo).module()
    except ModuleNotFoundError as exc:
        if exc.name == algo:
            return None
        raise


def config_class(module):
    """The config dataclass of an algorithm module, as the registry names it."""
    return algorithms.get(module.__name__).config_class()


def format_default(value) -> str:
    """A default as it would be typed on the command line."""
    if isinstance(value, bool):
        return "on" if value else "off"
    if value is None:
        return "none"
    if isinstance(value, tuple):
        return ",".join(map(str, value))
    return str(value)


def cell(text: str) -> str:
    """Escape a Markdown table cell (GitHub honours \\| even inside code spans)."""
    return text.replace("|", "\\|").replace("\n", " ")


def computed_defaults(config_cls) -> dict[str, str]:
    """Source text of the defaults that are expressions, not literals (e.g. ``os.cpu_count() or 1``).

    Their value depends on the machine that imports the module, so the table shows the
    expression: a table generated on 2 cores must still pass --check on 8.
    """
    tree = ast.parse(inspect.getsource(config_cls))
    out = {}
    for node in tree.body[0].body:
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value is not None:
            try:
                ast.literal_eval(node.value)
            except ValueError:
                out[node.target.id] = ast.unparse(node.value)
    return out


def hyperparameter_table(config_cls) -> str:
    docs = field_docs(config_cls)
    computed = computed_defaults(config_cls)
    rows = ["| flag | default | meaning |", "|---|---|---|"]
    for f in dataclasses.fields(config_cls):
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        name = flag(f.name)
        if isinstance(default, bool):
            name = f"{name}` / `--no-{name[2:]}"
        shown = computed.get(f.name, format_default(default))
        rows.append(f"| `{name}` | `{cell(shown)}` | {cell(docs.get(f.name, ''))} |")
    return "\n".join(rows) + "\n"


def hyperparameter_section(algo: str):
    module = load_algorithm(algo)
    if module is None:
        warn(f"{algo}.py not found; its hyperparameter table is left as it is")
        return None
    cls = config_class(module)
    runner = f"{algo}_benchmark.py"
    return (f"Generated from `{cls.__name__}` in `{algo}.py` by `docs/generate.py`; "
            f"`python {runner} --help` prints the same.\n\n" + hyperparameter_table(cls))


# -- measured results ---------------------------------------------------------

def read_summary(report_dir: Path) -> list[dict]:
    path = report_dir / "summary.csv"
    if not path.is_file():
        raise DocsError(f"argument --report-dir: {path} not found; give the aggregator's output folder")
    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DocsError(f"argument --report-dir: cannot read {path}: {exc}") from None
    if not rows or "algo" not in rows[0] or "env_id" not in rows[0]:
        raise DocsError(f"argument --report-dir: {path} has no rows with env_id and algo columns")
    return rows


def format_value(text: str) -> str:
    if text is None or text.strip() == "":
        return "–"
    try:
        x = float(text)
    except ValueError:
        return cell(text)
    if not math.isfinite(x):
        return text
    if x == int(x) and abs(x) >= 1:
        return f"{int(x):,}"
    return f"{x:,.1f}" if abs(x) >= 100 else f"{x:.3g}"


def sync_image(source: Path, target: Path, write: bool, stale: list) -> None:
    """A report's plot as docs/img/<target>: a target that is missing or differs is named in
    ``stale``, and with ``write`` it is copied."""
    if target.is_file() and target.read_bytes() == source.read_bytes():
        return
    stale.append(f"img/{target.name}")
    if write:
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)


def find_curve(report_dir: Path, algo: str, pattern: str | None) -> Path | None:
    """The learning-curve PNG for RESULTS_ENV in the report folder (best guess unless ``pattern``)."""
    if pattern:
        matches = sorted(report_dir.glob(pattern))
        return matches[0] if matches else None
    env_short = RESULTS_ENV.split("-")[0].lower()

    def score(p: Path) -> tuple:
        rel = str(p.relative_to(report_dir)).lower()
        return (env_short in rel, algo in p.name.lower(), "curve" in rel or "learning" in rel,
                "step" in rel, -len(rel))

    pngs = [p for p in report_dir.rglob("*.png") if env_short in str(p.relative_to(report_dir)).lower()]
    return max(pngs, key=score) if pngs else None


def results_section(algo: str, report_dir: Path, rows: list[dict], curve_pattern, command,
                    docs_dir: Path, write: bool) -> tuple[str, list[str]]:
    """The section's Markdown (None: no row for ``algo``) and the stale image copies (when not writing)."""
    stale = []
    mine = [r for r in rows if r.get("env_id") == RESULTS_ENV and r.get("algo") == algo]
    if not mine:
        warn(f"no {RESULTS_ENV} row for {algo} in {report_dir / 'summary.csv'}; its results section "
             "is left as it is")
        return None, stale
    try:
        shown = report_dir.resolve().relative_to(ROOT).as_posix()
    except ValueError:
        shown = report_dir.as_posix()
    lines = []
    if command:
        lines += ["Produced by:", "", "```bash", command.strip(),
                  f"python docs/generate.py --report-dir {shown}", "```", ""]
    else:
        lines += [f"Generated by `python docs/generate.py --report-dir {shown}` from the "
                  "aggregator's `summary.csv`.", ""]
    row = mine[0]
    lines += ["| measure | value |", "|---|---|"]
    lines += [f"| `{k}` | {format_value(v)} |" for k, v in row.items() if k not in ("env_id", "algo")]
    curve = find_curve(report_dir, algo, curve_pattern)
    if curve is not None:
        target = docs_dir / "img" / f"report_{curve.name}"
        sync_image(curve, target, write, stale)
        rel = curve.relative_to(report_dir).as_posix()
        lines += ["", f"![Learning curve on {RESULTS_ENV} ({rel} in the report)](img/{target.name})"]
    else:
        warn(f"no {RESULTS_ENV} learning-curve PNG in {report_dir}")
    return "\n".join(lines) + "\n", stale


# -- driver -------------------------------------------------------------------

def regenerate(text: str, report, docs_dir: Path, write: bool) -> tuple[str, list[str]]:
    """The document with every generated section it holds rebuilt; and the stale images."""
    stale_images = []
    cache: dict = {}

    def replace(m: re.Match) -> str:
        kind, algo = m.group("kind"), m.group("algo")
        if kind == "hyperparameters":
            if ("h", algo) not in cache:
                cache[("h", algo)] = hyperparameter_section(algo)
            body = cache[("h", algo)]
        else:
            if algo not in algorithms.ALGORITHMS:
                raise DocsError(f"marker names algorithm {algo!r}; known: {', '.join(algorithms.NAMES)}")
            if report is None:
                return m.group(0)
            body, stale = results_section(algo, report["dir"], report["rows"], report["curve"],
                                          report["command"], docs_dir, write)
            stale_images.extend(stale)
        if body is None:
            return m.group(0)
        return m.group(1) + body + m.group(5)

    return MARKER.sub(replace, text), stale_images


def regenerate_with(commands: str, flags: str) -> str:
    """The opening of a README section pasted from a report: the commands that make it again."""
    return ("Generated by the suite's aggregator; regenerate with:\n\n```bash\n"
            f"{commands}\npython docs/generate.py {flags}\n```\n\n")


SUMMARY_MARKER = re.compile(r"(<!-- summary:start -->\n)(.*?)(<!-- summary:end -->)", re.DOTALL)


def summary_section(report_dir: Path, command: str | None) -> str:
    """The aggregator's summary table (summary.md, its title dropped) for the top-level README."""
    table = report_dir / "summary.md"
    if not table.is_file():
        raise DocsError(f"argument --report-dir: {table} not found; run aggregate_results.py")
    body = table.read_text(encoding="utf-8").split("\n", 1)[1].strip()
    commands = command or "python run_all_comparison.py"
    return (regenerate_with(commands, f"--report-dir {report_dir.as_posix()}")
            + f"{body}\n\n![Learning curves on CartPole-v1](docs/img/report_learning_curves_CartPole-v1.png)\n\n"
            "Every seed on its own (thin) with the median (thick): a mean over seeds can hide a run "
            "that solves and then falls back.\n\n"
            "![Every seed on CartPole-v1](docs/img/report_seed_curves_CartPole-v1.png)\n")


def cross_env_marker(suite: str) -> re.Pattern:
    """The README's pair of markers around SUITE's cross-environment section."""
    name = re.escape(suite)
    return re.compile(rf"(<!-- cross-env:{name}:start -->\n)(.*?)(<!-- cross-env:{name}:end -->)", re.DOTALL)


IMAGE_LINK = re.compile(r"!\[([^\]]*)\]\(([^)/]+\.png)\)")
# a link to a file beside the page (cross_env.csv): the report folder is not in the repository
FILE_LINK = re.compile(r"(?<!!)\[([^\]]*)\]\(([^):/#]+)\)")


def cross_env_section(report_dir: Path, suite: str, command: str | None, write: bool) -> tuple[str, list[str]]:
    """The aggregator's cross-environment page (cross_env.md) of a run of SUITE for the top-level
    README: its title dropped, its headings two levels down (the README's section holds one
    subsection per suite), its plots copied to docs/img/report_<suite>_<name>.png, its links to the
    report's other files (CSVs) shown as paths, since the report folder is not committed.
    Returns (the section, the images that changed)."""
    page = report_dir / "cross_env.md"
    if not page.is_file():
        raise DocsError(f"argument --suite-report-dir: {page} not found; run aggregate_results.py on a "
                        "results tree with two or more envs")
    body = page.read_text(encoding="utf-8").split("\n", 1)[1].strip()
    body = re.sub(r"^(#+) ", lambda m: "##" + m.group(1) + " ", body, flags=re.MULTILINE)
    changed = []

    def image(m):
        source, target = report_dir / m.group(2), DOCS / "img" / f"report_{suite}_{m.group(2)}"
        if source.is_file():
            sync_image(source, target, write, changed)
        return f"![{m.group(1)}](docs/img/{target.name})"

    body = IMAGE_LINK.sub(image, body)
    body = FILE_LINK.sub(lambda m: f"`{(report_dir / m.group(2)).as_posix()}`", body)
    commands = command or f"python run_all_comparison.py --suite {suite}"
    return (regenerate_with(commands, f"--suite {suite} --suite-report-dir {report_dir.as_posix()}")
            + f"{body}\n", changed)


SENSITIVITY_MARKER = re.compile(
    r"(<!-- sensitivity:(?P<algo>[\w-]+):start -->\n)(?P<body>.*?)(<!-- sensitivity:(?P=algo):end -->)",
    re.DOTALL)
SENSITIVITY_ALL = "all"


def check_sensitivity_markers(text: str, name: str) -> None:
    """Every sensitivity marker names a registry algorithm or ``all``, with or without the data."""
    for m in SENSITIVITY_MARKER.finditer(text):
        if m.group("algo") != SENSITIVITY_ALL and m.group("algo") not in algorithms.ALGORITHMS:
            raise DocsError(f"{name}: sensitivity marker names {m.group('algo')!r}; known: "
                            f"{', '.join(algorithms.NAMES)}, {SENSITIVITY_ALL}")


def sensitivity_section(algo: str, study_dir: Path, docs_dir: Path, write: bool):
    """(body, stale images): sensitivity_study.py's doc_<algo>.md, its heat maps copied to docs/img/
    as sensitivity_<name>.png. Body None (section left as it is) when the study has no such file."""
    source = study_dir / f"doc_{algo}.md"
    if not source.is_file():
        warn(f"{source} not found (the study has no {algo} cells yet); its sensitivity section is "
             "left as it is")
        return None, []
    body = source.read_text(encoding="utf-8")
    stale = []
    for name in re.findall(r"\(img/sensitivity_([\w-]+)\.png\)", body):
        plot = study_dir / f"heatmap_{name}.png"
        target = docs_dir / "img" / f"sensitivity_{name}.png"
        if not plot.is_file():
            raise DocsError(f"argument --sensitivity-dir: {plot} not found; run sensitivity_study.py "
                            "--report-only")
        sync_image(plot, target, write, stale)
    return body, stale


VARIANCE_MARKER = re.compile(r"(<!-- variance-study:start -->\n)(.*?)(<!-- variance-study:end -->)",
                             re.DOTALL)
VARIANCE_COMMAND = "python variance_study.py"
# The same study measured at gamma = 1, where the four estimators share one expectation
# (docs/03_policy_gradient.md, "What each estimator estimates").
VARIANCE_GAMMA1_MARKER = re.compile(
    r"(<!-- variance-study-gamma1:start -->\n)(.*?)(<!-- variance-study-gamma1:end -->)", re.DOTALL)
VARIANCE_GAMMA1_COMMAND = "python variance_study.py --gamma 1.0 --out results/studies/variance/CartPole-v1-gamma1"


def variance_section(variance_dir: Path, docs_dir: Path, write: bool, command: str = VARIANCE_COMMAND,
                     image: str = "variance_study_cartpole.png",
                     argument: str = "--variance-dir") -> tuple[str, list[str]]:
    """The study's Markdown table (its title dropped) and plot, with the command that made them."""
    table = variance_dir / "variance.md"
    if not table.is_file():
        raise DocsError(f"argument {argument}: {table} not found; run {command}")
    body = table.read_text(encoding="utf-8").split("\n", 1)[1].strip()
    stale = []
    plot = variance_dir / "variance.png"
    lines = [f"Regenerate with `{command}` (about a minute on one core), then "
             f"`python docs/generate.py {argument} {variance_dir.as_posix()}`:", "",
             "```bash", command, "```", "", body]
    if plot.is_file():
        sync_image(plot, docs_dir / "img" / image, write, stale)
        lines += ["", "![Gradient variance per estimator and snapshot (log scale)]"
                  f"(img/{image})"]
    return "\n".join(lines) + "\n", stale


def main(argv=None) -> int:
    parser = OneLineParser(
        prog="generate.py", description="Regenerate the marked sections of docs/*.md in place.")
    parser.add_argument("--check", action="store_true",
                        help="change nothing; exit 1 if any generated section is stale")
    parser.add_argument("--report-dir", metavar="DIR", default=None,
                        help="the aggregator's output folder (holds summary.csv); without it the "
                             "results sections are left as they are")
    parser.add_argument("--curve", metavar="GLOB", default=None,
                        help="glob (relative to --report-dir) of the learning-curve PNG to show "
                             "(default: the best-named *.png mentioning CartPole)")
    parser.add_argument("--report-command", metavar="CMD", default=None,
                        help="the command(s) that produced the report, shown in each results section")
    parser.add_argument("--variance-dir", metavar="DIR", default=None,
                        help="variance_study.py's output folder (holds variance.md); without it the "
                             "variance-study section is left as it is")
    parser.add_argument("--variance-gamma1-dir", metavar="DIR", default=None,
                        help="the same study's folder measured with --gamma 1.0; without it the "
                             "gamma = 1 section is left as it is")
    parser.add_argument("--sensitivity-dir", metavar="DIR", default=None,
                        help="sensitivity_study.py's output folder (holds doc_<algo>.md and the heat "
                             "maps); without it the sensitivity sections are left as they are")
    parser.add_argument("--suite-report-dir", metavar="DIR", default=None,
                        help="the aggregator's output folder for a results tree of two or more envs (holds "
                             "cross_env.md); without it the README's cross-environment section is left "
                             "as it is")
    parser.add_argument("--suite", metavar="NAME", default="classic",
                        help="the named suite (suites.toml) whose run --suite-report-dir holds: its "
                             "section is the one between <!-- cross-env:NAME:start/end --> in README.md")
    parser.add_argument("--suite-report-command", metavar="CMD", default=None,
                        help="the command(s) that produced that results tree, shown in the section")
    parser.add_argument("--docs-dir", metavar="DIR", default=str(DOCS),
                        help="folder of the Markdown docs to update")
    args = parser.parse_args(argv)
    try:
        docs_dir = Path(args.docs_dir)
        if not docs_dir.is_dir():
            raise DocsError(f"argument --docs-dir: {docs_dir} is not a folder")
        known = suites.load_suites()
        if args.suite not in known:  # checked before any section is written
            raise DocsError(f"argument --suite: unknown suite {args.suite!r}; known: {', '.join(known)}")
        report = None
        if args.sensitivity_dir is not None and not (Path(args.sensitivity_dir) / "classification.csv").is_file():
            raise DocsError(f"argument --sensitivity-dir: {Path(args.sensitivity_dir) / 'classification.csv'} "
                            "not found; give sensitivity_study.py's --out folder")
        if args.report_dir is not None:
            report_dir = Path(args.report_dir)
            report = {"dir": report_dir, "rows": read_summary(report_dir), "curve": args.curve,
                      "command": args.report_command}
        stale = []
        readme = ROOT / "README.md"
        if report is not None and docs_dir.resolve() == DOCS and readme.is_file():
            old = readme.read_text(encoding="utf-8")
            new = SUMMARY_MARKER.sub(
                lambda m: m.group(1) + summary_section(report["dir"], report["command"]) + m.group(3), old)
            seeds_png = report["dir"] / "seed_curves_CartPole-v1.png"
            if seeds_png.is_file():
                sync_image(seeds_png, DOCS / "img" / "report_seed_curves_CartPole-v1.png", not args.check, stale)
            if new != old:
                stale.append("../README.md")
                if not args.check:
                    readme.write_text(new, encoding="utf-8")
        if args.suite_report_dir is not None and docs_dir.resolve() == DOCS and readme.is_file():
            old = readme.read_text(encoding="utf-8")
            marker = cross_env_marker(args.suite)
            if not marker.search(old):
                raise DocsError(f"README.md has no <!-- cross-env:{args.suite}:start --> ... "
                                f"<!-- cross-env:{args.suite}:end --> section")
            body, changed = cross_env_section(Path(args.suite_report_dir), args.suite,
                                              args.suite_report_command, not args.check)
            stale.extend(changed)
            new = marker.sub(lambda m: m.group(1) + body + m.group(3), old)
            if new != old:
                stale.append(f"../README.md (cross-env:{args.suite})")
                if not args.check:
                    readme.write_text(new, encoding="utf-8")
        for path in sorted(docs_dir.glob("*.md")):
            old = path.read_text(encoding="utf-8")
            new, stale_images = regenerate(old, report, docs_dir, write=not args.check)
            if args.variance_dir is not None and VARIANCE_MARKER.search(new):
                body, more = variance_section(Path(args.variance_dir), docs_dir, not args.check)
                new = VARIANCE_MARKER.sub(lambda m: m.group(1) + body + m.group(3), new)
                stale_images.extend(more)
            check_sensitivity_markers(new, path.name)
            if args.sensitivity_dir is not None:
                def paste(m):
                    body, more = sensitivity_section(m.group("algo"), Path(args.sensitivity_dir), docs_dir,
                                                     not args.check)
                    stale_images.extend(more)
                    return m.group(0) if body is None else m.group(1) + body + m.group(4)
                new = SENSITIVITY_MARKER.sub(paste, new)
            if args.variance_gamma1_dir is not None and VARIANCE_GAMMA1_MARKER.search(new):
                body1, more = variance_section(Path(args.variance_gamma1_dir), docs_dir, not args.check,
                                               VARIANCE_GAMMA1_COMMAND, "variance_study_cartpole_gamma1.png",
                                               "--variance-gamma1-dir")
                new = VARIANCE_GAMMA1_MARKER.sub(lambda m: m.group(1) + body1 + m.group(3), new)
                stale_images.extend(more)
            if new != old:
                stale.append(path.name)
                if not args.check:
                    path.write_text(new, encoding="utf-8")
            stale.extend(stale_images)
    except DocsError as exc:
        print(f"generate.py: error: {exc}", file=sys.stderr)
        return 2
    if args.check:
        if stale:
            print("stale generated sections in: " + ", ".join(stale)
                  + "; run: python docs/generate.py" + (f" --report-dir {args.report_dir}" if report else "")
                  + (f" --sensitivity-dir {args.sensitivity_dir}" if args.sensitivity_dir else "")
                  + (f" --suite {args.suite} --suite-report-dir {args.suite_report_dir}"
                     if args.suite_report_dir else "")
                  + (f" --suite-report-command {shlex.quote(args.suite_report_command)}"
                     if args.suite_report_dir and args.suite_report_command else ""),
                  file=sys.stderr)
            return 1
        print("generated sections are up to date"
              + ("" if report else " (results sections not checked: no --report-dir)"))
        return 0
    print("updated: " + ", ".join(stale) if stale else "nothing to update")
    return 0


if __name__ == "__main__":
    sys.exit(main())
