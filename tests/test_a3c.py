"""A3C: learning, the shared step budget, and shutdown that leaves no process behind."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import numpy as np
import pytest
import torch

import a3c
from a3c import SharedAdam, SharedRMSprop
from rlsuite.nets import numpy_forward
from rlsuite.runner import saved_state
from conftest import ROOT, learning_seed, read_run, run_dir, run_script

ALGO = "a3c"


@pytest.mark.parametrize("name", ["adam", "rmsprop"])
def test_shared_optimizer_matches_its_torch_optimizer(name):
    """The hand-written updates are Adam and RMSprop (a2c.py's: decay 0.99, eps 1e-5, no momentum):
    on one process, the same trajectory as torch.optim's, their state in shared memory."""
    torch.manual_seed(0)
    ours = torch.nn.Linear(3, 2)
    ref = torch.nn.Linear(3, 2)
    ref.load_state_dict(ours.state_dict())
    if name == "adam":
        shared = SharedAdam(ours.parameters(), eps=1e-5)
        reference = torch.optim.Adam(ref.parameters(), lr=1e-2, eps=1e-5)
        state = [shared.step_count, *shared.exp_avg, *shared.exp_avg_sq]
    else:
        shared = SharedRMSprop(ours.parameters())
        reference = torch.optim.RMSprop(ref.parameters(), lr=1e-2, alpha=0.99, eps=1e-5)
        state = shared.square_avg
    start = [p.detach().clone() for p in ours.parameters()]
    for _ in range(5):
        x = torch.randn(8, 3)
        for net in (ours, ref):
            net.zero_grad()
            (net(x) ** 2).mean().backward()
        shared.step([p.grad for p in ours.parameters()], lr=1e-2)
        reference.step()
    for a, b, s0 in zip(ours.parameters(), ref.parameters(), start):
        torch.testing.assert_close(a, b)
        assert not torch.equal(a, s0)
    assert all(t.is_shared() for t in state)
    if name == "adam":
        assert float(shared.step_count) == 5


def test_rmsprop_first_step_by_hand():
    """From g2 = 0, one step sets g2 = 0.01 g^2, so theta moves by lr g / (0.1 |g| + eps): about
    10 lr against the gradient's sign, whatever its size, and not at all where g = 0."""
    theta = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
    opt = SharedRMSprop([theta])
    opt.step([torch.tensor([0.3, -4.0, 0.0], dtype=torch.float64)], lr=1e-3)
    expected = torch.tensor([1.0 - 1e-3 * 0.3 / (0.03 + 1e-5), -2.0 + 1e-3 * 4.0 / (0.4 + 1e-5), 0.5],
                            dtype=torch.float64)
    torch.testing.assert_close(theta, expected, atol=1e-12, rtol=0)
    torch.testing.assert_close(opt.square_avg[0], torch.tensor([0.0009, 0.16, 0.0], dtype=torch.float64))


@pytest.mark.parametrize("name, kind", [("adam", SharedAdam), ("rmsprop", SharedRMSprop)])
def test_the_optimizer_field_picks_the_shared_optimizer(name, kind):
    params = torch.zeros(4).share_memory_()
    assert isinstance(a3c.make_optimizer([params], a3c.A3CConfig(optimizer=name)), kind)


def test_an_unknown_optimizer_is_one_line_and_exit_2(tmp_path):
    proc = run_script("a3c_benchmark.py", "--optimizer", "sgd", "--results-dir", tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "--optimizer" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr


def test_segment_targets_at_lambda_1_are_the_n_step_returns():
    """By hand, gamma 0.5, a segment cut by t_max (bootstrap V = 8): R_2 = 3 + .5 * 8 = 7,
    R_1 = 2 + .5 * 7 = 5.5, R_0 = 1 + .5 * 5.5 = 3.75; A_t = R_t - V(s_t)."""
    adv, ret = a3c.segment_targets([1.0, 2.0, 3.0], [0.5, 1.0, 2.0], False, False, 8.0, 0.5, 1.0)
    np.testing.assert_allclose(ret, [3.75, 5.5, 7.0])
    np.testing.assert_allclose(adv, [3.25, 4.5, 5.0])
    adv, ret = a3c.segment_targets([1.0, 2.0, 3.0], [0.5, 1.0, 2.0], True, False, 8.0, 0.5, 1.0)
    np.testing.assert_allclose(ret, [2.75, 3.5, 3.0])  # terminated: no bootstrap


@pytest.mark.parametrize("terminated, truncated", [(False, False), (False, True), (True, False)])
def test_segment_targets_below_lambda_1_are_gae_by_hand(terminated, truncated):
    """gamma 0.5, lambda 0.5, V = [0.5, 1, 2], bootstrap 8 (dropped only if terminated):
    delta = r_t + 0.5 V(s_t+1) - V(s_t) = [1.0, 2.0, 1 + 0.5 * V_T];  A_t = delta_t + 0.25 A_t+1."""
    v_last = 0.0 if terminated else 8.0
    delta = np.array([1.0 + 0.5 * 1.0 - 0.5, 2.0 + 0.5 * 2.0 - 1.0, 3.0 + 0.5 * v_last - 2.0])
    a2 = delta[2]
    a1 = delta[1] + 0.25 * a2
    a0 = delta[0] + 0.25 * a1
    adv, ret = a3c.segment_targets([1.0, 2.0, 3.0], [0.5, 1.0, 2.0], terminated, truncated, 8.0, 0.5, 0.5)
    np.testing.assert_allclose(adv, [a0, a1, a2])
    np.testing.assert_allclose(ret, np.array([a0, a1, a2]) + [0.5, 1.0, 2.0])
    # lambda 0: one-step TD errors
    adv0, _ = a3c.segment_targets([1.0, 2.0, 3.0], [0.5, 1.0, 2.0], terminated, truncated, 8.0, 0.5, 0.0)
    np.testing.assert_allclose(adv0, delta)


@pytest.mark.slow
def test_a3c_learns_cartpole_with_two_workers_within_budget(results):
    seed = learning_seed(1)
    proc = run_script("a3c_benchmark.py", "--seed", seed, "--total-steps", "40000",
                      "--num-workers", "2", "--results-dir", results)
    assert proc.returncode == 0, proc.stderr
    assert "Warning" not in proc.stderr, proc.stderr  # the workers' logging stays quiet (no float() of a graph)
    r = read_run(run_dir(results, ALGO, seed))
    assert r["summary"]["status"] == "completed"
    assert r["summary"]["total_steps"] == 40000  # the shared counter stops the workers exactly
    # The workers' updates interleave as the OS schedules them, so no two runs share a trajectory
    # (docs/05_a3c.md). The bar is what a loaded machine still clears: on CI beside a training run,
    # one run peaked at 285.75 (evals 68.7 .. 285.75); a random policy scores about 22.
    assert r["evals"]["mean_return"].max() >= 200, r["evals"]
    episodes = r["episodes"]
    assert set(episodes["worker"]) == {0, 1}
    assert episodes["global_step"].max() <= 40000
    assert set(r["updates"]["worker"]) == {0, 1}


# -- shutdown ------------------------------------------------------------------

def processes_with_marker(marker: str) -> list[int]:
    """Pids whose environment carries ``marker``: the runner and everything it started."""
    needle = marker.encode()
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if needle in (entry / "environ").read_bytes():
                pids.append(int(entry.name))
        except OSError:  # gone, or not ours
            continue
    return pids


def wait_until(predicate, timeout: float, interval: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


FAULT_DIR = Path(__file__).resolve().parent / "a3c_fault"


def start_runner(results: Path, env_id: str = "CartPole-v1", **extra_env) -> tuple[subprocess.Popen, str]:
    """The A3C runner with 2 workers and a budget it will not reach; every process it starts
    (workers, spawn's resource tracker) carries ``marker`` in its environment, so the test can
    find them all."""
    marker = f"a3c-test-{uuid.uuid4().hex}"
    env = dict(os.environ, PYTHONUNBUFFERED="1", A3C_TEST_MARKER=marker, **extra_env)
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "a3c_benchmark.py"), "--env", env_id, "--total-steps", "100000000",
         "--num-workers", "2", "--results-dir", str(results)],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True,  # its own process group, as a shell job in a terminal would be
    )
    return proc, marker


