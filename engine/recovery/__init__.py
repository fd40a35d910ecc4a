"""Recovery helpers: circuit breakers and retries with backoff."""

from engine.recovery.circuit_breaker import CircuitBreaker, CircuitState, CircuitStats
from engine.recovery.retry import RetryPolicy, delays, retry

__all__ = ["CircuitBreaker", "CircuitState", "CircuitStats", "RetryPolicy", "delays", "retry"]
