"""The operations the commands run: plan and run a forget, evaluate a model, run an experiment,
inspect a checkpoint, audit a ledger. They sit on the methods and the engine's kit, and speak
the domain's language (requests, targets, settings), never the command line's."""
