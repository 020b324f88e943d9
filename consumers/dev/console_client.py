"""The demo's approver at the console: signs in (dev sign-in) and decides over the JSON API."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp

#: How long the console may take to show what the pipeline did (its read model follows).
SHOWN_TIMEOUT_S = 60.0


class ConsoleRefused(RuntimeError):
    """The console answered a decision with a refusal (its status code and reason)."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(body.get("reason") or body.get("detail") or str(body))
        self.status, self.body = status, body


class ConsoleClient:
    """One signed-in person at the console (`async with ConsoleClient(url, company, user)`)."""

    def __init__(self, url: str, company_id: str, user_id: str) -> None:
        self.url, self.company_id, self.user_id = url.rstrip("/"), company_id, user_id
        self._session: aiohttp.ClientSession | None = None
        self._csrf = ""

    async def __aenter__(self) -> ConsoleClient:
        self._session = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
        await self._session.post(
            f"{self.url}/signin",
            data={"company_id": self.company_id, "user_id": self.user_id},
            allow_redirects=False,
        )
        me = await self._until(lambda: self._get("/api/v1/me"), "the console to know the user")
        self._csrf = me["csrf_token"]
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._session is not None:
            await self._session.close()

    async def _get(self, path: str) -> dict[str, Any] | None:
        assert self._session is not None
        try:
            async with self._session.get(f"{self.url}{path}") as answer:
                return await answer.json() if answer.status == 200 else None
        except aiohttp.ClientError:
            return None

    @staticmethod
    async def _until(find: Any, what: str) -> dict[str, Any]:
        deadline = time.monotonic() + SHOWN_TIMEOUT_S
        while (found := await find()) is None:
            if time.monotonic() > deadline:
                raise TimeoutError(f"timed out waiting for {what}")
            await asyncio.sleep(0.2)
        found_: dict[str, Any] = found
        return found_

    async def shown(self, item_type: str, item_id: str, status: str) -> dict[str, Any]:
        """The item as the console shows it, once it shows `status`."""

        async def find() -> dict[str, Any] | None:
            item = await self._get(f"/api/v1/items/{item_type}/{item_id}")
            return item if item and item["item"]["status"] == status else None

        return await self._until(find, f"the console to show {item_type}:{item_id} {status}")

    async def decide(
        self, item_type: str, item_id: str, decision: str, **body: Any
    ) -> dict[str, Any]:
        """Accept, reject or retry the item as the console shows it now (the version shown);
        the console's answer, or ConsoleRefused."""
        assert self._session is not None
        current = await self._get(f"/api/v1/items/{item_type}/{item_id}")
        version = current["item"]["submission_version"] if current else 1
        async with self._session.post(
            f"{self.url}/api/v1/items/{item_type}/{item_id}/{decision}",
            json={"submission_version": version, **body},
            headers={"X-CSRF-Token": self._csrf},
        ) as answer:
            found: dict[str, Any] = await answer.json()
            if answer.status != 202:
                raise ConsoleRefused(answer.status, found)
            return found
