"""Particles sharded over 8 virtual CPU devices equal the single-device run.

The device count is fixed when JAX starts (``XLA_FLAGS``), and the suite's process has
already started JAX, so each check runs in a fresh Python subprocess.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import jax
import pytest

import probinfer as pi

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = textwrap.dedent("""
    import json, jax, jax.numpy as jnp, numpy as np, probinfer as pi
    from jax.sharding import Mesh
    assert len(jax.devices()) == 8, jax.devices()
    mesh = Mesh(np.array(jax.devices()), ("particles",))
    ssm = pi.ssm.LinearGaussian.scalar(rho=0.9, sigma_x=1.0, sigma_y=0.5)
    _, ys = ssm.simulate(jax.random.key(0), 25)
    fk = pi.ssm.bootstrap(ssm, ys)
    out = {"exact": float(ssm.kalman_filter(ys).log_likelihood)}
    for policy in ("ess", "always"):
        kwargs = {} if policy == "ess" else {"policy": "always"}
        one = pi.smc.run(7, fk, 4096, keep_ancestors=True, **kwargs)
        sharded = pi.smc.run(7, fk, 4096, keep_ancestors=True, mesh=mesh, **kwargs)
        out[policy] = {
            "devices": len(sharded.samples.sharding.device_set),
            "log_z": [float(one.log_evidence), float(sharded.log_evidence)],
            "same_ancestors": float(np.mean(np.asarray(one.info.ancestors)
                                            == np.asarray(sharded.info.ancestors))),
            "max_sample_diff": float(np.max(np.abs(np.asarray(one.samples)
                                                   - np.asarray(sharded.samples)))),
            "resampled": [np.asarray(one.info.resampled).tolist(),
                          np.asarray(sharded.info.resampled).tolist()]}
    # Replicates of the sharded filter: the evidence estimate is unbiased for the Kalman one.
    reps = [float(pi.smc.run(k, fk, 512, mesh=mesh).log_evidence) for k in range(20)]
    out["replicates"] = reps
    print("RESULT" + json.dumps(out))
""")


@pytest.mark.slow
def test_sharded_filter_equals_single_device_run(run_on_virtual_devices):
    import numpy as np
    out = run_on_virtual_devices(SCRIPT)
    for policy in ("ess", "always"):
        r = out[policy]
        assert r["devices"] == 8
        assert r["resampled"][0] == r["resampled"][1]
        # Same key, same random numbers, and the weights are reduced in the single-device
        # order (replicated), so the run is the same to the bit.
        assert r["same_ancestors"] == 1.0, r
        assert r["max_sample_diff"] == 0.0, r
        assert r["log_z"][0] == r["log_z"][1], r
    reps = np.asarray(out["replicates"])
    # exp(log Z-hat) is unbiased: its mean over replicates within 4 standard errors.
    ratio = np.exp(reps - out["exact"])
    assert abs(ratio.mean() - 1) < 4 * ratio.std(ddof=1) / np.sqrt(len(ratio)), ratio


WORKER = textwrap.dedent("""
    import sys, jax
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    process_id, port, out = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    jax.distributed.initialize(f"127.0.0.1:{port}", num_processes=2, process_id=process_id)
    import numpy as np, probinfer as pi
    from jax.sharding import Mesh
    from jax.experimental import multihost_utils
    assert len(jax.devices()) == 4 and len(jax.local_devices()) == 2
    mesh = Mesh(np.array(jax.devices()), ("particles",))
    ssm = pi.ssm.LinearGaussian.scalar(rho=0.9, sigma_x=1.0, sigma_y=0.5)
    _, ys = ssm.simulate(jax.random.key(0), 15)
    res = pi.smc.run(7, pi.ssm.bootstrap(ssm, ys), 1024, mesh=mesh)
    samples = multihost_utils.process_allgather(res.samples, tiled=True)
    np.savez(out, samples=np.asarray(samples), log_z=np.asarray(res.log_evidence))
    jax.distributed.shutdown()
""")


@pytest.mark.slow
def test_two_processes_over_loopback_equal_one_process(tmp_path):
    """jax.distributed over loopback: 2 processes x 2 CPU devices, CPU collectives (gloo),
    one sharded filter across both; each process ends with the single-process answer."""
    import socket
    import numpy as np
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=2",
               JAX_PLATFORMS="cpu", PYTHONPATH=str(ROOT))
    procs = [subprocess.Popen([sys.executable, "-c", WORKER, str(i), str(port),
                               str(tmp_path / f"out{i}.npz")], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i in range(2)]
    for proc in procs:
        _, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err[-3000:]
    ssm = pi.ssm.LinearGaussian.scalar(rho=0.9, sigma_x=1.0, sigma_y=0.5)
    _, ys = ssm.simulate(jax.random.key(0), 15)
    single = pi.smc.run(7, pi.ssm.bootstrap(ssm, ys), 1024)
    for i in range(2):
        with np.load(tmp_path / f"out{i}.npz") as got:
            np.testing.assert_array_equal(got["samples"], np.asarray(single.samples))
            assert float(got["log_z"]) == float(single.log_evidence)


def test_mesh_is_validated():
    from jax.sharding import Mesh
    import numpy as np
    ssm = pi.ssm.LinearGaussian.scalar()
    fk = pi.ssm.bootstrap(ssm, np.zeros(3))
    with pytest.raises(TypeError, match="Mesh"):
        pi.smc.run(0, fk, 8, mesh="gpu")
    two_axes = Mesh(np.array(jax.devices()[:1]).reshape(1, 1), ("a", "b"))
    with pytest.raises(ValueError, match="one axis"):
        pi.smc.run(0, fk, 8, mesh=two_axes)
    one = Mesh(np.array(jax.devices()[:1]), ("p",))
    res = pi.smc.run(0, fk, 8, mesh=one)
    assert res.samples.shape == (8, 1)
