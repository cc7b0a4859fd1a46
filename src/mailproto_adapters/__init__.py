"""The I/O edge of mailproto: transports, servers and clients built on the sans-I/O core.

For now it holds the command line entry point; the blocking, asyncio and anyio adapters
come with their own issue.
"""
