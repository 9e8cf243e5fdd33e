"""Bastion: a self-hosted, PyPI-compatible package index built for supply-chain security."""

__version__ = "0.1.0"
