"""hvp: hierarchical visual planning from pixels.

The playground API (hvp.playground, docs/playground.md) is importable from here without
loading torch or MuJoCo until first use: `hvp.observe`, `hvp.predict`, `hvp.plan_to_goal`,
`hvp.save_trajectories`, `hvp.load_model`. `simulate()` lives at `hvp.playground.simulate`
(`hvp.simulate` names the module that defines it).
"""
__version__ = "0.1.0"

_PLAYGROUND = ("observe", "predict", "plan_to_goal", "save_trajectories", "load_model", "mpc_controller")


def __getattr__(name: str):
    # lazy: `import hvp` stays light (a robot computer imports hvp.real without torch)
    if name in _PLAYGROUND:
        from hvp import playground

        return getattr(playground, name)
    raise AttributeError(f"module 'hvp' has no attribute {name!r}")
