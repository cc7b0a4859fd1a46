"""``python -m mailproto_adapters.mua.webmail``: the webmail alone, in front of an MDA's
IMAP port and an MTA's submission port (plaintext on loopback unless told otherwise)."""

from __future__ import annotations

import argparse
import logging
import ssl

import anyio

from .app import SubmissionEndpoint, Webmail, WebmailConfig
from .sessions import IMAPEndpoint


def _hostport(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host.strip("[]") or "127.0.0.1", int(port)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m mailproto_adapters.mua.webmail")
    parser.add_argument("--listen", default="127.0.0.1:8025", help="host:port to serve on")
    parser.add_argument("--imap", default="127.0.0.1:2143", help="the IMAP server, host:port")
    parser.add_argument("--submission", default="127.0.0.1:2587", help="host:port")
    parser.add_argument("--starttls", action="store_true", help="STARTTLS to both servers")
    parser.add_argument("--domain", default="localhost", help="for From of bare user names")
    parser.add_argument("--cert", help="PEM certificate chain: serve HTTPS")
    parser.add_argument("--key", help="PEM private key for --cert")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    tls = None
    if args.cert:
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls.load_cert_chain(args.cert, args.key)
    imap_host, imap_port = _hostport(args.imap)
    sub_host, sub_port = _hostport(args.submission)
    webmail = Webmail(
        imap=IMAPEndpoint(host=imap_host, port=imap_port, starttls=bool(args.starttls)),
        submission=SubmissionEndpoint(host=sub_host, port=sub_port, starttls=bool(args.starttls)),
        config=WebmailConfig(domain=args.domain),
    )
    host, port = _hostport(args.listen)

    async def run() -> None:
        async with anyio.create_task_group() as tg:
            bound = await tg.start(
                lambda task_status: webmail.serve(host, port, tls=tls, task_status=task_status)
            )
            scheme = "https" if tls else "http"
            print(f"webmail on {scheme}://{host}:{bound}/", flush=True)

    anyio.run(run)


if __name__ == "__main__":
    main()
