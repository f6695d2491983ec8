"""Composition root of mirrortwin: the command line and the one place adapters are wired."""
