"""LangChain integration: RoutedChatModel routes every call to a strong or a weak chat model."""
