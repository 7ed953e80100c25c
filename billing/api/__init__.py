"""Viewer and internal endpoints for subscriptions and access, one module per resource.

`subscriptions.py`: the caller's subscriptions, subscribing, and a subscription's payments;
`subscription_actions.py`: autopay, cancel and resume; `access.py`: whether a viewer may watch.
"""
