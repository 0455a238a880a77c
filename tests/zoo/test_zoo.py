"""The shipped zoo models: loading, validation of weights files, and measured quality.

Thresholds here are the ones stated in the model cards (models/*/MODEL_CARD.md).
"""

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

import probinfer as pi
from probinfer import zoo

# From models/digits_classifier/MODEL_CARD.md.
CLASSIFIER_MIN_TEST_ACCURACY = 0.97
# From models/digits_ddpm/MODEL_CARD.md: 500 samples, 25 DDIM steps, seed 0.
DDPM_MAX_FAST_FID = 6.0


def test_import_probinfer_does_not_import_torch():
    code = "import sys, probinfer; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_load_without_torch_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(ImportError, match=r"probinfer\[torch\]"):
        zoo.load("digits-classifier")


def test_unknown_name_is_rejected():
    assert zoo.available() == ["digits-classifier", "digits-ddpm", "lac-expression",
                               "lac-expression-heldout", "lac-promoter-mdm",
                               "moses-selfies-mdm"]
    with pytest.raises(ValueError, match="name must be one of"):
        zoo.load("cifar-ddpm")


def test_missing_folder_lists_where_it_looked(tmp_path):
    with pytest.raises(FileNotFoundError, match=str(tmp_path)):
        zoo.model_dir("digits-ddpm", models_dir=tmp_path)


def test_digits_split_is_fixed_stratified_and_scaled():
    train_x, train_y = zoo.digits("train")
    test_x, test_y = zoo.digits("test")
    all_x, _ = zoo.digits("all")
    assert train_x.shape == (1437, 1, 8, 8) and test_x.shape == (360, 1, 8, 8)
    assert train_x.dtype == np.float32 and test_y.dtype == np.int64
    assert all_x.min() == -1.0 and all_x.max() == 1.0
    # Stratified: every class holds 20 % of its images out, up to rounding.
    counts_all = np.bincount(np.concatenate([train_y, test_y]), minlength=10)
    assert np.all(np.abs(np.bincount(test_y, minlength=10) - 0.2 * counts_all) <= 1)
    # The two splits partition the data (rows compared as bytes).
    rows = {row.tobytes() for row in train_x.reshape(len(train_x), -1)}
    overlap = sum(row.tobytes() in rows for row in test_x.reshape(len(test_x), -1))
    duplicates_in_data = len(all_x) - len({r.tobytes() for r in all_x.reshape(len(all_x), -1)})
    assert overlap <= duplicates_in_data
    np.testing.assert_array_equal(zoo.digits("test")[0], test_x)
    with pytest.raises(ValueError, match="split"):
        zoo.digits("validation")


def _copy_models(tmp_path, name):
    target = tmp_path / zoo.MODELS[name]
    shutil.copytree(zoo.model_dir(name), target)
    return target


@pytest.mark.torch
def test_shipped_models_load_with_the_documented_shapes():
    import torch

    ddpm = zoo.load("digits-ddpm")
    classifier = zoo.load("digits-classifier")
    for model in (ddpm, classifier):
        assert not model.module.training
        assert model.card_path.is_file() and model.weights_path.suffix == ".safetensors"
        shapes = {k: list(v.shape) for k, v in model.module.state_dict().items()}
        assert shapes == model.config["weights"]["tensors"]
        assert model.weights_path.stat().st_size < 5e6
    schedule = ddpm.config["schedule"]
    assert (schedule["beta_start"], schedule["beta_end"],
            schedule["num_train_timesteps"]) == (1e-4, 0.02, 1000)
    x = torch.randn(3, 1, 8, 8)
    eps_int = ddpm.module(x, torch.tensor([0, 500, 999]))
    eps_float = ddpm.module(x, torch.tensor([0.0, 500.0, 999.0]))
    eps_scalar = ddpm.module(x, 500)
    assert eps_int.shape == x.shape
    torch.testing.assert_close(eps_int, eps_float)
    torch.testing.assert_close(eps_scalar[1], eps_int[1])
    assert classifier.module(x).shape == (3, 10)
    assert classifier.module.features(x).shape == (3, 64)


