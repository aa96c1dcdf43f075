"""Seconds per training update of the world model, its convs in torch's default layout against channels-last.

    python bench/training_speed.py                       # the push recipe and the maze cpu preset, 2 threads
    python bench/training_speed.py --updates 40 --threads 1

One update is what `hvp train` runs: the negative ELBO of 16 windows of 16 frames (64x64, random pixels: the
arithmetic does not depend on them), its backward pass and an Adam step. Both layouts train the same model from the
same weights; their updates are interleaved (default, channels-last, default, ...) so background load hits both
alike. The ratio is the training time `hvp train` saves (models/networks.py, CONV_LAYOUT).
Writes bench/results/training_speed.json.
"""
from __future__ import annotations

import argparse
import copy

from results_io import write_results
from runtime import timings_ms
from world_model import PUSH_IMAGE_SETTINGS

# what the cpu preset trains with for each task (push: as make push-cpu trains it)
RECIPES = {"push": PUSH_IMAGE_SETTINGS, "maze": {}}


def update_function(model, layout, images, actions, states=None):
    """-> a function running one training update of `model` with its convs in `layout` (`states`: the recorded robot
    state, for a model that holds one)."""
    import torch

    from hvp.models import networks

    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4, eps=1e-5)

    def update() -> None:
        networks.CONV_LAYOUT = layout  # read by every conv module's forward
        loss, _ = model(images, actions, states)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return update


def update_timing_parser(description: str, out: str) -> argparse.ArgumentParser:
    """-> the arguments every interleaved timing of training updates takes."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--updates", type=int, default=30, help="timed updates per variant (after 3 untimed)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=out)
    return parser


def main() -> None:
    parser = update_timing_parser(__doc__, "bench/results/training_speed.json")
    parser.add_argument("--recipes", nargs="+", choices=sorted(RECIPES), default=sorted(RECIPES))
    args = parser.parse_args()

    import torch

    from hvp.models.config import RSSMConfig
    from hvp.models.rssm import RSSM

    torch.set_num_threads(args.threads)
    results = {}
    for recipe in args.recipes:
        torch.manual_seed(args.seed)
        images = torch.randint(0, 256, (16, 16, 64, 64, 3), dtype=torch.uint8)
        actions = torch.rand(16, 16, 2) * 2 - 1
        channels_last = RSSM(RSSMConfig.preset("cpu", image_size=(64, 64), action_dim=2, **RECIPES[recipe]))
        default = copy.deepcopy(channels_last).to(memory_format=torch.contiguous_format)
        times = timings_ms({"default_layout": update_function(default, torch.contiguous_format, images, actions),
                            "channels_last": update_function(channels_last, torch.channels_last, images, actions)},
                           repeats=args.updates)
        speedup = times["default_layout"]["median_ms"] / times["channels_last"]["median_ms"]
        results[recipe] = {**times, "speedup": round(speedup, 3)}
        print(f"{recipe}: default layout {times['default_layout']['median_ms']:.0f} ms, channels-last "
              f"{times['channels_last']['median_ms']:.0f} ms per update ({speedup:.2f}x)")
    write_results(args.out, args.seed, {"threads": args.threads, "updates": args.updates, "recipes": results})


if __name__ == "__main__":
    main()
