"""One module per stack; each takes the app's Settings and derives its names from them."""
