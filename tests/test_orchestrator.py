"""run_all_comparison.py: bad input, resume after a kill, failures, timeouts, --set, Ray.

Most tests point the hidden --runner-dir at fake runners (a few lines of
Python that write the protocol's files) so the matrix logic is tested in
seconds; one test runs the real REINFORCE runner end to end, and one a matrix
on a token-authenticated two-node Ray cluster started on this machine.
"""
from __future__ import annotations

import fcntl
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from conftest import ROOT, assert_usage_error, run_dir, run_script
from rlsuite import algorithms

FAKE_RUNNER = textwrap.dedent('''
    """Fake runner: the runner CLI's shape, the protocol's files, no training.

    FAKE_SLEEP seconds of "training"; FAKE_FAIL_SEEDS comma list of seeds that
    fail; FAKE_STUBBORN_CHILD=1 spawns a worker that ignores SIGTERM;
    FAKE_PIDS a folder where every process started records its pid. Under
    Ray it writes ray_node.txt: the pid of the raylet that started it, which
    tells the nodes of a cluster on one machine apart.
    """
    import argparse, json, os, signal, subprocess, sys, time
    from pathlib import Path

    ALGO = Path(__file__).name.removesuffix("_benchmark.py")
    p = argparse.ArgumentParser()
    for name in ("--env", "--seed", "--results-dir", "--video-dir", "--total-steps", "--eval-every",
                 "--learning-rate", "--num-workers"):
        p.add_argument(name)
    p.add_argument("--anneal-lr", action=argparse.BooleanOptionalAction)
    p.add_argument("--progress", action=argparse.BooleanOptionalAction)
    p.add_argument("--overwrite", action="store_true")
    args = p.parse_args()
    run = Path(args.results_dir) / args.env / ALGO / f"seed_{args.seed}"
    run.mkdir(parents=True, exist_ok=True)
    pids = os.environ.get("FAKE_PIDS")
    if pids:
        Path(pids, f"runner_{os.getpid()}").touch()
    if os.environ.get("FAKE_STUBBORN_CHILD"):
        child = subprocess.Popen([sys.executable, "-c",
            "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(120)"])
        Path(pids, f"worker_{child.pid}").touch()

    def summary(status, error=None):
        (run / "summary.json").write_text(json.dumps({
            "algo": ALGO, "env_id": args.env, "seed": int(args.seed), "status": status,
            "total_steps": 2000, "train_time_s": 0.5, "solved": status == "completed",
            "steps_to_solve": 1000 if status == "completed" else None,
            "time_to_solve_s": 0.25 if status == "completed" else None, "final_eval_mean": 500.0,
            "final_eval_std": 0.0, "final_eval_episodes": 100, "last100_train_return": 200.0,
            "error": error}))

    def on_term(signum, frame):
        summary("interrupted", "interrupted by signal")
        sys.exit(130)

    signal.signal(signal.SIGTERM, on_term)
    (run / "argv.json").write_text(json.dumps(sys.argv[1:]))
    if os.environ.get("RAY_RAYLET_PID"):
        (run / "ray_node.txt").write_text(os.environ["RAY_RAYLET_PID"])
    for name in ("summary.json",):
        (run / name).unlink(missing_ok=True)
    time.sleep(float(os.environ.get("FAKE_SLEEP", "0")))
    if args.seed in os.environ.get("FAKE_FAIL_SEEDS", "").split(","):
        print("Traceback: something went wrong")
        summary("failed", "ValueError: boom")
        sys.exit(1)
    (run / "evals.csv").write_text("global_step,train_time_s,mean_return,std_return,episodes\\n"
                                   "1000,0.25,480.0,1.0,20\\n2000,0.5,500.0,0.0,20\\n")
    (run / "episodes.csv").write_text("global_step,train_time_s,episode,return,length\\n"
                                      "100,0.1,1,100.0,100\\n300,0.3,2,200.0,200\\n")
    summary("completed")
    print("fake run completed")
''')


def fake_runners(folder: Path, algos=algorithms.NAMES) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for algo in algos:
        (folder / f"{algo}_benchmark.py").write_text(FAKE_RUNNER)
    return folder


def orchestrate(tmp_path, *args, env=None, runners=None, timeout=120):
    """Run the orchestrator on fake runners; results in tmp_path/results."""
    runners = runners or fake_runners(tmp_path / "runners")
    cmd = [sys.executable, str(ROOT / "run_all_comparison.py"), "--runner-dir", str(runners),
           "--results-dir", str(tmp_path / "results"), "--report-dir", str(tmp_path / "report"),
           "--no-progress", *map(str, args)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=tmp_path,
                          env=dict(os.environ, **(env or {})))


