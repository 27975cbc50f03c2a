"""Ports picked for processes started later stay out of the kernel's ephemeral range."""

from __future__ import annotations

import socket
from pathlib import Path

from runtime.embedded_pg import free_port


def test_free_ports_are_below_the_ephemeral_range_and_bindable() -> None:
    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    ports = {free_port() for _ in range(20)}
    assert all(port < low for port in ports) or low <= 21000  # no room below: the kernel's choice
    for port in ports:
        with socket.socket() as s:
            s.bind(("127.0.0.1", port))  # free when asked: a listener can take it
