"""The I/O edge of mailproto: transports, drivers, clients, servers and the mail system.

Session logic is written once as generators yielding I/O requests (`_effects`); two
drivers perform them (`_driver.drive` on blocking sockets, `_driver.drive_async` on
asyncio and anyio, trio included); three transports move the bytes (`_socket`,
`_asyncio` with a memory-BIO TLS layer that loses nothing at STARTTLS, `_anyio`). The
public flavour modules (`blocking`, `asyncio`, `anyio`) hold ``serve()`` and the
clients; `mda`, `mta` and `mua` are the components of the mail system, which `system`
runs in one process (``mailproto serve``, `cli`).
"""