def summary_of(results: Path, algo: str, seed: int) -> dict:
    return json.loads((run_dir(results, algo, seed) / "summary.json").read_text())


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except OSError:
        return False
    return state != "Z"


# -- bad input ---------------------------------------------------------------------------

def test_unknown_algorithm_exits_2(tmp_path):
    proc = run_script("run_all_comparison.py", "--algos", "ppo,dqn", "--results-dir", tmp_path / "r")
    assert_usage_error(proc, "--algos", "'dqn'", "policy_gradient, a2c, a3c, ppo, trpo")
    assert not (tmp_path / "r").exists()


def test_unknown_env_exits_2(tmp_path):
    proc = run_script("run_all_comparison.py", "--envs", "CartPol-v1", "--results-dir", tmp_path / "r")
    assert_usage_error(proc, "--envs", "'CartPol-v1'", "CartPole-v1")


def test_non_integer_seeds_exit_2(tmp_path):
    for seeds in ("1,two", "1.5", "5-1", "-3"):
        proc = run_script("run_all_comparison.py", "--seeds", seeds, "--results-dir", tmp_path / "r")
        assert_usage_error(proc, "--seeds")


def test_set_names_one_of_the_five_algorithms(tmp_path):
    proc = run_script("run_all_comparison.py", "--set", "dqn.learning_rate=1e-3", "--dry-run")
    assert_usage_error(proc, "--set", "'dqn'")
    proc = run_script("run_all_comparison.py", "--set", "ppo.learning_rate", "--dry-run")
    assert_usage_error(proc, "--set", "ALGO.FIELD=VALUE")


def test_set_of_a_flag_the_runner_lacks_exits_2(tmp_path):
    proc = orchestrate(tmp_path, "--algos", "ppo", "--set", "ppo.clip_coeff=0.2", "--dry-run")
    assert_usage_error(proc, "--set", "--clip-coeff")


def test_no_runner_for_any_requested_algorithm_exits_2(tmp_path):
    runners = fake_runners(tmp_path / "runners", algos=("policy_gradient",))
    proc = orchestrate(tmp_path, "--algos", "a3c,trpo", runners=runners)
    assert_usage_error(proc, "--algos", "a3c_benchmark.py", "not found")


# -- the matrix ----------------------------------------------------------------------------

def test_set_maps_to_the_runners_flags(tmp_path):
    proc = orchestrate(tmp_path, "--algos", "ppo", "--seeds", "3", "--set", "ppo.learning_rate=3e-4",
                       "--set", "ppo.anneal_lr=false", "--total-steps", 2000, "--no-aggregate")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    argv = json.loads((run_dir(tmp_path / "results", "ppo", 3) / "argv.json").read_text())
    assert argv[argv.index("--learning-rate") + 1] == "3e-4"
    assert "--no-anneal-lr" in argv and "--no-progress" in argv
    assert argv[argv.index("--total-steps") + 1] == "2000"


def test_an_a3c_run_takes_one_slot_per_worker_capped_at_jobs(tmp_path):
    proc = orchestrate(tmp_path, "--algos", "a3c,ppo", "--seeds", "1", "--jobs", "4",
                       "--set", "a3c.num_workers=3", "--dry-run")
    assert "a3c CartPole-v1 seed 1 [3 slot(s), " in proc.stdout
    assert "ppo CartPole-v1 seed 1 [1 slot(s), " in proc.stdout
    proc = orchestrate(tmp_path, "--algos", "a3c", "--seeds", "1", "--jobs", "2",
                       "--set", "a3c.num_workers=3", "--dry-run")
    assert "[2 slot(s), " in proc.stdout


