"""A TCP proxy in front of PostgreSQL that tests cut and restore to simulate an outage."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from psycopg.conninfo import conninfo_to_dict, make_conninfo

from consumers.dev.services import free_port


class TcpProxy:
    """A loopback port forwarded to PostgreSQL; `cut()` drops every connection, refuses new ones."""

    def __init__(self, database_url: str) -> None:
        target: dict[str, Any] = conninfo_to_dict(database_url)
        self._host = str(target.get("host") or "localhost")
        self._port = int(target.get("port") or 5432)
        self.port = free_port()
        self.url = make_conninfo(database_url, host="127.0.0.1", port=self.port)
        self._server: asyncio.Server | None = None
        self._open: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)

    async def cut(self) -> None:
        assert self._server is not None
        self._server.close()
        self._server = None
        for writer in list(self._open):
            writer.transport.abort()
        self._open.clear()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            if self._host.startswith("/"):
                up_reader, up_writer = await asyncio.open_unix_connection(
                    f"{self._host}/.s.PGSQL.{self._port}"
                )
            else:
                up_reader, up_writer = await asyncio.open_connection(self._host, self._port)
        except OSError:
            writer.transport.abort()
            return
        self._open.update((writer, up_writer))
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        self._open.discard(writer)
        writer.transport.abort()
