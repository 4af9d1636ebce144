import socket

import httpx
import pytest

from tests.conftest import RealNetworkError


def test_a_test_cannot_reach_the_real_api() -> None:
    with pytest.raises(RealNetworkError):
        httpx.get("https://api.anthropic.com/v1/models", timeout=2)


def test_a_raw_socket_to_a_public_address_is_refused() -> None:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        with pytest.raises(RealNetworkError):
            s.connect(("160.79.104.10", 443))
    finally:
        s.close()
