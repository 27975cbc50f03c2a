"""`python -m gateway.webhooks list|replay|register`: see `gateway.webhooks.cli`."""

from gateway.webhooks.cli import main

main()
