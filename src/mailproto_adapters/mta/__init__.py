"""The MTA: SMTP listeners, the durable queue, delivery (LMTP to the MDA, SMTP out), bounces."""
