"""A local Big Cartel for everything offline: a simulated shop, signed sending, the sandbox server.

    catalog.py     reference data: products, people, places, money rules (data only)
    shop.py        the simulated shop: orders, products, account events, as documents in both payload shapes
    history.py     a year of trading ending now (the demo data of notebook 3)
    sending.py     posting signed bodies to a receiver, with a summary of what came back
    runs.py        simulation runs (like `stripe trigger`): straight to a receiver, through the sandbox, the demo
    deliveries.py  the sandbox's background deliveries with retries
    sandbox.py     the sandbox: the API Big Cartel offers (and the guide's registration contract), served by Bottle
    sandbox_model.py  its state: shops (one currency each, a year of history when asked), webhooks, events
    sandbox_state.py  the file that state is saved to and restored from
    sandbox_oauth.py  its OAuth app
"""
