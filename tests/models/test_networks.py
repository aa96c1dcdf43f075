import pytest
import torch

from hvp.config import ConfigError
from hvp.models.config import RSSMConfig, TrainConfig
from hvp.models.networks import ConvDecoder, ConvEncoder, GRUCell, foreground_weights, to_float_images, to_uint8_images


def test_gru_cell_matches_torch_gru_cell_over_many_steps():
    torch.manual_seed(0)
    ours, reference = GRUCell(5, 7), torch.nn.GRUCell(5, 7)
    with torch.no_grad():  # torch stores gates (reset, update, new) along dim 0 as well
        ours.input_gates.weight.copy_(reference.weight_ih)
        ours.input_gates.bias.copy_(reference.bias_ih)
        ours.state_gates.weight.copy_(reference.weight_hh)
        ours.state_gates.bias.copy_(reference.bias_hh)
    state_ours = state_ref = torch.zeros(3, 7)
    for _ in range(20):
        inputs = torch.randn(3, 5)
        state_ours, state_ref = ours(inputs, state_ours), reference(inputs, state_ref)
    torch.testing.assert_close(state_ours, state_ref, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("size", [(64, 64), (48, 80)])
def test_encoder_decoder_shapes_follow_the_image_size(size):
    encoder, decoder = ConvEncoder(size, 4), ConvDecoder(10, size, 4)
    assert encoder(torch.zeros(2, 3, *size)).shape == (2, encoder.output_dim)
    assert decoder(torch.zeros(2, 10)).shape == (2, 3, *size)


def test_a_learned_background_is_added_to_what_the_convs_draw_and_starts_at_the_median():
    torch.manual_seed(0)
    plain, drawn = ConvDecoder(10, (16, 16), 4), ConvDecoder(10, (16, 16), 4, background=True)
    drawn.load_state_dict({**plain.state_dict(), "background": torch.zeros(3, 16, 16)})
    frames = torch.rand(5, 3, 16, 16) - 0.5
    drawn.set_background(frames)
    torch.testing.assert_close(drawn.background.detach(), frames.median(dim=0).values)
    features = torch.randn(2, 10)
    torch.testing.assert_close(drawn(features), plain(features) + frames.median(dim=0).values)
    with pytest.raises(ValueError, match=r"frames: expected \[N, 3, 16, 16\]"):
        drawn.set_background(torch.zeros(5, 3, 8, 8))
    with pytest.raises(ValueError, match="without a learned background"):
        plain.set_background(frames)


def test_image_scaling_round_trips_uint8():
    images = torch.randint(0, 256, (2, 3, 16, 16, 3), dtype=torch.uint8)
    assert to_float_images(images).shape == (2, 3, 3, 16, 16)
    assert torch.equal(to_uint8_images(to_float_images(images)), images)


def test_foreground_weights_mark_only_the_moving_pixels():
    frames = torch.zeros(1, 5, 3, 8, 8)
    for t in range(5):
        frames[0, t, :, 2, t] = 0.5  # a dot moving right over a constant background
    weights = foreground_weights(frames, weight=5.0, threshold=0.1)
    assert weights.shape == (1, 5, 1, 8, 8)
    assert weights[0, 2, 0, 2, 2] == 5.0 and weights[0, 2, 0, 2, 3] == 1.0
    assert int((weights == 5.0).sum()) == 5


def test_batch_reference_also_marks_objects_that_rest_through_their_window():
    frames = torch.zeros(4, 5, 3, 8, 8)
    for window in range(4):
        frames[window, :, :, window, window] = 0.5  # one still object per window, each at its own place
    assert torch.equal(foreground_weights(frames, weight=5.0, threshold=0.1), torch.ones(4, 5, 1, 8, 8))
    weights = foreground_weights(frames, weight=5.0, threshold=0.1, reference="batch")
    assert int((weights == 5.0).sum()) == 4 * 5 and all(weights[w, :, 0, w, w].eq(5.0).all() for w in range(4))
    with pytest.raises(ValueError, match="reference must be one of"):
        foreground_weights(frames, weight=5.0, threshold=0.1, reference="episode")


def test_configs_reject_bad_values_with_the_field_name():
    with pytest.raises(ConfigError, match="image_size"):
        RSSMConfig(image_size=(60, 64))
    with pytest.raises(ConfigError, match="foreground_reference"):
        RSSMConfig(foreground_reference="episode")
    with pytest.raises(ConfigError, match="preview_context"):
        TrainConfig(seq_len=4, preview_context=4)