def test_an_a3c_run_takes_the_slots_of_its_presets_worker_count(tmp_path):
    # A 16-core machine, whatever this one has: os.cpu_count() patched before anything imports.
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text("import os\nos.cpu_count = lambda: 16\n")
    env = {"PYTHONPATH": os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")]))}
    # The Pendulum-v1 entry fixes num_workers = 2; CartPole-v1 has no entry (one worker per core).
    proc = orchestrate(tmp_path, "--algos", "a3c", "--envs", "Pendulum-v1,CartPole-v1", "--seeds", "1",
                       "--jobs", "8", "--dry-run", env=env)
    assert "a3c Pendulum-v1 seed 1 [2 slot(s), " in proc.stdout
    assert "a3c CartPole-v1 seed 1 [8 slot(s), " in proc.stdout
    proc = orchestrate(tmp_path, "--algos", "a3c", "--envs", "Pendulum-v1", "--seeds", "1", "--jobs", "8",
                       "--set", "a3c.num_workers=3", "--dry-run", env=env)
    assert "a3c Pendulum-v1 seed 1 [3 slot(s), " in proc.stdout


def test_a_failed_run_does_not_stop_the_others_and_is_listed(tmp_path):
    runners = fake_runners(tmp_path / "runners", algos=("policy_gradient", "ppo"))
    proc = orchestrate(tmp_path, "--algos", "policy_gradient,ppo,trpo", "--seeds", "1-3",
                       env={"FAKE_FAIL_SEEDS": "2"}, runners=runners)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    results = tmp_path / "results"
    for algo in ("policy_gradient", "ppo"):
        assert summary_of(results, algo, 1)["status"] == "completed"
        assert summary_of(results, algo, 3)["status"] == "completed"
        assert summary_of(results, algo, 2)["status"] == "failed"
    failures = (results / "failures.txt").read_text()
    assert "policy_gradient CartPole-v1 seed 2" in failures and "ValueError: boom" in failures
    assert "Traceback: something went wrong" in failures  # the log's tail
    assert "trpo_benchmark.py not found" in failures
    assert "FAILED  ppo CartPole-v1 seed 2: failed: ValueError: boom" in proc.stdout
    # The aggregator still writes the report from the runs that completed.
    report = (tmp_path / "report" / "report.md").read_text()
    assert "| CartPole-v1 | ppo | 2/2 |" in report
    assert "policy_gradient/seed_2`: status 'failed' (ValueError: boom)" in report


def test_strict_stops_the_matrix_at_the_first_failure(tmp_path):
    proc = orchestrate(tmp_path, "--algos", "ppo", "--seeds", "1-3", "--jobs", "1", "--strict",
                       "--no-aggregate", env={"FAKE_FAIL_SEEDS": "1"})
    assert proc.returncode == 1
    assert not run_dir(tmp_path / "results", "ppo", 2).exists()
    assert not run_dir(tmp_path / "results", "ppo", 3).exists()


def test_timeout_ends_the_runner_and_its_workers(tmp_path):
    pids = tmp_path / "pids"
    pids.mkdir()
    proc = orchestrate(tmp_path, "--algos", "ppo", "--seeds", "1", "--timeout", "2", "--grace", "1",
                       "--no-aggregate",
                       env={"FAKE_SLEEP": "60", "FAKE_STUBBORN_CHILD": "1", "FAKE_PIDS": str(pids)})
    assert proc.returncode == 1
    assert "timed out after" in proc.stdout
    assert summary_of(tmp_path / "results", "ppo", 1)["status"] == "interrupted"
    started = [int(p.name.split("_")[1]) for p in pids.iterdir()]
    assert len(started) == 2
    time.sleep(0.5)
    assert not any(alive(pid) for pid in started)


def test_default_timeout_scales_with_the_runs_estimate():
    """No --timeout: 4x the run's estimated wall time, at least an hour (a 5M-step Box2D run beside other
    runs takes more than an hour); --timeout wins; an untimed run gets the hour."""
    import run_all_comparison as orch

    class Table:
        def estimate_s(self, algo, env_id, steps, eval_every):
            return {"ppo": 1800.0, "trpo": 60.0}.get(algo)

    def spec(algo):
        return orch.RunSpec(algo, "BipedalWalker-v3", 1, Path("r"), ["x"], steps=5_000_000)

    assert orch.run_timeout(spec("ppo"), Table(), None) == 4 * 1800.0
    assert orch.run_timeout(spec("trpo"), Table(), None) == 3600.0
    assert orch.run_timeout(spec("a2c"), Table(), None) == 3600.0
    assert orch.run_timeout(spec("ppo"), Table(), 5.0) == 5.0


def test_interrupted_matrix_resumes_without_redoing_finished_runs(tmp_path):
    """Ctrl-C part-way: no process left, finished runs kept; the same command completes the rest."""
    pids = tmp_path / "pids"
    pids.mkdir()
    runners = fake_runners(tmp_path / "runners")
    args = ["--algos", "policy_gradient,ppo", "--seeds", "1-4", "--jobs", "2", "--grace", "2"]
    cmd = [sys.executable, str(ROOT / "run_all_comparison.py"), "--runner-dir", str(runners),
           "--results-dir", str(tmp_path / "results"), "--report-dir", str(tmp_path / "report"),
           "--no-progress", *args]
    env = dict(os.environ, FAKE_SLEEP="1.5", FAKE_STUBBORN_CHILD="1", FAKE_PIDS=str(pids))
    orchestrator = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                    cwd=tmp_path, env=env)
    results = tmp_path / "results"
    summaries = lambda: sorted(results.glob("*/*/seed_*/summary.json"))  # noqa: E731
    deadline = time.monotonic() + 60
    while len([p for p in summaries() if '"completed"' in p.read_text()]) < 2:
        assert time.monotonic() < deadline and orchestrator.poll() is None
        time.sleep(0.1)
    time.sleep(0.5)  # the next pair is running now
    orchestrator.send_signal(signal.SIGINT)
    out, err = orchestrator.communicate(timeout=60)
    assert orchestrator.returncode == 130, out + err
    assert "run the same command again to continue" in err
    time.sleep(0.5)
    started = [int(p.name.split("_")[1]) for p in pids.iterdir()]
    assert started and not any(alive(pid) for pid in started), "processes left behind"

    finished = {p: p.read_bytes() for p in summaries() if '"completed"' in p.read_text()}
    stamps = {p: p.stat().st_mtime_ns for p in finished}
    assert 2 <= len(finished) < 8
    interrupted = [p for p in summaries() if '"interrupted"' in p.read_text()]
    assert interrupted, "the runs in flight should say interrupted"

    again = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, timeout=60,
                           env=dict(os.environ, FAKE_SLEEP="0"))
    assert again.returncode == 0, again.stdout + again.stderr
    assert f"{len(finished)} already completed, {8 - len(finished)} to run" in again.stdout
    for path, content in finished.items():
        assert path.read_bytes() == content and path.stat().st_mtime_ns == stamps[path]
    assert all('"completed"' in p.read_text() for p in summaries()) and len(summaries()) == 8
    assert (tmp_path / "report" / "report.md").is_file()