def assert_everything_ended(marker, worker_pids):
    assert len(worker_pids) >= 2  # the 2 workers (and spawn's resource tracker)
    # every process that carried the marker is gone (a pid alone could be reused meanwhile)
    assert wait_until(lambda: not processes_with_marker(marker), timeout=2.0), processes_with_marker(marker)


def worker_pids(proc, marker) -> list[int]:
    return [pid for pid in processes_with_marker(marker) if pid != proc.pid]


@pytest.mark.slow
@pytest.mark.parametrize("how", ["sigterm_to_runner", "sigint_to_process_group"])
def test_signal_stops_every_process_within_seconds(results, tmp_path, how):
    proc, marker = start_runner(results)
    try:
        episodes_csv = run_dir(results, ALGO) / "episodes.csv"
        started = wait_until(lambda: episodes_csv.exists()
                             and len(episodes_csv.read_text().splitlines()) > 20, timeout=60)
        assert started, proc.stderr.read() if proc.poll() is not None else "no episodes after 60 s"
        # main + 2 workers (the scan can see them, so its emptiness below means something)
        workers = worker_pids(proc, marker)
        rows_before_signal = len(episodes_csv.read_text().splitlines()) - 1
        t0 = time.monotonic()
        if how == "sigterm_to_runner":
            proc.send_signal(signal.SIGTERM)
        else:  # what Ctrl-C in a terminal does: SIGINT to every process of the foreground group
            os.killpg(proc.pid, signal.SIGINT)
        _, stderr = proc.communicate(timeout=15)
        elapsed = time.monotonic() - t0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 130, stderr
    # generous: the point is that it stops instead of training on, not how fast a loaded machine is
    assert elapsed < 30.0, elapsed
    assert "Traceback" not in stderr, stderr
    assert_everything_ended(marker, workers)
    r = read_run(run_dir(results, ALGO))
    assert r["summary"]["status"] == "interrupted"
    # every row written before the signal is still there (and complete)
    assert len(r["episodes"]) >= rows_before_signal >= 20
    assert not r["episodes"].isna().any().any()
    assert len(r["updates"]) > 0


