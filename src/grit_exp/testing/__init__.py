"""Test doubles that users also run by hand (a fake OpenAI-compatible judge for dry runs); nothing in a training or evaluation run imports this package."""
