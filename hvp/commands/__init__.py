"""CLI verbs, one module each: HELP, add_arguments(parser), run(args) -> int.

Modules import heavy dependencies inside run(), so `hvp --help` stays fast.
"""
