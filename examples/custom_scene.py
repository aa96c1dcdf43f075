"""Bring your own scene: an MJCF file becomes a task, checked against the Env contract, collected, a world model
trained on it (hvp.models.fit) and planned on with hvp.playground.plan_to_goal.

    python examples/custom_scene.py [--scene my_scene.xml] [--out runs/play-custom-scene] [--debug]
"""
import argparse
from pathlib import Path

import hvp.playground as wm
from hvp.data import load_dataset
from hvp.extension import check_env
from hvp.models.fit import fit
from hvp.sim import make
from hvp.sim.custom import register_mjcf

SHIPPED = Path(__file__).resolve().parents[1] / "tests" / "sim" / "assets" / "two_link_arm.xml"

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scene", default=str(SHIPPED), help="MJCF file with a camera 'overhead' and a site 'fingertip'")
    parser.add_argument("--out", default="runs/play-custom-scene", help="data and model folder (a rerun resumes)")
    parser.add_argument("--debug", action="store_true", help="tiny sizes: a smoke run in seconds")
    args = parser.parse_args()
    episodes, max_steps, train_steps, preset = (3, 12, 3, "debug") if args.debug else (100, 60, 2000, "cpu")
    # the scene as a named task: hvp.sim.make, simulate workers and the CLI all find it by name
    register_mjcf("two-link-arm", args.scene, camera="overhead", target="fingertip", success_radius=0.05,
                  max_steps=max_steps)
    env = check_env(make("two-link-arm"))  # goal image, obs layout and info keys, checked before any work
    env.close()
    out = Path(args.out)
    wm.simulate("two-link-arm", "explore", episodes, out=out / "data.hdf5", progress=False)
    fit(load_dataset(out / "data.hdf5"), out / "model", preset=preset, train_overrides={"steps": train_steps},
        resume=True, threads=1, progress=False)
    for seed in range(3):
        result = wm.plan_to_goal("two-link-arm", out / "model", planner="cem", preset=preset, seed=seed,
                                 max_steps=max_steps)
        print(f"seed {seed}: success {result['success']}, {result['steps']} steps, final fingertip distance "
              f"{result['final_distance']:.3f}, act() {result['act_ms'].mean():.1f} ms mean")
