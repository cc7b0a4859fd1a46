"""The I/O edge of mailproto: transports, servers and clients built on the sans-I/O core.

Empty for now: the blocking, asyncio and anyio adapters come with their own issue; until
then `examples/` shows the core driven by plain blocking sockets.
"""
