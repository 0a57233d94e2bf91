"""Is Redis up? A TCP connect and one RESP reply; an auth error still proves it is."""

from __future__ import annotations

import asyncio
import contextlib

PING = b"*1\r\n$4\r\nPING\r\n"
RESP_TYPES = b"+-:$*_#,(!=%~>"


async def ping(host: str, port: int, timeout: float = 2.0) -> str | None:
    """None when Redis answered; otherwise why not, in a sentence."""
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    except TimeoutError:
        return f"connecting to {host}:{port} timed out after {timeout:g} s"
    except OSError as exc:
        return f"cannot connect to {host}:{port}: {exc.strerror or exc}"
    try:
        writer.write(PING)
        await asyncio.wait_for(writer.drain(), timeout)
        line = await asyncio.wait_for(reader.readline(), timeout)
    except (TimeoutError, OSError) as exc:
        return f"{host}:{port} did not answer PING: {type(exc).__name__}"
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
    if not line or line[:1] not in RESP_TYPES:
        return f"{host}:{port} answered something that is not Redis: {line[:40]!r}"
    return None
