import numpy as np
import pytest
import torch

from hvp.contracts import ModelRuntime
from hvp.models.runtime import load_runtime
from gradient_check import directional_check


@pytest.fixture(scope="module")
def runtime(rssm_run):
    return load_runtime(rssm_run, device="cpu", threads=2)


def _images(runtime, batch, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (batch, *runtime.image_shape), dtype=np.uint8)


def test_every_contract_method_has_the_documented_shapes_and_dtypes(runtime):
    assert isinstance(runtime, ModelRuntime)
    d, a = runtime.latent_dim, runtime.action_dim
    state = runtime.initial_state(3)
    assert all(v.dtype == np.float32 and v.shape[0] == 3 for v in state.values())
    state = runtime.observe(state, _images(runtime, 3), np.zeros((3, a), np.float32))
    latent = runtime.latent(state)
    assert latent.shape == (3, d) and latent.dtype == np.float32
    encoded = runtime.encode(_images(runtime, 2))
    assert encoded.shape == (2, d) and encoded.dtype == np.float32
    imagined = runtime.imagine(runtime.initial_state(1), np.zeros((5, 4, a), np.float32))
    assert imagined.shape == (5, 4, d) and imagined.dtype == np.float32
    decoded = runtime.decode(imagined)
    assert decoded.shape == (5, 4, *runtime.image_shape) and decoded.dtype == np.uint8


def test_encode_is_the_latent_of_one_observation_from_the_initial_state(runtime):
    images = _images(runtime, 2)
    state = runtime.observe(runtime.initial_state(2), images, np.zeros((2, runtime.action_dim), np.float32))
    np.testing.assert_array_equal(runtime.encode(images), runtime.latent(state))


def test_observe_and_imagine_leave_the_given_state_unchanged(runtime):
    state = runtime.observe(runtime.initial_state(1), _images(runtime, 1), np.zeros((1, 2), np.float32))
    before = {k: v.copy() for k, v in state.items()}
    new = runtime.observe(state, _images(runtime, 1, seed=1), np.ones((1, 2), np.float32))
    latents = runtime.imagine(state, np.ones((4, 3, 2), np.float32))
    for key in state:
        np.testing.assert_array_equal(state[key], before[key])
        assert not np.shares_memory(new[key], state[key])
    assert not np.allclose(new["deter"], state["deter"])
    # the same state imagined again gives the same latents: nothing was carried over
    np.testing.assert_array_equal(latents, runtime.imagine(state, np.ones((4, 3, 2), np.float32)))


def test_imagine_broadcasts_a_batch_one_state_like_a_repeated_one(runtime):
    state = runtime.observe(runtime.initial_state(1), _images(runtime, 1), np.zeros((1, 2), np.float32))
    actions = np.random.default_rng(0).uniform(-1, 1, (6, 5, 2)).astype(np.float32)
    repeated = {k: np.repeat(v, 6, axis=0) for k, v in state.items()}
    np.testing.assert_allclose(runtime.imagine(state, actions), runtime.imagine(repeated, actions), atol=1e-6)
    # different action sequences lead to different futures
    assert not np.allclose(runtime.imagine(state, actions)[0], runtime.imagine(state, actions)[1])


def test_runtime_path_matches_the_models_own_open_loop_prediction(runtime, maze_dataset):
    from hvp.models.evaluate import predict_with_runtime
    from hvp.models.networks import to_uint8_images

    batch = maze_dataset.sample_windows(np.random.default_rng(0), 3, 8)
    through_runtime = predict_with_runtime(runtime, batch["image"], batch["action"], context=3)
    direct = runtime.model.predict_video(torch.from_numpy(batch["image"]), torch.from_numpy(batch["action"]), 3)
    assert through_runtime.shape == (3, 5, *runtime.image_shape)
    diff = np.abs(through_runtime.astype(int) - to_uint8_images(direct).numpy().astype(int))
    assert diff.max() <= 1  # float rounding at the uint8 boundary only


@pytest.mark.parametrize("call, match", [
    (lambda r: r.encode(np.zeros((1, 32, 32, 3), np.uint8)), "images: expected shape"),
    (lambda r: r.encode(np.zeros((1, 64, 64, 3), np.float32)), "images: expected dtype uint8"),
    (lambda r: r.observe(r.initial_state(1), np.zeros((1, 64, 64, 3), np.uint8), np.zeros((1, 3), np.float32)),
     "actions: expected shape"),
    (lambda r: r.observe(r.initial_state(2), np.zeros((1, 64, 64, 3), np.uint8), np.zeros((1, 2), np.float32)),
     r"state\['deter'\]: expected shape"),
    (lambda r: r.imagine(r.initial_state(1), np.zeros((4, 3, 5), np.float32)), "actions: expected shape"),
    (lambda r: r.imagine(r.initial_state(2), np.zeros((4, 3, 2), np.float32)), "state: expected batch 1 or 4"),
    (lambda r: r.imagine(r.initial_state(1), np.zeros((4, 3, 2), np.int64)), "actions: expected a float32"),
    (lambda r: r.decode(np.zeros((2, 7), np.float32)), "latents: expected shape"),
    (lambda r: r.latent({"deter": np.zeros((1, 3), np.float32)}), "state: expected a dict"),
    (lambda r: r.initial_state(0), "batch: expected a positive int"),
])
def test_bad_input_raises_an_error_naming_the_argument(runtime, call, match):
    with pytest.raises((ValueError, TypeError), match=match):
        call(runtime)


@pytest.mark.parametrize("horizon", [1, 7])
@pytest.mark.parametrize("count", [1, 33])
def test_imagine_through_the_traced_rollout_matches_the_eager_model(runtime, count, horizon):
    rng = np.random.default_rng(count * horizon)
    state = runtime.observe(runtime.initial_state(1), _images(runtime, 1), np.zeros((1, runtime.action_dim), np.float32))
    actions = rng.uniform(-1, 1, (count, horizon, runtime.action_dim)).astype(np.float32)
    with torch.no_grad():
        eager = runtime.model.rollout(torch.from_numpy(state["deter"]).repeat(count, 1),
                                      torch.from_numpy(state["stoch"]).repeat(count, 1), torch.from_numpy(actions))
    np.testing.assert_allclose(runtime.imagine(state, actions), eager.numpy(), atol=1e-5)


def test_imagine_vjp_gives_imagines_latents_and_their_gradient(runtime):
    rng = np.random.default_rng(4)
    state = runtime.observe(runtime.initial_state(1), _images(runtime, 1), np.zeros((1, runtime.action_dim), np.float32))
    actions = rng.uniform(-0.5, 0.5, (3, 4, runtime.action_dim)).astype(np.float32)
    latents, vjp = runtime.imagine_vjp(state, actions)
    np.testing.assert_allclose(latents, runtime.imagine(state, actions), atol=1e-5)
    directional_check(lambda a: runtime.imagine(state, a), vjp, actions, rng.normal(size=latents.shape).astype(np.float32))
