"""Fakes of the messaging platforms, served as real HTTP servers on loopback.

The product's platform libraries (python-telegram-bot, wechatpy) talk to these over HTTP, so
tests exercise the libraries' real request encoding and error mapping instead of mocks.
"""

from tests.fakes.telegram_server import ApiCall, FakeTelegram

__all__ = ["ApiCall", "FakeTelegram"]
