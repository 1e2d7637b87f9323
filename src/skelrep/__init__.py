"""skelrep: reproducible self-supervised skeleton action representation learning."""

__version__ = "0.1.0"
