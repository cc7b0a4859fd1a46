"""The two effect interpreters: `drive` (blocking) and `drive_async` (asyncio, anyio).

A session flow is a generator yielding `_effects` requests. The driver performs each one
on its transport and sends the result back in; an exception raised while performing is
thrown into the flow instead, so the flow can clean up (or let it propagate). These two
functions are the only code that knows both the flows and the I/O.
"""

from __future__ import annotations

import inspect
from typing import Any, TypeVar

from ._effects import Call, Close, Info, Op, Receive, Send, StartTLS
from ._transport import AsyncTransport, Transport

__all__ = ["drive", "drive_async"]

T = TypeVar("T")


def drive(op: Op[T], transport: Transport) -> T:
    """Run ``op`` to its end on a blocking transport; its return value is ours."""
    value: Any = None
    error: BaseException | None = None
    while True:
        try:
            effect = op.send(value) if error is None else op.throw(error)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]
        finally:
            error = None
        value = None
        try:
            if isinstance(effect, Receive):
                value = transport.receive(effect.max_bytes, effect.timeout)
            elif isinstance(effect, Send):
                transport.send_all(effect.data, effect.timeout)
            elif isinstance(effect, StartTLS):
                value = transport.start_tls(
                    effect.context,
                    server_side=effect.server_side,
                    hostname=effect.hostname,
                    timeout=effect.timeout,
                )
            elif isinstance(effect, Close):
                transport.close()
            elif isinstance(effect, Call):
                value = effect.hook(*effect.args)
            elif isinstance(effect, Info):
                value = transport.info()
            else:
                raise TypeError(f"not an effect: {effect!r}")
        except Exception as exc:  # handed to the flow, which decides
            error = exc


async def drive_async(op: Op[T], transport: AsyncTransport) -> T:
    """Run ``op`` to its end on an async transport; hooks may be coroutine functions."""
    value: Any = None
    error: BaseException | None = None
    while True:
        try:
            effect = op.send(value) if error is None else op.throw(error)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]
        finally:
            error = None
        value = None
        try:
            if isinstance(effect, Receive):
                value = await transport.receive(effect.max_bytes, effect.timeout)
            elif isinstance(effect, Send):
                await transport.send_all(effect.data, effect.timeout)
            elif isinstance(effect, StartTLS):
                value = await transport.start_tls(
                    effect.context,
                    server_side=effect.server_side,
                    hostname=effect.hostname,
                    timeout=effect.timeout,
                )
            elif isinstance(effect, Close):
                await transport.aclose()
            elif isinstance(effect, Call):
                value = effect.hook(*effect.args)
                if inspect.isawaitable(value):
                    value = await value
            elif isinstance(effect, Info):
                value = transport.info()
            else:
                raise TypeError(f"not an effect: {effect!r}")
        except Exception as exc:  # handed to the flow, which decides
            error = exc
