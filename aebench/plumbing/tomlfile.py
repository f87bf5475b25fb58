"""Reading a user's TOML file (study, thresholds) with one clear error for every way it can be bad."""
from __future__ import annotations

import tomllib
from pathlib import Path

from aebench.errors import UserError


def read_toml(path: str | Path, what: str) -> dict:
    """The parsed document; UserError naming `what` (e.g. "study file") if missing or malformed."""
    path = Path(path)
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"{what} {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as e:
        raise UserError(f"{what} {path} is not readable ({e})") from None
    except tomllib.TOMLDecodeError as e:
        raise UserError(f"{what} {path} is not valid TOML: {e}") from None
