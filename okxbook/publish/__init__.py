"""Deltas to other processes and hosts: ``base`` holds the publisher, the subscriber and the message
format, independent of the messaging library; ``zmq`` is the ZeroMQ transport (``okxbook[zmq]``)."""

from .base import DeltaPublisher, DeltaSubscriber, Message, MessageSink, MessageSource

__all__ = ["DeltaPublisher", "DeltaSubscriber", "Message", "MessageSink", "MessageSource"]
