import json
from pathlib import Path

import numpy as np
import pytest
import torch

from hvp.models import checkpoint
from hvp.models.checkpoint import CheckpointError, load_model, save_model
from hvp.models.config import PixelConfig, RSSMConfig, TrainConfig


@pytest.mark.parametrize("kind, config", [("rssm", RSSMConfig.preset("debug")), ("pixel", PixelConfig.preset("debug")),
                                          ("rssm", RSSMConfig.preset("debug", latent="categorical", classes=2))])
def test_round_trip_is_bit_exact(tmp_path, kind, config):
    torch.manual_seed(1)
    model = checkpoint.build_model(kind, config)
    save_model(tmp_path, kind, model, TrainConfig.preset("debug"), {"env_name": "maze-easy"})
    loaded_kind, loaded, meta = load_model(tmp_path)
    assert loaded_kind == kind and loaded.config == config and meta["env_args"] == {"env_name": "maze-easy"}
    original, restored = model.state_dict(), loaded.state_dict()
    assert original.keys() == restored.keys()
    assert all(torch.equal(original[k], restored[k]) and original[k].dtype == restored[k].dtype for k in original)


@pytest.fixture
def saved_run(tmp_path):
    save_model(tmp_path, "rssm", checkpoint.build_model("rssm", RSSMConfig.preset("debug")),
               TrainConfig.preset("debug"), {})
    return tmp_path


def test_corrupt_weights_give_a_checkpoint_error_naming_the_file(saved_run):
    path = saved_run / checkpoint.WEIGHTS_FILE
    path.write_bytes(path.read_bytes()[:200])  # a truncated download or an interrupted copy
    with pytest.raises(CheckpointError, match="model.safetensors: corrupt"):
        load_model(saved_run)


def test_weights_of_another_model_are_refused(saved_run, tmp_path_factory):
    other = tmp_path_factory.mktemp("other")
    save_model(other, "rssm", checkpoint.build_model("rssm", RSSMConfig.preset("debug", deter_dim=8)),
               TrainConfig.preset("debug"), {})
    (saved_run / checkpoint.WEIGHTS_FILE).write_bytes((other / checkpoint.WEIGHTS_FILE).read_bytes())
    with pytest.raises(CheckpointError, match="saved for another model"):
        load_model(saved_run)


def test_config_edits_that_change_shapes_are_refused(saved_run):
    path = saved_run / checkpoint.CONFIG_FILE
    config = json.loads(path.read_text())
    config["model"]["deter_dim"] = 8
    path.write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="another model"):
        load_model(saved_run)


@pytest.mark.parametrize("edit, match", [
    (lambda c: c.update(format_version=99), "format_version 99"),
    (lambda c: c.update(kind="vae"), "kind must be"),
])
def test_config_json_is_checked(saved_run, edit, match):
    path = saved_run / checkpoint.CONFIG_FILE
    config = json.loads(path.read_text())
    edit(config)
    path.write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match=match):
        load_model(saved_run)


def test_missing_run_directory_says_what_is_expected(tmp_path):
    with pytest.raises(CheckpointError, match="has no config.json"):
        load_model(tmp_path / "nowhere")
    Path(tmp_path / checkpoint.CONFIG_FILE).write_text("{not json")
    with pytest.raises(CheckpointError, match="corrupt JSON"):
        load_model(tmp_path)


def test_train_state_restores_optimizer_and_both_rngs(tmp_path):
    model = checkpoint.build_model("pixel", PixelConfig.preset("debug"))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    model(torch.zeros(1, 4, 64, 64, 3, dtype=torch.uint8), torch.ones(1, 4, 2))[0].backward()
    optimizer.step()
    rng = np.random.default_rng(5)
    checkpoint.save_train_state(tmp_path, 7, optimizer, rng)
    expected_numpy, expected_torch = rng.random(3), torch.rand(3)
    fresh_optimizer, fresh_rng = torch.optim.Adam(model.parameters(), lr=1e-3), np.random.default_rng(0)
    assert checkpoint.load_train_state(tmp_path, fresh_optimizer, fresh_rng, model) == 7
    np.testing.assert_array_equal(fresh_rng.random(3), expected_numpy)
    assert torch.equal(torch.rand(3), expected_torch)
    saved, restored = optimizer.state_dict()["state"], fresh_optimizer.state_dict()["state"]
    assert all(torch.equal(saved[i][k], restored[i][k]) for i in saved for k in saved[i])
