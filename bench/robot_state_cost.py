"""Seconds per training update of the push recipe, with the robot's own state in the latent, with the robot
points drawn from it, with that state observed and with point dynamics on top, against the recipe alone
(docs/world_model.md, "The robot drawn from its state", "Point dynamics").

    python bench/robot_state_cost.py                     # 2 threads, 30 timed updates each
    python bench/robot_state_cost.py --updates 40 --threads 1

One update is what `hvp train` runs (bench/training_speed.py): 16 windows of 16 frames of random pixels, random
actions and random robot states (the arithmetic does not depend on them), channels-last convs. The models'
updates are interleaved so background load hits them alike; the ratios are what each option adds to the training
time. Writes bench/results/robot_state_cost.json.
"""
from __future__ import annotations

from results_io import write_results
from runtime import timings_ms
from training_speed import RECIPES, update_function, update_timing_parser

# the robot state as push records it: the pusher's (x, y, vx, vy); weight 100 as in the measured runs
ROBOT_STATE = dict(proprio_weight=100.0, proprio_dim=4)
OBSERVED = {**ROBOT_STATE, "observe_robot_state": True}
VARIANTS = {"recipe": {}, "robot_state": ROBOT_STATE, "robot_points": {**ROBOT_STATE, "robot_points": True},
            "observed": OBSERVED, "point_dynamics": {**OBSERVED, "point_dynamics": True}}


def main() -> None:
    args = update_timing_parser(__doc__, "bench/results/robot_state_cost.json").parse_args()

    import torch

    from hvp.models.config import RSSMConfig
    from hvp.models.rssm import RSSM

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    images = torch.randint(0, 256, (16, 16, 64, 64, 3), dtype=torch.uint8)
    actions = torch.rand(16, 16, 2) * 2 - 1
    states = torch.randn(16, 16, ROBOT_STATE["proprio_dim"])
    updates = {}
    for name, settings in VARIANTS.items():
        model = RSSM(RSSMConfig.preset("cpu", image_size=(64, 64), action_dim=2, **RECIPES["push"], **settings))
        if settings:
            model.set_proprio_scale(states.flatten(0, 1))
        updates[name] = update_function(model, torch.channels_last, images, actions, states if settings else None)
    times = timings_ms(updates, repeats=args.updates)
    base = times["recipe"]["median_ms"]
    ratios = {name: round(time["median_ms"] / base, 3) for name, time in times.items()}
    print(", ".join(f"{name} {times[name]['median_ms']:.0f} ms ({ratios[name]:.2f}x)" for name in VARIANTS))
    write_results(args.out, args.seed, {"threads": args.threads, "updates": args.updates, "timings": times,
                                        "ratio_to_recipe": ratios})


if __name__ == "__main__":
    main()
