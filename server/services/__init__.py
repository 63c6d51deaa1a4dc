"""Service functions: the operator API's business rules, one module per resource.

Each function takes a :class:`~kagiya.server.services.context.Ctx` (the call's transaction,
caller and clock) and returns a schema model from :mod:`kagiya.server.schemas`, or raises
:class:`~kagiya.server.problems.ApiError`. They know nothing of HTTP, so they are tested on
their own (tests/server/test_services.py); the routers in :mod:`kagiya.server.routers` only
parse the request and hand over.
"""
