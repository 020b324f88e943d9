"""What every request handler gets: the console's parts, and the signed-in person."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request

from consumers.console.auth import Person, identify
from consumers.console.decisions import Decider
from consumers.console.directory import DirectoryReplica
from consumers.console.metrics import ConsoleMetrics
from consumers.console.settings import ConsoleSettings
from pipeline.rules.directory import Directory
from pipeline.settings import Settings


@dataclass
class Console:
    """The console's parts, built once by `consumers.console.app.build_app`."""

    settings: ConsoleSettings
    pipeline: Settings
    replica: DirectoryReplica
    metrics: ConsoleMetrics
    decider: Decider

    @property
    def directory(self) -> Directory:
        """The directory as read so far from erp.directory."""
        return self.replica.directory

    @property
    def database_url(self) -> str:
        """The read model's database."""
        return self.pipeline.require_database_url()

    @property
    def erp_database_url(self) -> str:
        """The reference ERP's database."""
        return self.pipeline.require_erp_database_url()


def console_of(request: Request) -> Console:
    """The console serving this request."""
    console: Console = request.app.state.console
    return console


def person_of(request: Request) -> Person:
    """The signed-in person (401 / 403 raised as `NotSignedIn` / `Forbidden`)."""
    console = console_of(request)
    return identify(request, console.settings, console.directory)
