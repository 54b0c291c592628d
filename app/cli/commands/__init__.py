"""One module per `modelship` subcommand: ``add_arguments(parser)`` and ``run(args)``."""
