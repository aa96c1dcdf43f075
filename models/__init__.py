"""World models from pixels: the RSSM latent model, a pixel-space baseline, their runtime, training and evaluation.

Only hvp.contracts, hvp.config, hvp.registry and hvp.data are imported from the rest of
hvp; simulators, planners and the robot side plug in through those contracts.
"""
