"""The kit every layer above uses: device choice, seeding, the training loop, checkpoints and
files, progress reporting. It never imports the methods, the workflows or the CLI."""
