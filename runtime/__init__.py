"""The runtime every service, the gateway, the launcher and the tests share.

gRPC's fork handlers are turned off in every process that imports it (unless set otherwise):
nothing here uses gRPC in a forked child, and with a call in flight (Payments always holds a
watch stream open to Accounts) a fork for a child process, such as the embedded PostgreSQL
started as another user, could crash in those handlers (seen: the child died with SIGSEGV).
"""

import os

os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")