@pytest.mark.torch
def test_loaded_prior_is_stochastic_by_default_for_steering():
    """Steering resamples: a deterministic default sampler would keep copies identical."""
    assert zoo.load_prior("digits-ddpm", num_steps=4).is_stochastic
    assert not zoo.load_prior("digits-ddpm", num_steps=4, sampler="ddim").is_stochastic


@pytest.mark.torch
def test_gradients_flow_to_inputs_not_parameters():
    import torch

    classifier = zoo.load("digits-classifier").module
    x = torch.zeros(2, 1, 8, 8, requires_grad=True)
    torch.log_softmax(classifier(x), -1)[:, 3].sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    assert all(p.grad is None for p in classifier.parameters())


@pytest.mark.torch
def test_corrupted_weights_file_is_named(tmp_path):
    folder = _copy_models(tmp_path, "digits-classifier")
    weights = folder / zoo.WEIGHTS_FILE
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=f"{weights}.*corrupted"):
        zoo.load("digits-classifier", models_dir=tmp_path)


@pytest.mark.torch
def test_truncated_weights_file_is_named(tmp_path):
    folder = _copy_models(tmp_path, "digits-classifier")
    weights = folder / zoo.WEIGHTS_FILE
    weights.write_bytes(weights.read_bytes()[:1000])
    config = json.loads((folder / zoo.CONFIG_FILE).read_text())
    del config["weights"]["sha256"]
    (folder / zoo.CONFIG_FILE).write_text(json.dumps(config))
    with pytest.raises(ValueError, match=f"{weights} is not a readable safetensors file"):
        zoo.load("digits-classifier", models_dir=tmp_path)


@pytest.mark.torch
def test_weights_of_another_model_are_named_with_the_mismatch(tmp_path):
    folder = _copy_models(tmp_path, "digits-ddpm")
    weights = folder / zoo.WEIGHTS_FILE
    shutil.copy(zoo.model_dir("digits-classifier") / zoo.WEIGHTS_FILE, weights)
    config = json.loads((folder / zoo.CONFIG_FILE).read_text())
    del config["weights"]["sha256"]
    (folder / zoo.CONFIG_FILE).write_text(json.dumps(config))
    with pytest.raises(ValueError, match=f"{weights} does not match its config: missing in file"):
        zoo.load("digits-ddpm", models_dir=tmp_path)


@pytest.mark.torch
def test_config_that_disagrees_with_the_architecture_is_named(tmp_path):
    folder = _copy_models(tmp_path, "digits-ddpm")
    config = json.loads((folder / zoo.CONFIG_FILE).read_text())
    config["architecture"]["width"] = 128
    (folder / zoo.CONFIG_FILE).write_text(json.dumps(config))
    with pytest.raises(ValueError, match="config for .*model.safetensors does not describe"):
        zoo.load("digits-ddpm", models_dir=tmp_path)


@pytest.mark.torch
def test_classifier_held_out_accuracy_meets_the_card():
    import torch

    classifier = zoo.load("digits-classifier").module
    images, labels = zoo.digits("test")
    with torch.no_grad():
        predicted = classifier(torch.from_numpy(images)).argmax(-1).numpy()
    assert np.mean(predicted == labels) >= CLASSIFIER_MIN_TEST_ACCURACY


@pytest.mark.torch
def test_ddpm_fast_classifier_fid_meets_the_card():
    import torch
    from probinfer._zoo_networks import linear_alphas_cumprod, reference_sample

    ddpm = zoo.load("digits-ddpm")
    schedule = ddpm.config["schedule"]
    alphas_cumprod = linear_alphas_cumprod(schedule["beta_start"], schedule["beta_end"],
                                           schedule["num_train_timesteps"])
    samples = reference_sample(ddpm.module, alphas_cumprod, num_samples=500, num_steps=25,
                               eta=0.0, generator=torch.Generator().manual_seed(0))
    quality = pi.diagnostics.classifier_quality(samples.numpy(), zoo.digits("test")[0])
    assert quality.frechet_distance < DDPM_MAX_FAST_FID
    assert quality.coverage.fraction_present == 1.0
