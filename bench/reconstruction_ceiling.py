"""How sharply can the world model's encoder and decoder redraw a dataset's frames at a given budget?

    python bench/reconstruction_ceiling.py --data runs/cpu-preset/push.hdf5 \
        --held-out runs/data/push-heldout.hdf5 --out bench/results/reconstruction_ceiling_push.json

The RSSM's ConvEncoder and ConvDecoder (with its learned background), joined by one linear layer to a vector
of the planning latent's size, trained as a plain deterministic autoencoder: no dynamics, no KL, no sampling,
the same foreground-weighted loss (batch background). Its held-out reconstruction PSNR bounds what the RSSM can
score at any horizon after as many updates: a world model cannot predict a frame sharper than it can redraw it.
Each `--variant` (depth=D, lr=X, optionally weight=W, the foreground weight; default `--foreground-weight`) is
trained from the same seed; PSNR on held-out frames every `--every` updates. The PSNR is unweighted: a foreground
weight that makes the decoder draw the objects also lets it smear them (a missed object pixel costs W, a stray
one 1), which the PSNR charges.
"""
from __future__ import annotations

import argparse
import time

import numpy as np
from results_io import write_results


def autoencoder_curve(train_set, held_out, *, depth: int, lr: float, steps: int, every: int, batch: int,
                      latent_dim: int, foreground_weight: float, seed: int) -> list[dict[str, float]]:
    """Train one autoencoder; -> [{update, psnr, seconds}] every `every` updates."""
    import torch
    from torch import nn

    from hvp.models.config import RSSMConfig
    from hvp.models.fit import BACKGROUND_WINDOWS
    from hvp.models.networks import ConvDecoder, ConvEncoder, foreground_weights, to_float_images

    torch.manual_seed(seed)
    size = tuple(train_set.episodes[0]["image"].shape[1:3])
    encoder = ConvEncoder(size, depth)
    bottleneck = nn.Linear(encoder.output_dim, latent_dim)
    decoder = ConvDecoder(latent_dim, size, depth, background=True)

    def frames(rng, windows: int, length: int, data) -> torch.Tensor:
        return to_float_images(torch.from_numpy(data.sample_windows(rng, windows, length)["image"]))

    decoder.set_background(frames(np.random.default_rng(seed + 1), BACKGROUND_WINDOWS, 16, train_set).flatten(0, 1))
    test = frames(np.random.default_rng(seed + 2), 32, 4, held_out).flatten(0, 1)
    model = nn.Sequential(encoder, bottleneck, decoder)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, eps=1e-5)
    rng, curve, started = np.random.default_rng(seed), [], time.perf_counter()
    for update in range(1, steps + 1):
        windows = frames(rng, batch // 4, 4, train_set)  # windows of 4 frames: the batch background needs many
        weights = foreground_weights(windows, foreground_weight, RSSMConfig.foreground_threshold, "batch").flatten(0, 1)
        images = windows.flatten(0, 1)
        loss = ((model(images) - images) ** 2 * weights).sum((1, 2, 3)).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if update % every == 0:
            with torch.no_grad():
                mse = float(((model(test) - test) ** 2).mean())
            curve.append({"update": update, "psnr": 10 * np.log10(1 / mse), "seconds": time.perf_counter() - started})
            print(f"  update {update}: held-out PSNR {curve[-1]['psnr']:.2f} dB", flush=True)
    return curve


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="training HDF5")
    parser.add_argument("--held-out", required=True, help="held-out HDF5 (32 windows of 4 frames are scored)")
    parser.add_argument("--variant", action="append", default=[], metavar="depth=D,lr=X[,weight=W]",
                        help="conv depth, learning rate and foreground weight (default: depth=16,lr=1e-3)")
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--every", type=int, default=250)
    parser.add_argument("--batch", type=int, default=64, help="frames per update")
    parser.add_argument("--latent-dim", type=int, default=160, help="the cpu preset's planning latent: 128 + 32")
    parser.add_argument("--foreground-weight", type=float, default=10.0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()

    import torch

    from hvp.data import load_dataset

    torch.set_num_threads(args.threads)
    train_set, held_out = load_dataset(args.data), load_dataset(args.held_out)
    results = []
    for spec in args.variant or ["depth=16,lr=1e-3"]:
        try:
            settings = {key: float(value) for key, value in (item.split("=") for item in spec.split(","))}
            depth, lr = int(settings.pop("depth")), settings.pop("lr")
            weight = settings.pop("weight", args.foreground_weight)
        except (KeyError, ValueError) as error:
            raise SystemExit(f"--variant: expected depth=D,lr=X[,weight=W], got {spec!r} ({error})") from None
        if settings:
            raise SystemExit(f"--variant: unknown settings {sorted(settings)} in {spec!r}")
        print(f"depth {depth}, lr {lr}, foreground weight {weight:g}")
        results.append({"depth": depth, "lr": lr, "foreground_weight": weight, "curve": autoencoder_curve(
            train_set, held_out, depth=depth, lr=lr, steps=args.steps, every=args.every, batch=args.batch,
            latent_dim=args.latent_dim, foreground_weight=weight, seed=args.seed)})
    write_results(args.out, args.seed, {"data": args.data, "held_out": args.held_out, "batch_frames": args.batch,
                                        "threads": args.threads, "variants": results})


if __name__ == "__main__":
    main()
