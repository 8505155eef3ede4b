"""``guard serve``: an OpenAI-compatible HTTP endpoint whose every output passes the guard.

The only package that imports the web framework (FastAPI, uvicorn, prometheus-client: the
``serve`` extra). Nothing else in :mod:`guard` imports it.

- :mod:`guard.serve.config`: :class:`~guard.serve.config.ServeConfig`, the server's settings.
- :mod:`guard.serve.app`: :func:`~guard.serve.app.create_app`, the ASGI application.
- :mod:`guard.serve.backends`: where replies come from (the embedded tutor, an upstream server).
- :mod:`guard.serve.wire`: the OpenAI wire format (requests, responses, stream chunks, errors).
- :mod:`guard.serve.moderation`: the guard's categories in OpenAI's moderation format.
- :mod:`guard.serve.security`: API keys and per-key rate limits.
- :mod:`guard.serve.metrics`: Prometheus metrics.
"""
