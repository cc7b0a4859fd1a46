"""IMAP responses as typed values: status responses and their codes, untagged data,
FETCH attributes with ENVELOPE and BODYSTRUCTURE trees.

``mailproto.imap.parse_response`` and ``format_response`` convert them.
"""

from . import _responses
from ._responses import *  # noqa: F403

__all__ = _responses.__all__
