"""`python -m vae ...`: see vae/cli.py."""

from vae.cli import console

console()
