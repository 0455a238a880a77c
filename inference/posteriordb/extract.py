"""Write the suite's JSON files from a posteriordb checkout (run once; not needed at run time).

For each posterior in :data:`models.SUITE` it reads, from a git checkout of
stan-dev/posteriordb (``--repo``, bare or not, read with ``git show``):

* ``posterior_database/posteriors/<name>.json`` (which data set),
* ``posterior_database/data/data/<data>.json.zip`` (the data, stored here as is),
* ``posterior_database/reference_posteriors/draws/draws/<name>.json.zip`` (10 chains of
  1 000 draws) and ``.../draws/info/<name>.info.json`` (bulk ESS per parameter),

and writes ``<name>.json`` beside this file with the data and, per parameter, the reference
mean, sd (ddof 1 over the 10 000 draws) and bulk ESS. For models whose Stan flat priors are
replaced by wide proper ones it also stores ``wide_prior_effect``: the reference draws
reweighted by the replacement prior density (the flat prior is constant, so the weights are
exactly the ratio of the two posteriors), giving the largest |mean shift| / sd and the
range of sd ratios that the replacement causes.

Run: ``.venv/bin/python inference/posteriordb/extract.py --repo PATH`` (a few seconds).
"""

from __future__ import annotations

import argparse
import io
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from models import SUITE  # noqa: E402


def _show(repo: Path, path: str) -> bytes:
    return subprocess.run(["git", "--git-dir", str(repo), "show", f"HEAD:{path}"],
                          check=True, capture_output=True).stdout


def _unzip_json(raw: bytes):
    with zipfile.ZipFile(io.BytesIO(raw)) as archive:
        return json.loads(archive.read(archive.namelist()[0]))


def _wide_prior_effect(post, names, draws) -> dict | None:
    if not post.wide_priors:
        return None
    log_w = np.zeros(draws.shape[0])
    for site, prior in post.wide_priors.items():
        columns = [j for j, name in enumerate(names) if name.partition("[")[0] == site]
        log_w += np.asarray(prior.log_prob(draws[:, columns])).sum(axis=1)
    w = np.exp(log_w - log_w.max())
    w /= w.sum()
    mean, sd = draws.mean(0), draws.std(0, ddof=1)
    shifted = w @ draws
    shifted_sd = np.sqrt(w @ (draws - shifted) ** 2)
    return {"max_abs_mean_shift_in_sd": float(np.max(np.abs(shifted - mean) / sd)),
            "sd_ratio_min": float(np.min(shifted_sd / sd)),
            "sd_ratio_max": float(np.max(shifted_sd / sd))}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", type=Path, required=True,
                        help="git directory of a stan-dev/posteriordb checkout")
    args = parser.parse_args()
    commit = subprocess.run(["git", "--git-dir", str(args.repo), "rev-parse", "HEAD"],
                            check=True, capture_output=True, text=True).stdout.strip()
    base = "posterior_database"
    for name, post in SUITE.items():
        info = json.loads(_show(args.repo, f"{base}/posteriors/{name}.json"))
        data = _unzip_json(_show(args.repo, f"{base}/data/data/{info['data_name']}.json.zip"))
        chains = _unzip_json(_show(
            args.repo, f"{base}/reference_posteriors/draws/draws/{name}.json.zip"))
        ref_info = json.loads(_show(
            args.repo, f"{base}/reference_posteriors/draws/info/{name}.info.json"))
        names = list(chains[0])
        draws = np.stack([np.concatenate([chain[n] for chain in chains]) for n in names], axis=1)
        diagnostics = ref_info["diagnostics"]
        ess = dict(zip(diagnostics["diagnostic_information"]["names"],
                       diagnostics["effective_sample_size_bulk"]))
        record = {
            "posterior": name,
            "model": info["model_name"],
            "data_name": info["data_name"],
            "source": f"stan-dev/posteriordb@{commit} (BSD-3-Clause)",
            "data": data,
            "reference": {
                "names": names,
                "mean": draws.mean(0).tolist(),
                "sd": draws.std(0, ddof=1).tolist(),
                "ess_bulk": [ess[n] for n in names],
                "num_draws": int(draws.shape[0]),
                "wide_prior_effect": _wide_prior_effect(post, names, draws),
            },
        }
        (HERE / f"{name}.json").write_text(json.dumps(record, separators=(",", ":")) + "\n")
        effect = record["reference"]["wide_prior_effect"]
        print(f"{name}: {len(names)} parameters, {draws.shape[0]} draws"
              + (f", wide-prior effect {effect}" if effect else ""))


if __name__ == "__main__":
    main()
