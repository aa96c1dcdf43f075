"""hvp train: fit a world model (RSSM or pixel baseline) to a dataset; also runs under torchrun for DDP."""
from __future__ import annotations

import argparse

HELP = "train a world model on an HDF5 dataset (rssm or pixel baseline); torchrun --nproc_per_node=K for DDP"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", required=True, help="HDF5 dataset written by hvp collect")
    parser.add_argument("--out", required=True, help="run directory (config.json, model.safetensors, metrics.csv)")
    parser.add_argument("--preset", default="cpu", choices=("debug", "cpu", "gpu"), help="model and training size")
    parser.add_argument("--model", default="rssm", choices=("rssm", "pixel"), help="latent RSSM or pixel baseline")
    parser.add_argument("--steps", type=int, help="total optimizer updates (overrides the preset)")
    parser.add_argument("--batch-size", type=int, help="windows per update and process (overrides the preset)")
    parser.add_argument("--lr", type=float, help="starting learning rate (overrides the preset)")
    parser.add_argument("--final-lr-fraction", type=float,
                        help="cosine decay to lr x this by the last update; 1 keeps it constant (overrides the preset)")
    parser.add_argument("--ema-decay", type=float,
                        help="save and plan with a moving average of the weights, with this decay per update (e.g. "
                             "0.99; default 0: the last update's weights)")
    parser.add_argument("--foreground-weight", type=float,
                        help="reconstruction weight of pixels that differ from the background (overrides "
                             "the preset: 2 for the rssm cpu preset, 5 otherwise)")
    parser.add_argument("--foreground-reference", choices=("window", "batch"),
                        help="rssm: the background those pixels differ from, the per-pixel median of each window "
                             "(what moves in it) or of the whole batch (every object: the empty scene)")
    parser.add_argument("--learned-background", action=argparse.BooleanOptionalAction,
                        help="rssm: the decoder draws on a learned image of the static scene, started from the data's "
                             "per-pixel median (overrides the preset)")
    parser.add_argument("--reference-blend", action=argparse.BooleanOptionalAction,
                        help="rssm: predictions can be drawn on the last observed frame, keeping its pixels where "
                             "nothing moved (trained on open-loop predictions; eval-model and predict() use it)")
    parser.add_argument("--keypoints", type=int,
                        help="rssm: image points the encoder finds (spatial softmax) and the decoder draws from the "
                             "latent, for small objects (default 0: none)")
    parser.add_argument("--keypoint-layers", type=int,
                        help="rssm, with --keypoints: stride-2 convs before the map the points are found on (default "
                             "2: 16x16 for 64x64 images; 1: 32x32, finer)")
    parser.add_argument("--points-on-foreground", action=argparse.BooleanOptionalAction,
                        help="rssm, with --keypoints: find the points only where the image differs from the empty "
                             "scene (the training frames' median), so none settles on the static arena")
    parser.add_argument("--latent", choices=("gaussian", "categorical"),
                        help="rssm: the stochastic latent, Gaussian (PlaNet; the default) or one-hot categorical "
                             "groups (DreamerV2)")
    parser.add_argument("--stoch-dim", type=int,
                        help="rssm: size of the stochastic latent z (overrides the preset; categorical: groups x "
                             "classes)")
    parser.add_argument("--classes", type=int,
                        help="rssm, categorical latent: classes per one-hot group; the latent size must be a multiple "
                             "(default 4)")
    parser.add_argument("--free-nats", type=float,
                        help="rssm: KL per step below this is not penalized (overrides the preset's 3)")
    parser.add_argument("--overshooting", type=int,
                        help="rssm: latent overshooting, the prior also trained rolled open-loop up to this many steps "
                             "ahead, as the planner rolls it (default 0: one step)")
    parser.add_argument("--proprio-weight", type=float,
                        help="rssm: hold the robot's own state (the dataset's state: proprioception) in the "
                             "latent, stepped linearly, and tie it to the recorded one with this weight in filtered "
                             "and open-loop latents, so rollouts carry the robot precisely; the model still sees "
                             "images and actions only (default 0: off)")
    parser.add_argument("--robot-points", action=argparse.BooleanOptionalAction,
                        help="rssm, with --keypoints and --proprio-weight: the decoder also draws points read from "
                             "the robot state alone, so the robot is drawn where its state says")
    parser.add_argument("--observe-robot-state", action=argparse.BooleanOptionalAction,
                        help="rssm, with --proprio-weight: the filter also observes the robot state, as a robot's "
                             "proprioception measures it, so rollouts start from it exactly (the runtime's "
                             "observe_proprio, hvp plan --proprio)")
    parser.add_argument("--robot-step-fit", action=argparse.BooleanOptionalAction,
                        help="rssm, with --proprio-weight: fit the robot state's linear step to the recorded free "
                             "motion (the map most steps obey exactly) and hold it, so the correction learns only "
                             "contact")
    parser.add_argument("--point-dynamics", action=argparse.BooleanOptionalAction,
                        help="rssm, with --keypoints: h carries the encoder's points, stepped by their own MLP and "
                             "drawn where they are (docs/world_model.md, \"Point dynamics\")")
    parser.add_argument("--contact-from-points", action=argparse.BooleanOptionalAction,
                        help="rssm, with --point-dynamics and --proprio-weight: the robot state's contact correction "
                             "comes from the points' MLP, which sees where the objects are, not from the GRU")
    parser.add_argument("--points-follow-robot", action=argparse.BooleanOptionalAction,
                        help="rssm, with --point-dynamics and --robot-step-fit: each point also moves by a learned, "
                             "gated image of the robot state's free step, and on recorded steps without contact the "
                             "points' MLP is trained to add nothing, so the points on the robot follow its step")
    parser.add_argument("--robot-tie-only", action=argparse.BooleanOptionalAction,
                        help="rssm, with --proprio-weight: only the robot state's ties train its dynamics; the "
                             "networks that read it pass no gradient back (docs/world_model.md)")
    parser.add_argument("--seed", type=int, help="seed of weights and window sampling (overrides the preset)")
    parser.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    parser.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda, cuda:1, ...")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: this machine's cores / processes)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from hvp.data import load_dataset
    from hvp.models.fit import fit

    overrides = {name: value for name, value in (("steps", args.steps), ("batch_size", args.batch_size),
                                                 ("learning_rate", args.lr),
                                                 ("final_lr_fraction", args.final_lr_fraction),
                                                 ("ema_decay", args.ema_decay),
                                                 ("seed", args.seed)) if value is not None}
    dataset = load_dataset(args.data)
    model_overrides = {name: value for name, value in (("foreground_weight", args.foreground_weight),
                                                       ("foreground_reference", args.foreground_reference),
                                                       ("learned_background", args.learned_background),
                                                       ("reference_blend", args.reference_blend),
                                                       ("keypoints", args.keypoints),
                                                       ("keypoint_layers", args.keypoint_layers),
                                                       ("points_on_foreground", args.points_on_foreground),
                                                       ("latent", args.latent), ("stoch_dim", args.stoch_dim),
                                                       ("classes", args.classes),
                                                       ("free_nats", args.free_nats),
                                                       ("overshooting", args.overshooting),
                                                       ("proprio_weight", args.proprio_weight),
                                                       ("robot_points", args.robot_points),
                                                       ("observe_robot_state", args.observe_robot_state),
                                                       ("robot_step_fit", args.robot_step_fit),
                                                       ("point_dynamics", args.point_dynamics),
                                                       ("contact_from_points", args.contact_from_points),
                                                       ("points_follow_robot", args.points_follow_robot),
                                                       ("robot_tie_only", args.robot_tie_only))
                       if value is not None}
    fit(dataset, args.out, kind=args.model, preset=args.preset, train_overrides=overrides,
        model_overrides=model_overrides, resume=args.resume, device=args.device, threads=args.threads,
        progress=not args.no_progress)
    return 0
