"""The MUA: the command line (``mailproto send``, ``fetch``, ``ls``, ``read``) and webmail."""