@pytest.mark.slow
def test_worker_exception_fails_the_run_and_stops_every_process(results, tmp_path):
    pythonpath = os.pathsep.join(filter(None, [str(FAULT_DIR), os.environ.get("PYTHONPATH")]))
    proc, marker = start_runner(results, "FaultyCartPole-v1", PYTHONPATH=pythonpath,
                                FAULTY_ENV_RAISE_AFTER="3000")
    try:
        assert wait_until(lambda: len(worker_pids(proc, marker)) >= 2 or proc.poll() is not None, timeout=60)
        workers = worker_pids(proc, marker)
        _, stderr = proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 1, stderr
    assert "faulty env raised after 3000 steps" in stderr  # the worker's traceback reaches the user
    assert_everything_ended(marker, workers)
    summary = read_run(run_dir(results, ALGO, env_id="FaultyCartPole-v1"))["summary"]
    assert summary["status"] == "failed"
    assert "WorkerError" in summary["error"] and "faulty env raised after 3000 steps" in summary["error"]
    assert np.isfinite(summary["total_steps"]) and summary["total_steps"] < 100000000


class FakeWorker:
    """Starts by sending this process a Ctrl-C, as a user pressing it mid start-up would."""

    def __init__(self):
        self.started = False

    def start(self):
        self.started = True
        os.kill(os.getpid(), signal.SIGINT)


def test_ctrl_c_during_worker_start_up_is_deferred_not_dropped():
    # Python's own Ctrl-C handler, whatever this process inherited: a shell that starts a command in
    # the background (`cmd &`, no job control) passes SIGINT ignored, and an ignored Ctrl-C is
    # rightly ignored after start-up too.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        workers = [FakeWorker(), FakeWorker()]
        with pytest.raises(KeyboardInterrupt):
            a3c.start_workers(workers)
        assert all(w.started for w in workers)  # every start ran; the signal came after, not lost
    finally:
        signal.signal(signal.SIGINT, previous)


def test_an_ignored_ctrl_c_stays_ignored_after_worker_start_up():
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        workers = [FakeWorker(), FakeWorker()]
        a3c.start_workers(workers)  # no KeyboardInterrupt: the process had chosen to ignore Ctrl-C
        assert all(w.started for w in workers)
    finally:
        signal.signal(signal.SIGINT, previous)


def test_worker_waiting_at_the_pause_gate_leaves_when_its_parent_is_gone():
    ctx = torch.multiprocessing.get_context("spawn")
    shared = a3c.Shared(None, None, None, None, counter=ctx.Value("q", 0), active=ctx.Value("i", 1),
                        paused=ctx.Value("i", 0), stop=ctx.Event(), pause=ctx.Event(), queue=None)
    shared.pause.set()  # the evaluation that never ends: its main process was SIGKILLed
    t0 = time.monotonic()
    a3c.wait_at_gate(shared, parent=os.getppid() + 1)  # a parent other than ours: it has died
    assert time.monotonic() - t0 < 1.0
    assert shared.paused.value == 0


def test_flat_parameters_keeps_the_values_and_makes_every_parameter_a_view_of_one_tensor():
    torch.manual_seed(0)
    cfg = a3c.A3CConfig()
    actor, critic = a3c.build_actor(4, None, cfg, action_dim=2), a3c.build_critic(4, cfg)
    before = [p.detach().clone() for p in list(actor.parameters()) + list(critic.parameters())]
    flat = a3c.flat_parameters(actor, critic).share_memory_()
    params = list(actor.parameters()) + list(critic.parameters())
    assert flat.numel() == sum(p.numel() for p in params) == sum(b.numel() for b in before)
    assert all(torch.equal(p, b) for p, b in zip(params, before))
    assert all(p.is_shared() and p.requires_grad and p.is_leaf for p in params)
    mean_fn = numpy_forward(actor.net)  # what the worker's sampler runs, on views of the parameters
    with torch.no_grad():  # step 2 of the worker: one copy_ into the flat tensor
        flat.copy_(torch.linspace(-0.1, 0.1, flat.numel()))
    assert actor.log_std[0].item() == pytest.approx(-0.1) and params[-1].item() == pytest.approx(0.1)
    obs = np.ones((1, 4), dtype=np.float32)
    np.testing.assert_allclose(mean_fn(obs), actor.net(torch.from_numpy(obs)).detach().numpy(), rtol=1e-5)
    # the runner saves each tensor in a storage of its own, not the whole flat tensor per view
    state = saved_state(actor)
    assert sum(t.untyped_storage().nbytes() for t in state.values()) == 4 * sum(p.numel() for p in actor.parameters())


def test_the_update_benchmark_runs_and_finds_both_adam_paths_bit_identical():
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "a3c_update.py"), "--rounds", "1", "--calls", "4"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "parameters bit-identical after 20 steps: True" in proc.stdout
    assert proc.stdout.count("ratio") == 3
