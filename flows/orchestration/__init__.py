"""The Prefect side: the flow (wiring only), its thin tasks, and the Runner that maps them."""
