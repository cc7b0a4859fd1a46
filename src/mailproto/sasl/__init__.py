"""SASL mechanisms for both roles, as sans-I/O objects.

Shared by SMTP AUTH (RFC 4954), POP3 AUTH (RFC 5034) and IMAP AUTHENTICATE (RFC 9051):
those layers handle base64 and line framing, and pass decoded bytes here.

Server side::

    mech = server_mechanism("PLAIN")
    step = mech.start(initial_response)      # None if the client sent none
    while True:
        match step:
            case Challenge(data=data):
                step = mech.receive(<client's decoded answer to data>)
            case VerifyPassword(username=u, authzid=z, password=p):
                step = mech.verified(<check u/z/p>)
            case NeedCramMD5Secret(username=u):
                step = mech.respond_with_secret(<u's password or None>)
            case NeedScramCredentials(username=u):
                step = mech.respond_with_credentials(<u's ScramCredentials or None>)
            case VerifyToken(username=u, token=t):
                step = mech.verified(<check t>, error_json=<JSON on failure, or None>)
            case Success() | Failure():
                break

Client side: ``initial_response()`` for the command, ``respond(challenge)`` for each
challenge, ``verify_success(data)`` when the server reports success. The core does no
I/O; random values come from `secrets` and can all be injected.
"""

from ._base import (
    Challenge,
    ClientMechanism,
    Failure,
    FailureCode,
    NeedCramMD5Secret,
    NeedScramCredentials,
    SASLError,
    ServerMechanism,
    ServerStep,
    Success,
    TokenKind,
    VerifyPassword,
    VerifyToken,
)
from ._cram import CramMD5Client, CramMD5Server
from ._credentials import ScramCredentials, scram_credentials
from ._oauth import OAuthBearerClient, OAuthBearerServer, XOAuth2Client, XOAuth2Server
from ._plain import LoginClient, LoginServer, PlainClient, PlainServer
from ._registry import SERVER_MECHANISMS, server_mechanism
from ._scram import ScramSha256Client, ScramSha256Server

__all__ = (
    "SERVER_MECHANISMS",
    "Challenge",
    "ClientMechanism",
    "CramMD5Client",
    "CramMD5Server",
    "Failure",
    "FailureCode",
    "LoginClient",
    "LoginServer",
    "NeedCramMD5Secret",
    "NeedScramCredentials",
    "OAuthBearerClient",
    "OAuthBearerServer",
    "PlainClient",
    "PlainServer",
    "SASLError",
    "ScramCredentials",
    "ScramSha256Client",
    "ScramSha256Server",
    "ServerMechanism",
    "ServerStep",
    "Success",
    "TokenKind",
    "VerifyPassword",
    "VerifyToken",
    "XOAuth2Client",
    "XOAuth2Server",
    "scram_credentials",
    "server_mechanism",
)
