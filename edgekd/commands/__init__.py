"""Typer command functions, one module per stage; each parses, calls the stage's entry function, prints."""
