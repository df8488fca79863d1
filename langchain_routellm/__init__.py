"""LangChain integration: RoutedChatModel routes every call to a strong or a weak chat model, or to one of N models."""

from langchain_routellm._params import UnsupportedCallArgumentError, register_call_params
from langchain_routellm._routing import METADATA_KEY, ROUTE_EVENT, Route, default_routing_text, message_text
from langchain_routellm.callbacks import RoutingCallbackHandler, RoutingSummary, SideTotals
from langchain_routellm.chat_models import RoutedChatModel

__all__ = [
    "METADATA_KEY",
    "ROUTE_EVENT",
    "Route",
    "RoutedChatModel",
    "RoutingCallbackHandler",
    "RoutingSummary",
    "SideTotals",
    "UnsupportedCallArgumentError",
    "default_routing_text",
    "message_text",
    "register_call_params",
]
