"""Parsers of command-line option values (argparse ``type=`` callables): each refuses a value
no command could use, saying why, so that argparse reports it as a usage error (exit 2)."""

from __future__ import annotations

import argparse
from collections.abc import Callable


def int_at_least(minimum: int) -> Callable[[str], int]:
    """An integer of at least ``minimum``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
        return value

    return parse


def nonempty(text: str) -> str:
    """A text option that must say something: an empty ``--source ""`` (an unset shell variable)
    would otherwise mean upstream, and an empty path the current directory."""
    if not text.strip():
        raise argparse.ArgumentTypeError("must not be empty")
    return text


def int_in_range(low: int, high: int) -> Callable[[str], int]:
    """An integer in [low, high]."""

    def parse(text: str) -> int:
        value = int_at_least(low)(text)
        if value > high:
            raise argparse.ArgumentTypeError(f"must be at most {high}, got {value}")
        return value

    return parse


def float_in_range(low: float, high: float) -> Callable[[str], float]:
    """A finite number in [low, high] (NaN and infinities are refused: they would stall the server)."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if not low <= value <= high:  # false for NaN too
            raise argparse.ArgumentTypeError(f"must be between {low:g} and {high:g}, got {text}")
        return value

    return parse
