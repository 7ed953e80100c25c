"""The YooKassa (ЮKassa) gateway: API v3, HTTP Basic with the shop id and secret key.

`gateway.YooKassaGateway` implements `payments.gateways.interface.PaymentGateway`;
`setup.gateway_from_settings` builds it from the YOOKASSA_* settings (the registry's entry).
Only this package imports the `yookassa` SDK (.importlinter). See docs/gateway.md.
"""