# -- the real runner ---------------------------------------------------------------------------

def test_policy_gradient_matrix_end_to_end(tmp_path):
    proc = run_script("run_all_comparison.py", "--algos", "policy_gradient", "--seeds", "1,2",
                      "--total-steps", 2000, "--eval-every", 1000, "--eval-episodes", 2,
                      "--results-dir", tmp_path / "results", "--report-dir", tmp_path / "report",
                      "--video-dir", tmp_path / "videos", "--no-progress", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for seed in (1, 2):
        summary = summary_of(tmp_path / "results", "policy_gradient", seed)
        assert summary["status"] == "completed" and summary["total_steps"] >= 2000
        assert f"done    policy_gradient CartPole-v1 seed {seed}: " in proc.stdout
        assert (run_dir(tmp_path / "results", "policy_gradient", seed) / "runner.log").is_file()
    assert "| CartPole-v1 | policy_gradient |" in (tmp_path / "report" / "report.md").read_text()


def test_a_killed_orchestrator_takes_its_runners_down_with_their_rows_kept(tmp_path):
    """SIGKILL leaves the orchestrator no chance to stop its runners (each in a process group of
    its own): the kernel's parent-death signal must, or they run on as orphans."""
    results = tmp_path / "results"
    orchestrator = subprocess.Popen(
        [sys.executable, str(ROOT / "run_all_comparison.py"), "--algos", "policy_gradient", "--seeds", "1",
         "--total-steps", "10000000", "--results-dir", str(results), "--report-dir", str(tmp_path / "report"),
         "--video-dir", str(tmp_path / "videos"), "--no-progress", "--no-aggregate"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=tmp_path)
    folder = run_dir(results, "policy_gradient")
    deadline = time.monotonic() + 60
    while not ((folder / "episodes.csv").is_file()
               and len((folder / "episodes.csv").read_text().splitlines()) > 20):
        assert time.monotonic() < deadline and orchestrator.poll() is None
        time.sleep(0.1)
    orchestrator.kill()
    orchestrator.wait()
    deadline = time.monotonic() + 30
    while not (folder / "summary.json").is_file():
        assert time.monotonic() < deadline, "the runner outlived its orchestrator"
        time.sleep(0.1)
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["status"] == "interrupted"
    assert summary["total_steps"] >= 20
    deadline = time.monotonic() + 30
    with open(folder / ".lock") as lock:  # the runner holds it until it exits
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                assert time.monotonic() < deadline, "the runner did not exit"
                time.sleep(0.1)


def ray_home(tmp_path) -> dict:
    """A throwaway local cluster (``--address local``) writes ~/.ray/auth_token when there is none,
    after which every ``ray start --head`` on the machine requires it: give it a home of its own."""
    return {"HOME": str(tmp_path)}


def test_an_explicit_ray_address_where_nothing_listens_fails_at_once(tmp_path):
    pytest.importorskip("ray", reason="ray is not installed (pip install -r requirements-ray.txt)")
    import socket

    with socket.socket() as s:  # a port that was free a moment ago
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    started = time.monotonic()
    proc = run_script("run_all_comparison.py", "--backend", "ray", "--address", f"127.0.0.1:{port}",
                      "--algos", "ppo", "--seeds", "1", "--results-dir", tmp_path / "r", timeout=120)
    assert_usage_error(proc, "--address", "nothing answers at 127.0.0.1")
    assert time.monotonic() - started < 60  # Ray alone retries a dead address for minutes
    assert not (tmp_path / "r").exists()


def test_ray_backend_runs_a_tiny_matrix(tmp_path):
    pytest.importorskip("ray", reason="ray is not installed (pip install -r requirements-ray.txt)")
    proc = run_script("run_all_comparison.py", "--backend", "ray", "--address", "local", "--jobs", 2,
                      "--algos", "policy_gradient", "--seeds", "1-2", "--total-steps", 2000,
                      "--eval-every", 1000, "--eval-episodes", 2, "--no-aggregate", "--no-progress",
                      "--results-dir", tmp_path / "results", cwd=tmp_path, timeout=300,
                      env=ray_home(tmp_path))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "backend ray" in proc.stdout
    for seed in (1, 2):
        assert summary_of(tmp_path / "results", "policy_gradient", seed)["status"] == "completed"


def test_ray_ctrl_c_ends_every_runner_and_its_workers(tmp_path):
    pytest.importorskip("ray", reason="ray is not installed (pip install -r requirements-ray.txt)")
    pids = tmp_path / "pids"
    pids.mkdir()
    cmd = [sys.executable, str(ROOT / "run_all_comparison.py"), "--runner-dir", str(fake_runners(tmp_path / "r")),
           "--results-dir", str(tmp_path / "results"), "--no-progress", "--no-aggregate", "--grace", "2",
           "--backend", "ray", "--address", "local", "--jobs", "2", "--algos", "ppo", "--seeds", "1-3"]
    env = dict(os.environ, FAKE_SLEEP="60", FAKE_STUBBORN_CHILD="1", FAKE_PIDS=str(pids), **ray_home(tmp_path))
    orchestrator = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                    cwd=tmp_path, env=env)
    deadline = time.monotonic() + 90
    while len(list(pids.glob("worker_*"))) < 2:
        assert time.monotonic() < deadline and orchestrator.poll() is None
        time.sleep(0.2)
    orchestrator.send_signal(signal.SIGINT)
    out, err = orchestrator.communicate(timeout=60)
    assert orchestrator.returncode == 130, out + err
    time.sleep(0.5)
    started = [int(p.name.split("_")[1]) for p in pids.iterdir()]
    assert len(started) == 4 and not any(alive(pid) for pid in started), "processes left behind"
    for seed in (1, 2):
        assert summary_of(tmp_path / "results", "ppo", seed)["status"] == "interrupted"
    assert not run_dir(tmp_path / "results", "ppo", 3).exists()


# -- a token-authenticated two-node Ray cluster on this machine ---------------------------

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def session_members(sid: int) -> list[int]:
    """Live processes of session ``sid`` (Ray's workers have process groups of their own, not sessions)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if fields[0] != "Z" and int(fields[3]) == sid:
                found.append(int(entry.name))
    return found


def start_ray_node(nodes: list, args: list[str], log: Path, env: dict) -> None:
    """``ray start ... --block`` in a session of its own, added to ``nodes``; returns once it is up."""
    ray_cli = Path(sys.executable).with_name("ray")
    with log.open("w") as out:
        nodes.append(subprocess.Popen([str(ray_cli if ray_cli.exists() else shutil.which("ray")), "start",
                                       *args, "--block"], stdout=out, stderr=subprocess.STDOUT, env=env,
                                      start_new_session=True))
    deadline = time.monotonic() + 60
    while "Ray runtime started" not in log.read_text():
        assert nodes[-1].poll() is None and time.monotonic() < deadline, f"ray start failed:\n{log.read_text()}"
        time.sleep(0.5)


@pytest.fixture
def ray_two_nodes(tmp_path):
    """A head and a worker node (one CPU each) sharing a fresh token from a file under tmp_path.

    Never the user's ~/.ray (RAY_AUTH_TOKEN_PATH wins over it), never ``ray stop``: it
    stops every Ray process on the machine, other people's clusters too. Each node is
    ``ray start --block`` in a session of its own, and the teardown kills exactly the
    processes of those sessions (the raylet's workers included). The temporary dirs
    are short (/tmp/rlsuite_ray_...): Ray's socket paths must fit in 107 bytes.
    """
    pytest.importorskip("ray", reason="ray is not installed (pip install -r requirements-ray.txt)")
    token = secrets.token_hex(32)
    (tmp_path / "auth_token").write_text(token)
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_AUTH_TOKEN", "RAY_ADDRESS")}
    # the runners inherit the node's environment (not the driver's): FAKE_SLEEP keeps both busy
    env.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN_PATH=str(tmp_path / "auth_token"),
               RAY_USAGE_STATS_ENABLED="0", PYTHONUNBUFFERED="1", FAKE_SLEEP="2")
    temp = Path(tempfile.mkdtemp(prefix="rlsuite_ray_", dir="/tmp"))
    port = free_port()
    nodes = []
    try:
        start_ray_node(nodes, ["--head", "--port", str(port), "--num-cpus", "1", "--include-dashboard", "false",
                               "--temp-dir", str(temp / "head")], tmp_path / "head.log", env)
        start_ray_node(nodes, ["--address", f"127.0.0.1:{port}", "--num-cpus", "1",
                               "--temp-dir", str(temp / "worker")], tmp_path / "worker.log", env)
        yield SimpleNamespace(address=f"127.0.0.1:{port}", token=token)
    finally:
        for node in reversed(nodes):
            for pid in session_members(node.pid):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            node.wait(timeout=30)
        deadline = time.monotonic() + 10
        while any(session_members(node.pid) for node in nodes) and time.monotonic() < deadline:
            time.sleep(0.2)
        shutil.rmtree(temp, ignore_errors=True)


def test_ray_two_node_cluster_with_token_auth(tmp_path, ray_two_nodes):
    address = ray_two_nodes.address
    runners = fake_runners(tmp_path / "runners", ["ppo", "a2c"])
    matrix = ["--backend", "ray", "--address", address, "--algos", "ppo,a2c", "--seeds", "1-2", "--no-aggregate"]
    # the driver's token from the environment, the nodes' from a file: the same token
    proc = orchestrate(tmp_path, *matrix, runners=runners,
                       env={"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": ray_two_nodes.token})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "4 to run, 2 slot(s), backend ray" in proc.stdout  # both nodes' CPUs
    runs = [run_dir(tmp_path / "results", algo, seed) for algo in ("ppo", "a2c") for seed in (1, 2)]
    assert all(json.loads((r / "summary.json").read_text())["status"] == "completed" for r in runs)
    raylets = {(r / "ray_node.txt").read_text() for r in runs}
    assert len(raylets) == 2, f"every run on one node: {raylets}"

    # refused: no token, then another token; one line each, no 20 lines of C++ warnings.
    # RAY_gcs_server_port_wait_time_s: Ray's own retry budget (20 s by default) cut to 2 s.
    quick = {"RAY_gcs_server_port_wait_time_s": "2", "RAY_AUTH_TOKEN": ""}
    proc = orchestrate(tmp_path, *matrix, "--overwrite", runners=runners,
                       env={**quick, "RAY_AUTH_MODE": "disabled"})
    assert_usage_error(proc, "--address", address, "wants an auth token and this driver sent none",
                       "RAY_AUTH_MODE=token", "RAY_AUTH_TOKEN")
    proc = orchestrate(tmp_path, *matrix, "--overwrite", runners=runners,
                       env={**quick, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32)})
    assert_usage_error(proc, "--address", address, "refused the auth token from RAY_AUTH_TOKEN")
