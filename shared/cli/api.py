"""The CLI's HTTP client for the coordinator: one clear error line for every way a call can fail."""

import os
from typing import Annotated, Any

import httpx
import typer

from amity.errors import AmityError

DEFAULT_URL = "http://127.0.0.1:8080"
TOKEN_ENV = "AMITY_API_TOKEN"

Url = Annotated[str, typer.Option("--url", envvar="AMITY_URL", help="Coordinator URL.", show_default=True)]
JsonOut = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


class ApiError(AmityError):
    """The coordinator refused a request, or could not be reached."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class CoordinatorClient:
    """Calls to one coordinator, with the API token from AMITY_API_TOKEN when set."""

    def __init__(self, url: str, token: str | None = None, timeout_s: float = 60.0) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.url = url.rstrip("/")
        self._http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout_s)

    def __enter__(self) -> "CoordinatorClient":
        return self

    def __exit__(self, *_: object) -> None:
        self._http.close()

    def get(self, path: str, **params: Any) -> Any:
        return self.call("GET", path, params=params)

    def post(self, path: str, body: Any = None, **params: Any) -> Any:
        return self.call("POST", path, body, params)

    def put(self, path: str, body: Any) -> Any:
        return self.call("PUT", path, body)

    def delete(self, path: str, **params: Any) -> Any:
        return self.call("DELETE", path, params=params)

    def call(self, method: str, path: str, body: Any = None, params: dict[str, Any] | None = None) -> Any:
        query = {k: _query_value(v) for k, v in (params or {}).items() if v is not None}
        try:
            response = self._http.request(method, path, json=body, params=query)
        except httpx.ConnectError:
            raise ApiError(f"cannot reach the coordinator at {self.url}: is it running (amity coordinator run)? "
                           "Point --url or AMITY_URL at it") from None
        except httpx.TimeoutException:
            raise ApiError(f"the coordinator at {self.url} did not answer in time") from None
        except httpx.HTTPError as exc:
            raise ApiError(f"calling the coordinator at {self.url} failed: {exc}") from None
        if response.status_code >= 400:
            raise ApiError(_problem(response), response.status_code)
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            raise ApiError(f"{self.url} answered {method} {path} with something that is not JSON: is it an Amity "
                           f"coordinator? Point --url or AMITY_URL at one") from None


def connect(url: str) -> CoordinatorClient:
    """A client for the CLI; the token comes only from the environment, never from the command line."""
    return CoordinatorClient(url, os.environ.get(TOKEN_ENV) or None)


def _problem(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        body = None
    detail = body.get("detail") if isinstance(body, dict) else None
    message = str(detail) if detail else (response.text.strip()[:200] or response.reason_phrase)
    if response.status_code == 401 and not response.request.headers.get("Authorization"):
        message += f" (set {TOKEN_ENV})"
    return f"{message} [HTTP {response.status_code}]"


def _query_value(value: Any) -> Any:
    return str(value).lower() if isinstance(value, bool) else value
