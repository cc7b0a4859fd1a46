"""The MDA: users and authentication, the Maildir store, and (next) the LMTP, POP3 and
IMAP servers over it. See docs/mda-users.md and docs/mda-store.md."""
