"""The ``particles`` side of ``bench_particle_filter.py``; runs in its own virtual environment.

``particles`` (N. Chopin) pins numpy < 2, so it cannot share the library's environment.
This worker is started once by the benchmark, reads one JSON request per line on stdin and
answers one JSON line on stdout, so the benchmark can interleave its repetitions with the
probinfer ones. Requests:

``{"cmd": "setup", "data": path.npy, "rho": .., "sigma_x": .., "sigma_y": ..}``
    load the observations and build the model; answers library versions and the exact
    log-likelihood from ``particles.kalman`` (float64), a cross-check of probinfer's.
``{"cmd": "run", "num_particles": N, "seed": s}``
    one bootstrap filter; answers its log-likelihood estimate, wall and CPU seconds of the
    whole filter (model objects built inside the timed region) and the resampling count.
``{"cmd": "quit"}``
"""

import json
import platform
import sys
import time
from importlib.metadata import version

import numpy as np

import particles
from particles import kalman
from particles import state_space_models as ssms


def _setup(request):
    data = np.load(request["data"]).astype(np.float64).reshape(-1)
    ssm = kalman.LinearGauss(rho=request["rho"], sigmaX=request["sigma_x"],
                             sigmaY=request["sigma_y"])
    kf = kalman.Kalman(ssm=ssm, data=data)
    kf.filter()
    exact = float(np.sum(kf.logpyt))
    versions = {name: version(name) for name in ("particles", "numpy", "scipy", "numba")}
    versions["python"] = platform.python_version()
    return (ssm, data), {"versions": versions, "kalman_log_likelihood": exact,
                         "sigma0": float(ssm.sigma0)}


def _run(model, request):
    ssm, data = model
    np.random.seed(request["seed"])
    wall, cpu = time.perf_counter(), time.process_time()
    fk = ssms.Bootstrap(ssm=ssm, data=data)
    # ESSrmin=0.5 and systematic resampling are the defaults; spelled out to match probinfer.
    pf = particles.SMC(fk=fk, N=request["num_particles"], resampling="systematic",
                       ESSrmin=0.5)
    pf.run()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return {"log_likelihood": float(pf.logLt), "wall": wall, "cpu": cpu,
            "num_resampled": int(np.sum(pf.summaries.rs_flags))}


def main():
    model = None
    for line in sys.stdin:
        request = json.loads(line)
        if request["cmd"] == "quit":
            break
        if request["cmd"] == "setup":
            model, answer = _setup(request)
        elif request["cmd"] == "run":
            answer = _run(model, request)
        else:
            answer = {"error": f"unknown command {request['cmd']!r}"}
        print(json.dumps(answer), flush=True)


if __name__ == "__main__":
    main()
