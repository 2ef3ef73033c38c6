"""`python -m vae ...`: see vae/cli.py."""
from .cli import console

console()
