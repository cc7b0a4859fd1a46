"""The mail system in a child process, for the crash test: killed with SIGKILL at will.

Usage: ``python mta_crash_child.py DATA_DIR SMTP_PORT LMTP_PORT [children]``. Prints
``ready`` on stdout once every listener is open, then runs until killed (or stdin
closes). With ``children`` it runs as ``mailproto serve`` does by default: inbound SMTP
served by two child processes and the MDA's LMTP by one; the SIGKILL then reaches this
process only, and its children go on with their sessions.
"""

from __future__ import annotations

import sys
from pathlib import Path

from mailproto_adapters.system import ListenerConfig, MailSystem, SystemConfig


def main() -> None:
    data_dir, smtp_port, lmtp_port = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    children = sys.argv[4:] == ["children"]
    config = SystemConfig(
        data_dir=data_dir,
        listeners=(
            ListenerConfig(service="lmtp", port=lmtp_port),
            ListenerConfig(service="smtp", port=smtp_port, max_per_ip=64),
        ),
        min_backoff=0.5,
        max_backoff=1.0,
        lmtp_process=children,
        smtp_processes=2 if children else 0,
    )
    with MailSystem(config):
        print("ready", flush=True)
        sys.stdin.read()  # until the parent closes it (or kills us)


if __name__ == "__main__":
    main()
