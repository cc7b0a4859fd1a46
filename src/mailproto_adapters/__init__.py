"""The I/O edge of mailproto: transports, drivers, and (next) servers and clients.

Session logic is written once as generators yielding I/O requests (`_effects`); two
drivers perform them (`_driver.drive` on blocking sockets, `_driver.drive_async` on
asyncio and anyio, trio included); three transports move the bytes (`_socket`,
`_asyncio` with a memory-BIO TLS layer that loses nothing at STARTTLS, `_anyio`). The
public flavour modules (`blocking`, `asyncio`, `anyio`) with `serve()` and the clients
are built on these. Until then `examples/` drives the core with plain blocking sockets.
"""
