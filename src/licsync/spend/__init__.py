"""Licence spend: what the licences cost (the customer's price file), what the subscriptions
behind them renew when (`/directory/subscriptions`), and who holds what (the inventory)."""
