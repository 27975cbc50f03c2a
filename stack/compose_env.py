"""Prints fresh secrets for docker-compose.yml, which has no defaults for them:

python -m stack.compose_env > .env
"""

from __future__ import annotations

from stack.launcher import SERVICE_SECRETS, new_secret

COMPOSE_SECRETS = (*SERVICE_SECRETS, "ROLE_PASSWORD", "PLATFORM_ADMIN_PASSWORD")

if __name__ == "__main__":
    for name in COMPOSE_SECRETS:
        print(f"{name}={new_secret(name)}")
