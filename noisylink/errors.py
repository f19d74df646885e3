"""The project's exceptions, each carrying the context a user needs to act on it.

    NoisylinkError
     ├── ScenarioError      bad scenario or study file (names the file and the field)
     ├── UnknownComponent   a component name no registry knows (lists the valid names)
     ├── DecodeError        a codec found nothing it can show
     └── LinkError          the link could not run (names the stage)
"""

from __future__ import annotations


class NoisylinkError(Exception):
    """Base class of every error noisylink raises on purpose."""


class ScenarioError(NoisylinkError):
    """A scenario file (or a setting in it) is invalid."""

    def __init__(self, message: str, *, source: str | None = None, field: str | None = None):
        self.source = source
        self.field = field
        self.message = message
        super().__init__(self.one_line())

    def one_line(self) -> str:
        where = ": ".join(part for part in (self.source, self.field) if part)
        return f"{where}: {self.message}" if where else self.message


class UnknownComponent(ScenarioError):  # noqa: N818 - the name users see in scenario errors
    """A component name that its registry does not know."""

    def __init__(self, kind: str, name: object, valid: list[str], *, field: str | None = None):
        self.kind = kind
        self.name = name
        self.valid = valid
        super().__init__(
            f"unknown {kind} {name!r}; valid: {', '.join(valid)}", field=field or kind
        )


class DecodeError(NoisylinkError):
    """A decoder found nothing it can show (the receiver then shows mid-gray)."""


class LinkError(NoisylinkError):
    """The link could not run: a stage failed for a reason other than channel errors."""

    def __init__(self, message: str, *, stage: str | None = None):
        self.stage = stage
        super().__init__(f"{stage}: {message}" if stage else message)
