"""The open-loop losses' rollouts done directly, with the planner's RSSM.rollout, to check RSSM.open_loop_terms."""
import torch

from hvp.models.rssm import OPEN_LOOP_HORIZON, OPEN_LOOP_START_STRIDE


def direct_open_loop(model, window, seed: int) -> tuple[int, list[tuple[int, torch.Tensor]]]:
    """The horizon d that open_loop_terms draws after torch.manual_seed(seed), and for every
    OPEN_LOOP_START_STRIDE-th filtered state t of `window` with frame t + d in it, (t, the latent [B, D] rolled d
    steps from it)."""
    length = window.frames.shape[1]
    torch.manual_seed(seed)
    steps = int(torch.randint(1, min(OPEN_LOOP_HORIZON, length - 1) + 1, ()))
    rolled = [(t, model.rollout(window.deters[:, t], window.post_mean[:, t],
                                window.prev[:, t + 1:t + 1 + steps])[:, -1])
              for t in range(0, length - steps, OPEN_LOOP_START_STRIDE)]
    return steps, rolled
