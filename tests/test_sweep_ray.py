"""The sweep's Ray backend the way a user runs it: a cluster started with ``ray start --head``.

One cluster for the module, on loopback, with token authentication (``RAY_AUTH_MODE=token``),
started with ``--block`` in its own process group so that the fixture stops exactly the
processes it started (``ray stop`` would stop every Ray instance of this user on the machine).
The sweep runs as a user runs it: ``robust-rl sweep FILE --backend ray --address HOST:PORT`` in
a separate process, with the token in its environment.
"""

from __future__ import annotations

import copy
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from robust_rl.cli import main
from robust_rl.sweep import RESULT_FILE, expand_sweep, parse_sweep, run_trial

#: PPO and A2C on Pendulum for 128 steps, one seed (as in test_sweep.py)
PENDULUM = {
    "name": "tiny-pendulum",
    "env": "robust_rl/Pendulum-v1",
    "seeds": [0],
    "evaluation": {"suite": "pendulum", "tune_episodes": 1, "episodes": 1},
    "variants": {
        "ppo": {
            "algo": "ppo",
            "params": {"n_timesteps": 128, "n_steps": 64, "batch_size": 32, "n_epochs": 1},
        },
        "a2c": {"algo": "a2c", "params": {"n_timesteps": 128, "n_steps": 8}},
    },
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", **extra)
    return env


@pytest.fixture(scope="module")
def cluster() -> Iterator[tuple[str, str]]:
    """``(address, token)`` of a one-node Ray cluster on 127.0.0.1 with token authentication."""
    pytest.importorskip("ray", reason="ray is not installed (pip install 'robust-rl[ray]')")
    token = secrets.token_hex(32)
    port = _free_port()
    temp = tempfile.mkdtemp(prefix="rr_ray_", dir="/tmp")  # short: Ray's socket paths
    log = Path(temp) / "ray_start.log"
    cmd = ["ray", "start", "--head", "--node-ip-address", "127.0.0.1", "--port", str(port)]
    cmd += ["--num-cpus", "2", "--include-dashboard", "false", "--disable-usage-stats"]
    cmd += ["--temp-dir", temp, "--block"]
    for flag in ("--ray-client-server-port", "--dashboard-agent-listen-port"):
        cmd += [flag, str(_free_port())]
    with open(log, "w") as fh:
        proc = subprocess.Popen(
            cmd,
            stdout=fh,
            stderr=subprocess.STDOUT,
            env=_clean_env(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=token),
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 120
        while "Ray runtime started" not in log.read_text():
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"ray start --head failed:\n{log.read_text()[-3000:]}")
            time.sleep(0.5)
        yield f"127.0.0.1:{port}", token
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            pass
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # whatever of the group is left
        except ProcessLookupError:
            pass
        shutil.rmtree(temp, ignore_errors=True)


def _sweep(args: list[str], env: dict[str, str]) -> tuple[subprocess.CompletedProcess, float]:
    """``robust-rl sweep ARGS`` in a fresh process; also the seconds ``main`` took."""
    code = (
        "import sys, time\n"
        "from robust_rl.cli import main\n"
        "t = time.perf_counter(); rc = main(sys.argv[1:])\n"
        "print(f'MAIN_SECONDS {time.perf_counter() - t:.2f}', file=sys.stderr); sys.exit(rc)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, "sweep", *args],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    line = [x for x in proc.stderr.splitlines() if x.startswith("MAIN_SECONDS ")][-1]
    return proc, float(line.split()[1])


def test_pendulum_sweep_on_a_ray_start_cluster(cluster: tuple[str, str], tmp_path: Path) -> None:
    address, token = cluster
    file = tmp_path / "tiny.yaml"
    file.write_text(yaml.safe_dump(PENDULUM, sort_keys=False))
    out = tmp_path / "out"
    env = _clean_env(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=token)
    args = [str(file), "--out", str(out), "--backend", "ray", "--address", address]
    proc, _ = _sweep([*args, "--max-parallel", "2"], env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "[done   ] ppo__seed0" in proc.stdout and "[done   ] a2c__seed0" in proc.stdout
    assert f"--backend ray --address {address}" in (out / "summary.md").read_text()
    # same seed, one thread: the cluster's trial equals one run here
    trial = expand_sweep(parse_sweep(copy.deepcopy(PENDULUM)))[0]
    here = run_trial(trial, tmp_path / "here")
    assert here.status == "done"
    remote = json.loads((out / trial.name / RESULT_FILE).read_text())
    assert remote["evaluation"] == here.evaluation.to_dict(compact=True)


def test_wrong_token_fails_fast_with_one_line(cluster: tuple[str, str], tmp_path: Path) -> None:
    address, _ = cluster
    file = tmp_path / "tiny.yaml"
    file.write_text(yaml.safe_dump(PENDULUM, sort_keys=False))
    env = _clean_env(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=secrets.token_hex(32))
    out = tmp_path / "out"
    proc, seconds = _sweep(
        [str(file), "--out", str(out), "--backend", "ray", "--address", address], env
    )
    assert proc.returncode == 2
    lines = [x for x in proc.stderr.splitlines() if not x.startswith("MAIN_SECONDS ")]
    assert lines == [
        f"robust-rl sweep: error: --address {address!r}: the Ray cluster refused this driver's "
        "authentication token (Unauthenticated: RPC error: InvalidAuthToken: Authentication "
        "token is missing or incorrect); a cluster with token authentication needs "
        "RAY_AUTH_MODE=token and its token in RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH or "
        "~/.ray/auth_token"
    ]  # one line: Ray's own retry warnings are held back
    assert seconds < 15  # Ray's own retries take 20 s and more
    assert not list(out.glob("*/result.json"))


def test_wrong_address_fails_within_seconds(tmp_path: Path, capsys, monkeypatch) -> None:
    pytest.importorskip("ray", reason="ray is not installed (pip install 'robust-rl[ray]')")
    file = tmp_path / "tiny.yaml"
    file.write_text(yaml.safe_dump(PENDULUM, sort_keys=False))
    port = _free_port()  # nothing listens there
    argv = ["sweep", str(file), "--out", str(tmp_path / "o"), "--backend", "ray"]
    start = time.perf_counter()
    rc = main([*argv, "--address", f"127.0.0.1:{port}"])
    assert rc == 2
    assert time.perf_counter() - start < 5
    err = capsys.readouterr().err
    assert err == (
        f"robust-rl sweep: error: --address '127.0.0.1:{port}': no Ray cluster reachable at "
        f"127.0.0.1:{port} (Connection refused); start one with `ray start --head` and pass the "
        "address it prints\n"
    )
    capsys.readouterr()
    assert main([*argv, "--address", "nohostport"]) == 2
    assert "expected HOST:PORT" in capsys.readouterr().err
    # auto: the address Ray would pick (here RAY_ADDRESS), checked the same way
    monkeypatch.setenv("RAY_ADDRESS", f"127.0.0.1:{port}")
    assert main([*argv, "--address", "auto"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("robust-rl sweep: error: --address 'auto (") and err.count("\n") == 1
    assert f":{port})': no Ray cluster reachable at" in err


@pytest.mark.parametrize("listener", ["closes", "silent", "http"])
def test_a_listener_that_is_not_ray_fails_within_seconds(
    listener: str, tmp_path: Path, capsys
) -> None:
    """Sweeps and the parallel evaluation alike: one line, in seconds, not Ray's minutes."""
    import threading

    pytest.importorskip("ray", reason="ray is not installed (pip install 'robust-rl[ray]')")
    from robust_rl.evaluation._parallel import _run_ray

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    port = server.getsockname()[1]
    held: list[socket.socket] = []

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            if listener == "closes":
                conn.close()
            elif listener == "http":
                conn.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n")
                conn.close()
            else:
                held.append(conn)  # accepts and never answers

    threading.Thread(target=serve, daemon=True).start()
    file = tmp_path / "tiny.yaml"
    file.write_text(yaml.safe_dump(PENDULUM, sort_keys=False))
    address = f"127.0.0.1:{port}"
    try:
        start = time.perf_counter()
        argv = ["sweep", str(file), "--out", str(tmp_path / "o"), "--backend", "ray"]
        assert main([*argv, "--address", address]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "but it is not a Ray cluster" in err
        with pytest.raises(ValueError, match="but it is not a Ray cluster"):
            _run_ray({}, [], 1, address)
        assert time.perf_counter() - start < 10
    finally:
        server.close()
        for conn in held:
            conn.close()


def test_ray_backend_without_ray_exits_2(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    file = tmp_path / "tiny.yaml"
    file.write_text(yaml.safe_dump(PENDULUM, sort_keys=False))
    assert main(["sweep", str(file), "--out", str(tmp_path / "b"), "--backend", "ray"]) == 2
    err = capsys.readouterr().err
    assert err == "robust-rl sweep: error: --backend ray needs Ray: pip install 'robust-rl[ray]'\n"


@pytest.mark.slow
def test_private_ray_instance_matches_local(tmp_path: Path) -> None:
    """``--backend ray`` without ``--address``: a private Ray started and shut down here."""
    ray = pytest.importorskip("ray", reason="ray is not installed (pip install 'robust-rl[ray]')")
    from robust_rl.sweep import run_sweep

    trials = expand_sweep(parse_sweep(copy.deepcopy(PENDULUM)))
    results = run_sweep(trials, tmp_path / "ray", backend="ray", max_parallel=2)
    assert not ray.is_initialized()  # the private Ray is shut down
    assert [r.status for r in results] == ["done", "done"]
    here = run_trial(trials[0], tmp_path / "here")
    assert results[0].evaluation.to_dict() == here.evaluation.to_dict()
    # finished trials are read by the driver: no Ray is started for them
    again = run_sweep(trials, tmp_path / "ray", backend="ray", max_parallel=2)
    assert [r.status for r in again] == ["skipped", "skipped"] and not ray.is_initialized()
